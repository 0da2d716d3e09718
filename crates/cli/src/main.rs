//! `weir`: the command-line client.
//!
//! `weir run PROGRAM [-- ARGS]` runs a job program. A job program is a Rust binary built
//! against `weir-api` that ends with `env.execute(..)`; run this way (without a cluster
//! address) it executes on its embedded local mini-cluster, and `weir run` exits with the
//! program's status. Submitting to a standalone JobManager (`--jobmanager HOST:PORT`) and
//! the cluster verbs come with the standalone cluster.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::Command;

/// Weir: a Flink-style distributed stream processing runtime.
#[derive(Parser, Debug)]
#[command(name = "weir", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Run a job program on its embedded local mini-cluster and wait for it to end.
    Run {
        /// Default parallelism for the job (passed as WEIR_PARALLELISM).
        #[arg(long)]
        parallelism: Option<u16>,
        /// The job program (a binary built against weir-api).
        program: PathBuf,
        /// Arguments for the program (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn run(program: PathBuf, parallelism: Option<u16>, args: Vec<String>) -> Result<i32> {
    if !program.is_file() {
        bail!(
            "job program {} does not exist or is not a file",
            program.display()
        );
    }
    let mut cmd = Command::new(&program);
    cmd.args(&args);
    if let Some(p) = parallelism {
        if p == 0 {
            bail!("--parallelism must be at least 1");
        }
        cmd.env("WEIR_PARALLELISM", p.to_string());
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot start job program {}", program.display()))?;
    Ok(status.code().unwrap_or(1))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Verb::Run {
            parallelism,
            program,
            args,
        } => {
            let code = run(program, parallelism, args)?;
            std::process::exit(code);
        }
    }
}
