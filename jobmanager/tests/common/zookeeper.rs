//! Real ZooKeeper servers for tests, started through `scripts/zookeeper.sh` on loopback
//! with their own ports and directories: one shared by a test binary (stopped by the
//! script's watcher when the test process exits, even when a test fails), or one owned by
//! a test (stopped when dropped), which it may pause (kill -9) and resume.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use weir_runtime::ha::HaConfig;

/// A ZooKeeper server.
pub struct ZooKeeper {
    /// Its address, `127.0.0.1:PORT`.
    pub quorum: String,
    /// Its run directory.
    pub dir: PathBuf,
    /// Whether dropping it stops it.
    owned: bool,
}

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/zookeeper.sh")
}

fn run_script(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .env("WEIR_ZK_OWNER_PID", std::process::id().to_string())
        .output()
        .map_err(|e| format!("cannot run scripts/zookeeper.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl ZooKeeper {
    /// Starts a server this caller owns (one retry when a loaded machine is slow).
    pub fn start() -> Self {
        let mut failures = Vec::new();
        for _ in 0..2 {
            match run_script(&["start"]) {
                Ok(stdout) => {
                    let dir = stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("dir="))
                        .expect("a dir= line");
                    return Self {
                        quorum: stdout.lines().last().unwrap_or_default().trim().to_string(),
                        dir: PathBuf::from(dir),
                        owned: true,
                    };
                }
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "scripts/zookeeper.sh start failed twice:\n{}",
            failures.join("\n---\n")
        );
    }

    /// Kills the server (-9), keeping its data and address.
    pub fn pause(&self) {
        run_script(&["pause", self.dir.to_str().unwrap()]).expect("pause");
    }

    /// Starts a paused server again on the same address.
    pub fn resume(&self) {
        run_script(&["resume", self.dir.to_str().unwrap()]).expect("resume");
    }

    /// HA settings (`key=value`) for cluster `cluster_id` on this server, storing under
    /// `storage`, with `session_timeout` and a 10 s connection timeout.
    pub fn defines(&self, cluster_id: &str, storage: &Path, session_timeout: &str) -> Vec<String> {
        vec![
            "high-availability.type=zookeeper".into(),
            format!("high-availability.zookeeper.quorum={}", self.quorum),
            format!("high-availability.cluster-id={cluster_id}"),
            format!("high-availability.storageDir=file://{}", storage.display()),
            format!("high-availability.zookeeper.client.session-timeout={session_timeout}"),
            "high-availability.zookeeper.client.connection-timeout=10 s".into(),
        ]
    }

    /// HA settings for cluster `cluster_id` on this server, with short timeouts.
    pub fn config(&self, cluster_id: &str) -> HaConfig {
        let defines = self.defines(cluster_id, Path::new("/tmp/weir-ha-test"), "2 s");
        HaConfig::from_pairs(defines.iter().filter_map(|d| d.split_once('=')))
            .expect("valid HA settings")
            .expect("HA on")
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        if self.owned {
            let _ = run_script(&["stop", self.dir.to_str().unwrap_or_default()]);
        }
    }
}

/// This test binary's shared server, started on first use.
pub fn zookeeper() -> &'static ZooKeeper {
    static SHARED: OnceLock<ZooKeeper> = OnceLock::new();
    SHARED.get_or_init(|| {
        let mut zk = ZooKeeper::start();
        zk.owned = false; // a static is never dropped: the script's watcher stops it
        zk
    })
}

/// How long a test waits for anything ZooKeeper does.
pub const WAIT: Duration = Duration::from_secs(30);
