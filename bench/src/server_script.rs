//! Servers a benchmark starts with the project's scripts (`scripts/kafka.sh`,
//! `scripts/zookeeper.sh`): each starts its server on a loopback port in a temporary
//! directory (or, with a prefix such as `ip netns exec NS` and the script's address
//! variable, on an address of a network namespace the caller created), waits until it
//! answers and prints `dir=...` and, as its last line, the server's address; the server is
//! stopped when its guard drops (and by the script's watcher if this process dies first).

use anyhow::{bail, Context, Result};
use std::process::Command;

/// A server this run started, stopped when dropped.
pub struct ScriptServer {
    /// The command every script call runs under (`bash`, or `ip netns exec NS bash`).
    prefix: Vec<String>,
    /// The script's owner variable: a resumed server is stopped when this process exits,
    /// as the started one is.
    owner_env: String,
    script: String,
    dir: String,
}

impl ScriptServer {
    fn command(&self, op: &str) -> Command {
        self.command_under(&self.prefix, op)
    }

    fn command_under(&self, prefix: &[String], op: &str) -> Command {
        let mut cmd = script_command(prefix, &self.script, &[op, &self.dir]);
        cmd.env(&self.owner_env, std::process::id().to_string());
        cmd
    }

    /// Runs `scripts/<name> <op>` on this server's directory (`pause`: kill it keeping its
    /// data and port; `resume`: start it again on them).
    pub fn run(&self, op: &str) -> Result<()> {
        checked_output(self.command(op), &self.script, op).map(drop)
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        // Stopping signals the server's process and deletes its directory: it needs no
        // network, so it runs here, also once a namespace the server ran in is gone.
        let _ = self.command_under(&[], "stop").output();
    }
}

/// Runs `cmd` (`script op ...`); its standard output if it succeeded, an error with
/// everything it printed if not.
fn checked_output(mut cmd: Command, script: &str, op: &str) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {script}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "{script} {op} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// The path of `scripts/<name>`.
fn script_path(name: &str) -> String {
    format!("{}/../scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `prefix... bash script args...`.
fn script_command(prefix: &[String], script: &str, args: &[&str]) -> Command {
    let mut cmd = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg("bash");
            c
        }
        None => Command::new("bash"),
    };
    cmd.arg(script).args(args);
    cmd
}

/// Runs `scripts/<name> <op>` here, for an operation that concerns no server (such as
/// `kafka.sh fetch`, which fills the jar cache).
pub fn run(name: &str, op: &str) -> Result<()> {
    let cmd = script_command(&[], &script_path(name), &[op]);
    checked_output(cmd, &format!("scripts/{name}"), op).map(drop)
}

/// Runs `scripts/<name> start` with this process as the owner (`owner_env`); returns the
/// server's guard and address.
pub fn start(name: &str, owner_env: &str) -> Result<(ScriptServer, String)> {
    start_under(&[], &[], name, owner_env)
}

/// [`start`] under the command `prefix` (`ip netns exec NS`: in a network namespace), with
/// the environment variables `env` added.
pub fn start_under(
    prefix: &[String],
    env: &[(&str, &str)],
    name: &str,
    owner_env: &str,
) -> Result<(ScriptServer, String)> {
    let script = script_path(name);
    let mut cmd = script_command(prefix, &script, &["start"]);
    cmd.env(owner_env, std::process::id().to_string())
        .envs(env.iter().copied());
    let text = checked_output(cmd, &format!("scripts/{name}"), "start")?;
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("dir="))
        .unwrap_or_default()
        .to_string();
    let address = text.lines().last().unwrap_or_default().trim().to_string();
    let server = ScriptServer {
        prefix: prefix.to_vec(),
        owner_env: owner_env.to_string(),
        script,
        dir,
    };
    Ok((server, address))
}
