//! The CLI's control connection to a JobManager: one typed request, one answer of the
//! request's own reply type.

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use std::io::Read;
use std::path::Path;
use weir_runtime::rpc::messages::{ArtifactDigest, ArtifactHasher, ARTIFACT_CHUNK_BYTES};
use weir_runtime::rpc::request::{ArtifactChunk, PutArtifact};
use weir_runtime::rpc::{dial, read_message, write_message, ClientRequest, PeerRole};
use weir_runtime::rpc::{Reply, Request};

/// A connected client.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    stream: weir_runtime::rpc::ControlStream,
    address: String,
}

impl Client {
    /// Connects to the JobManager at `address`.
    pub fn connect(address: &str, secret: Option<&str>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stream = runtime
            .block_on(dial(address, PeerRole::Client, secret))
            .map_err(|e| anyhow!("cannot reach the JobManager at {address}: {e}"))?;
        Ok(Self {
            runtime,
            stream,
            address: address.to_string(),
        })
    }

    fn send(&mut self, request: &ClientRequest) -> Result<()> {
        let Self {
            runtime,
            stream,
            address,
        } = self;
        runtime
            .block_on(write_message(stream, address, request))
            .with_context(|| format!("JobManager at {address}"))
    }

    fn receive<T: DeserializeOwned>(&mut self) -> Result<T> {
        let Self {
            runtime,
            stream,
            address,
        } = self;
        // The longest answer (a savepoint) is given within 600 s.
        let limit = std::time::Duration::from_secs(660);
        match runtime
            .block_on(async { tokio::time::timeout(limit, read_message(stream, address)).await })
        {
            Ok(r) => r.with_context(|| format!("JobManager at {address}")),
            Err(_) => bail!(
                "the JobManager at {address} did not answer within {} s",
                limit.as_secs()
            ),
        }
    }

    /// Sends `request` and returns its answer; an error answer becomes an error.
    pub fn call<R: Request>(&mut self, request: R) -> Result<R::Response> {
        self.answer(request)?.map_err(|e| anyhow!("{e}"))
    }

    /// Sends `request` and returns the JobManager's answer, an error answer included; the
    /// error is the connection's.
    pub fn answer<R: Request>(&mut self, request: R) -> Result<Reply<R>> {
        self.send(&request.into())?;
        self.receive()
    }

    /// Uploads the program at `path` unless the JobManager has it; returns its digest.
    pub fn upload(&mut self, path: &Path) -> Result<ArtifactDigest> {
        let read = |p: &Path| -> Result<(ArtifactDigest, u64)> {
            let mut f = std::fs::File::open(p)?;
            let mut h = ArtifactHasher::default();
            let mut buf = vec![0u8; 1 << 20];
            let mut size = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    return Ok((h.finish(), size));
                }
                h.update(&buf[..n]);
                size += n as u64;
            }
        };
        let (digest, size) =
            read(path).with_context(|| format!("cannot read job program {}", path.display()))?;
        let present = self.call(PutArtifact {
            digest: digest.clone(),
            size,
        })?;
        if present {
            return Ok(digest);
        }
        let mut f = std::fs::File::open(path)
            .with_context(|| format!("cannot read job program {}", path.display()))?;
        let mut buf = vec![0u8; ARTIFACT_CHUNK_BYTES];
        let mut sent = 0u64;
        while sent < size {
            let want = ((size - sent) as usize).min(buf.len());
            f.read_exact(&mut buf[..want]).with_context(|| {
                format!("job program {} changed while uploading", path.display())
            })?;
            sent += want as u64;
            let piece = ArtifactChunk(buf[..want].to_vec());
            if sent < size {
                // Only the piece completing the upload is answered.
                self.send(&ClientRequest::from(piece))?;
            } else {
                self.call(piece)?;
            }
        }
        Ok(digest)
    }
}
