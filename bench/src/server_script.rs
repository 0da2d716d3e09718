//! Servers a benchmark starts with the project's scripts (`scripts/kafka.sh`,
//! `scripts/zookeeper.sh`): each starts its server on a loopback port in a temporary
//! directory, waits until it answers and prints `dir=...` and, as its last line, the
//! server's address; the server is stopped when its guard drops (and by the script's
//! watcher if this process dies first).

use anyhow::{bail, Context, Result};
use std::process::Command;

/// A server this run started, stopped when dropped.
pub struct ScriptServer {
    script: String,
    dir: String,
}

impl ScriptServer {
    /// Runs `scripts/<name> <op>` on this server's directory (`pause`: kill it keeping its
    /// data and port; `resume`: start it again on them).
    pub fn run(&self, op: &str) -> Result<()> {
        let out = Command::new("bash")
            .arg(&self.script)
            .args([op, &self.dir])
            .output()
            .with_context(|| format!("cannot run {}", self.script))?;
        if !out.status.success() {
            bail!(
                "{} {op} failed: {}{}",
                self.script,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .args(["stop", &self.dir])
            .output();
    }
}

/// Runs `scripts/<name> start` with this process as the owner (`owner_env`); returns the
/// server's guard and address.
pub fn start(name: &str, owner_env: &str) -> Result<(ScriptServer, String)> {
    let script = format!("{}/../scripts/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .env(owner_env, std::process::id().to_string())
        .output()
        .with_context(|| format!("cannot run scripts/{name}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "scripts/{name} start failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("dir="))
        .unwrap_or_default()
        .to_string();
    let address = text.lines().last().unwrap_or_default().trim().to_string();
    Ok((ScriptServer { script, dir }, address))
}
