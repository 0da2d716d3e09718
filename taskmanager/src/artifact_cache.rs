//! The TaskManager's artifact cache: job programs fetched from the JobManager and kept by
//! SHA-256 digest.
//!
//! Invariants: an artifact is executed only after its bytes hashed to the digest it is
//! cached under (checked again before every start, as the cache may be shared); a partial
//! download never has the final name; every download is bounded in time.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tracing::warn;
use weir_runtime::rpc::messages::{ArtifactDigest, ArtifactHasher};
use weir_runtime::rpc::request::{ArtifactPiece, FetchArtifact};
use weir_runtime::rpc::{
    dial, read_message, write_message, ClientRequest, PeerRole, Reply, RpcError,
};

/// The longest an artifact download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a job artifact could not be fetched into the cache.
#[derive(Debug, Error)]
pub(crate) enum FetchError {
    /// A cached or partly downloaded file cannot be read, written or renamed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The control connection to the JobManager failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The JobManager answered the fetch with an error.
    #[error("{message}")]
    Refused {
        /// The JobManager's message.
        message: String,
    },
    /// The downloaded bytes are not the artifact.
    #[error("the downloaded bytes hash to {actual}")]
    DigestMismatch {
        /// The digest of the bytes received.
        actual: ArtifactDigest,
    },
    /// The download took longer than allowed.
    #[error("the download did not finish within {} s", limit.as_secs())]
    TimedOut {
        /// The limit.
        limit: Duration,
    },
}

impl FetchError {
    /// Returns a closure wrapping an I/O error on `path`.
    fn file(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| FetchError::File {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Creates `dir` (and its parents); a directory created here is private to this user, as
/// the programs it caches are executed.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Returns the cached program of `digest`, fetching it from the JobManager first if it is
/// not cached.
pub(crate) async fn fetch_artifact(
    jobmanager: &str,
    secret: Option<&weir_runtime::Secret>,
    cache: &Path,
    digest: &ArtifactDigest,
) -> Result<PathBuf, FetchError> {
    let path = cache.join(digest.as_str());
    if path.is_file() {
        // Checked again before every start: the cache may be shared with other
        // TaskManagers of the host.
        match hash_file(&path) {
            Ok(actual) if &actual == digest => return Ok(path),
            Ok(actual) => {
                warn!(artifact = %digest, %actual, path = %path.display(), "cached artifact does not match its digest; fetching it again");
                let _ = std::fs::remove_file(&path);
            }
            Err(source) => return Err(FetchError::File { path, source }),
        }
    }
    static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let part = cache.join(format!(
        ".{digest}.{}-{}.part",
        std::process::id(),
        DOWNLOADS.fetch_add(1, Ordering::Relaxed)
    ));
    // Bounded: a JobManager that stops answering fails the start instead of hanging it.
    let result = match tokio::time::timeout(
        DOWNLOAD_TIMEOUT,
        download(jobmanager, secret, digest, &part, &path),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(FetchError::TimedOut {
            limit: DOWNLOAD_TIMEOUT,
        }),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result.map(|()| path)
}

/// Returns the digest of the file at `path`.
fn hash_file(path: &Path) -> std::io::Result<ArtifactDigest> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = ArtifactHasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

async fn download(
    jobmanager: &str,
    secret: Option<&weir_runtime::Secret>,
    digest: &ArtifactDigest,
    part: &Path,
    path: &Path,
) -> Result<(), FetchError> {
    let peer = jobmanager;
    let mut stream = dial(peer, PeerRole::Client, secret.map(|s| s.expose())).await?;
    write_message(
        &mut stream,
        peer,
        &ClientRequest::from(FetchArtifact(digest.clone())),
    )
    .await?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(part)
        .await
        .map_err(FetchError::file(part))?;
    let mut hasher = ArtifactHasher::default();
    loop {
        match read_message::<_, Reply<FetchArtifact>>(&mut stream, peer).await? {
            Ok(ArtifactPiece::Data(bytes)) => {
                hasher.update(&bytes);
                file.write_all(&bytes)
                    .await
                    .map_err(FetchError::file(part))?;
            }
            Ok(ArtifactPiece::End) => break,
            Err(e) => {
                return Err(FetchError::Refused { message: e.message });
            }
        }
    }
    file.sync_all().await.map_err(FetchError::file(part))?;
    drop(file);
    let actual = hasher.finish();
    if &actual != digest {
        return Err(FetchError::DigestMismatch { actual });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(part, std::fs::Permissions::from_mode(0o755))
            .map_err(FetchError::file(part))?;
    }
    std::fs::rename(part, path).map_err(FetchError::file(path))
}
