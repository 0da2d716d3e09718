//! The system programs the harness runs for its faults (`ip`, `tc`, `mount`, `losetup`,
//! `cp`, ...): one way to run them and to report their failure.
//!
//! Invariants: a failure names the program, its arguments, what the fault needs to run
//! (`needs`) and the program's own error output.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// Runs `program args`, failing with its error output and what it `needs`; returns its
/// trimmed standard output.
pub fn run(program: &str, args: &[&str], needs: &str) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({needs}): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Copies `from` (a mounted volume about to go) into `dest`; a failure is reported, not
/// fatal.
pub fn copy_kept(from: &Path, dest: &Path) {
    let out = Command::new("cp").arg("-a").arg(from).arg(dest).output();
    if !out.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "weir-chaos: cannot copy {} to {}",
            from.display(),
            dest.display()
        );
    }
}
