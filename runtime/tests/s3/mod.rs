//! A real S3-compatible server for the tests of one test binary, started through
//! `scripts/s3.sh` on loopback with its own port and directory (signatures checked, a
//! bucket `weir`), and stopped by the script's watcher when the test process exits (even
//! when a test fails).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// `len` bytes of a pseudo-random sequence from `seed`: incompressible and reproducible.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A server started for this test binary.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The generated access key id.
    pub access_key: String,
    /// The generated secret key.
    pub secret_key: String,
    /// The region.
    pub region: String,
    /// Its run directory.
    pub dir: PathBuf,
}

/// Returns this test binary's server, starting it on first use.
pub fn server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| start().unwrap_or_else(|e| panic!("{e}")))
}

fn script(command: &str, dir: Option<&PathBuf>) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/s3.sh"))
        .arg(command)
        .args(dir)
        .env("WEIR_S3_OWNER_PID", std::process::id().to_string());
    cmd
}

/// Starts a server of the calling test's own (to restart it, say), stopped when the test
/// binary exits.
pub fn start_own() -> S3Server {
    start().unwrap_or_else(|e| panic!("{e}"))
}

fn start() -> Result<S3Server, String> {
    let out = script("start", None)
        .output()
        .map_err(|e| format!("cannot run scripts/s3.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "scripts/s3.sh start failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("dir="))
        .ok_or_else(|| format!("no dir= line in:\n{stdout}"))?;
    let exports = stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("export "))
        .ok_or_else(|| format!("no export line in:\n{stdout}"))?;
    let var = |name: &str| {
        exports
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
            .ok_or_else(|| format!("{name} missing in: {exports}"))
    };
    Ok(S3Server {
        endpoint: var("AWS_ENDPOINT_URL")?,
        access_key: var("AWS_ACCESS_KEY_ID")?,
        secret_key: var("AWS_SECRET_ACCESS_KEY")?,
        region: var("AWS_REGION")?,
        dir: PathBuf::from(dir),
    })
}

impl S3Server {
    /// Makes this server the S3 of every `s3://` store this process opens.
    pub fn install(&self) {
        weir_runtime::checkpoint::S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: Some(self.region.clone()),
            access_key: Some(self.access_key.clone()),
            secret_key: Some(weir_runtime::Secret::new(self.secret_key.clone())),
            path_style_access: Some(true),
        }
        .install();
    }

    /// The AWS variables that lead a process to this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("AWS_ACCESS_KEY_ID", &self.access_key),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_key),
            ("AWS_REGION", &self.region),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }

    /// A client of bucket `weir` of its own.
    fn client(&self) -> object_store::aws::AmazonS3 {
        weir_runtime::rpc::tls::install_default_provider();
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_bucket_name("weir")
            .build()
            .expect("an S3 client")
    }

    /// Every object in bucket `weir` under `prefix` (key and entity tag).
    pub fn objects(&self, prefix: &str) -> Vec<(String, String)> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let store = self.client();
        let prefix = object_store::path::Path::from(prefix);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let objects: Vec<_> = runtime
            .block_on(store.list(Some(&prefix)).try_collect())
            .expect("list the bucket");
        objects
            .into_iter()
            .map(|o| (o.location.to_string(), o.e_tag.unwrap_or_default()))
            .collect()
    }

    /// The lines of every part object (`part-*`) in bucket `weir` under `prefix`, sorted.
    pub fn part_lines(&self, prefix: &str) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = self.client();
        let mut lines = Vec::new();
        for key in self.list(prefix) {
            if !key
                .rsplit('/')
                .next()
                .is_some_and(|f| f.starts_with("part-"))
            {
                continue;
            }
            let path = object_store::path::Path::from(key.as_str());
            let bytes = runtime
                .block_on(async {
                    use object_store::ObjectStoreExt;
                    store.get(&path).await?.bytes().await
                })
                .expect("read a part");
            let text = String::from_utf8(bytes.to_vec()).expect("text lines");
            lines.extend(text.lines().map(str::to_string));
        }
        lines.sort();
        lines
    }

    /// The keys of every object in bucket `weir` under `prefix`.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.objects(prefix).into_iter().map(|(k, _)| k).collect()
    }

    /// The entity tag of object `key` of bucket `weir`: a multipart upload's ends in `-N`,
    /// N its number of parts.
    pub fn e_tag(&self, key: &str) -> String {
        let parent = key.rsplit_once('/').map_or("", |(p, _)| p);
        self.objects(parent)
            .into_iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no object {key}"))
            .1
    }

    /// Runs `scripts/s3.sh <command>` on this server and checks it succeeded.
    pub fn command(&self, command: &str) {
        let out = script(command, Some(&self.dir))
            .output()
            .expect("run scripts/s3.sh");
        assert!(
            out.status.success(),
            "scripts/s3.sh {command} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
