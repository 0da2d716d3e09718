//! The sensor pipeline's checks of argument combinations that clap cannot express: output
//! directories that are one directory under two spellings, flags that need others, and
//! values out of range; each error names the flag.

use super::Args;
use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};

/// Returns `path` made absolute with `.` and `..` resolved, following symbolic links for
/// the part that exists, so two spellings of one directory compare equal.
fn normalized(path: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("bad path {}", path.display()))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    // Resolve links in the longest existing prefix.
    let mut existing = out.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(name) => rest.push(name.to_owned()),
            None => break,
        }
        existing.pop();
    }
    let mut resolved = existing.canonicalize().unwrap_or(existing);
    resolved.extend(rest.iter().rev());
    Ok(resolved)
}

pub fn check_dirs(args: &Args) -> anyhow::Result<()> {
    if let Some(out) = &args.output {
        let out = normalized(out)?;
        for (flag, dir) in [
            ("--alerts-output", &args.alerts_output),
            ("--top-output", &args.top_output),
        ] {
            if let Some(dir) = dir {
                if normalized(dir)? == out {
                    bail!(
                        "{flag} {} is the --output directory: give it a directory of its own",
                        dir.display()
                    );
                }
            }
        }
    }
    if let (Some(a), Some(t)) = (&args.alerts_output, &args.top_output) {
        if normalized(a)? == normalized(t)? {
            bail!("--alerts-output and --top-output must be different directories");
        }
    }
    if args.window_ms == 0 {
        bail!("--window-ms must be at least 1");
    }
    if args.checkpoint_interval_ms == Some(0) {
        bail!("--checkpoint-interval-ms must be at least 1");
    }
    if args.throttle_records_per_sec == Some(0) {
        bail!("--throttle-records-per-sec must be at least 1");
    }
    if args.checkpoint_dir.is_some() && args.checkpoint_interval_ms.is_none() {
        bail!("--checkpoint-dir needs --checkpoint-interval-ms");
    }
    if args.stop_with_savepoint_after_records.is_some() && args.checkpoint_interval_ms.is_none() {
        bail!("--stop-with-savepoint-after-records needs --checkpoint-interval-ms");
    }
    if args.savepoint_dir.is_some() && args.stop_with_savepoint_after_records.is_none() {
        bail!("--savepoint-dir needs --stop-with-savepoint-after-records");
    }
    if args.allow_non_restored_state && args.from_savepoint.is_none() {
        bail!("--allow-non-restored-state needs --from-savepoint");
    }
    if args.kafka_brokers.is_some() && args.input_topic.is_none() {
        bail!("--kafka-brokers needs --input-topic");
    }
    if args.input_topic.is_some() && args.input.is_some() {
        bail!("--input and --input-topic both name the readings: give one");
    }
    if args.fail_before_commit
        && (args.checkpoint_interval_ms.is_none()
            || (args.output_topic.is_none() && args.alerts_topic.is_none()))
    {
        bail!("--fail-before-commit needs --checkpoint-interval-ms and --output-topic or --alerts-topic");
    }
    if args.kafka_brokers.is_some() && !cfg!(feature = "kafka") {
        bail!("this sensor_pipeline was built without the `kafka` feature");
    }
    #[cfg(feature = "postgres")]
    if let Some(table) = &args.output_table {
        super::postgres::check_table(table)?;
    }
    if args.postgres_url.is_some() && !cfg!(feature = "postgres") {
        bail!("this sensor_pipeline was built without the `postgres` feature");
    }
    Ok(())
}
