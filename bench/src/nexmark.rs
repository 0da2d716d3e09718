//! `weir-bench nexmark --query qN --events N`: one Nexmark query over `N` generated
//! events (Flink's Nexmark generator settings: 10 million events per second of event
//! time, seed 0) into a discarding sink, with the parallelism, state backend and
//! checkpoints of the other workloads. Prints one JSON line with `query`, `events`,
//! `seconds` and `events_per_sec` (and the checkpoint fields with
//! `--checkpoint-interval-ms`).
//!
//! With `--flink-python PY` the same run first writes the same events as JSON lines
//! (two files per subtask, in the schema of Flink's Nexmark table) into a temporary
//! directory, runs Flink SQL's query over them (`bench/flink/nexmark.py`, PyFlink's
//! mini-cluster, same parallelism, state backend and checkpoint interval), then Weir's,
//! and adds Flink's line under `flink` and Weir's events/s over Flink's as `ratio`.

use std::fmt::Debug;
use std::time::Instant;

use anyhow::{Context, Result};
use weir_api::sink::DiscardingSink;
use weir_api::{DataStream, Record, StreamExecutionEnvironment};
use weir_nexmark::{build, nexmark_events, NexmarkConfig, Query, ResultSink};

use crate::Args;

/// Discards a query's results.
struct Discard;

impl ResultSink for Discard {
    fn sink<R: Record + Debug>(&mut self, query: Query, results: DataStream<R>) {
        results
            .add_sink(DiscardingSink)
            .name(&format!("{query}-sink"));
    }
}

/// Runs the query of `args` and prints its JSON line.
pub(crate) fn main(args: &Args) -> Result<()> {
    let name = args.query.as_deref().context("nexmark needs --query qN")?;
    let query: Query = name.parse()?;
    let events = args.events.unwrap_or(args.records);
    anyhow::ensure!(events > 0, "--events must be at least 1");
    let flink = match &args.flink_python {
        Some(python) => Some(run_flink(python, args, query, events)?),
        None => None,
    };
    let env = StreamExecutionEnvironment::new();
    let checkpoint_dir = crate::configure(&env, args)?;
    let stream = nexmark_events(&env, NexmarkConfig::default(), events);
    build(query, &stream, &mut Discard);
    let started = Instant::now();
    let result = env.execute(&format!("nexmark-{query}"));
    let seconds = started.elapsed().as_secs_f64();
    if let Some(dir) = &checkpoint_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let result = result?;
    let mut line = serde_json::json!({
        "workload": "nexmark",
        "query": query.name(),
        "events": events,
        "parallelism": args.parallelism,
        "state_backend": args.state_backend.name(),
        "seconds": seconds,
        "events_per_sec": events as f64 / seconds,
    });
    if let Some(ms) = args.checkpoint_interval_ms {
        crate::report::add_checkpoint_fields(&mut line, ms, args.incremental, &result);
    }
    if let Some(flink) = flink {
        let theirs = flink["events_per_sec"].as_f64().unwrap_or(f64::NAN);
        line["ratio"] = serde_json::json!(events as f64 / seconds / theirs);
        line["flink"] = flink;
    }
    println!("{line}");
    if let Some(kib) = crate::peak_rss_kib() {
        eprintln!("peak_rss_mib={:.1}", kib as f64 / 1024.0);
    }
    Ok(())
}

/// Flink's side of a Nexmark query.
const FLINK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/flink/nexmark.py");

/// Writes the events for Flink, runs `bench/flink/nexmark.py` with `python` and returns its
/// JSON line.
fn run_flink(
    python: &std::path::Path,
    args: &Args,
    query: Query,
    events: u64,
) -> Result<serde_json::Value> {
    let dir = tempfile::tempdir().context("creating the directory of Flink's events")?;
    let generator = weir_nexmark::NexmarkGenerator::new(NexmarkConfig::default());
    let files = 2 * u64::from(args.parallelism);
    weir_nexmark::write_json_events(&generator, events, dir.path(), files)
        .context("writing the events for Flink")?;
    let mut cmd = std::process::Command::new(python);
    cmd.arg(FLINK_SCRIPT)
        .arg("--events-dir")
        .arg(dir.path())
        .args(["--events", &events.to_string(), "--queries", query.name()])
        .args(["--parallelism", &args.parallelism.to_string()])
        .args(["--state-backend", flink_backend(args.state_backend)]);
    if let Some(ms) = args.checkpoint_interval_ms {
        cmd.args(["--checkpoint-interval-ms", &ms.to_string()]);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "Flink's side failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout
        .lines()
        .last()
        .context("Flink's side printed nothing")?;
    serde_json::from_str(last).with_context(|| format!("Flink's line is not JSON: {last}"))
}

/// Flink's name of a state backend.
fn flink_backend(kind: weir_api::StateBackendKind) -> &'static str {
    match kind {
        weir_api::StateBackendKind::RocksDb => "rocksdb",
        _ => "hashmap",
    }
}
