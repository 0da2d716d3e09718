//! `weir-bench nexmark --query qN --events N`: a Nexmark query (or several, `--query
//! q0,q5`, one after the other) over `N` generated events (Flink's Nexmark generator settings: 10 million events per second of event
//! time, seed 0) into a discarding sink, with the parallelism, state backend and
//! checkpoints of the other workloads. Prints one JSON line per query with `query`, `events`,
//! `seconds` and `events_per_sec` (and the checkpoint fields with
//! `--checkpoint-interval-ms`).
//!
//! With `--flink-python PY` the same run first writes the same events once as JSON lines
//! (one file per subtask, in the schema of Flink's Nexmark table) into a temporary
//! directory, runs Flink SQL's query over them (`bench/flink/nexmark.py`, PyFlink's
//! mini-cluster, same parallelism, state backend and checkpoint interval), then Weir's
//! (each query on a fresh mini-cluster),
//! and adds Flink's line under `flink` and Weir's events/s over Flink's as `ratio`.

use std::collections::HashMap;
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

/// Runs the queries of `args` (`--query q1,q5,...`) and prints a JSON line for each.
pub(crate) fn main(args: &Args) -> Result<()> {
    let names = args.query.as_deref().context("nexmark needs --query qN")?;
    let queries = names
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<Query>, _>>()?;
    let events = args.events.unwrap_or(args.records);
    anyhow::ensure!(events > 0, "--events must be at least 1");
    let mut flink = match &args.flink_python {
        Some(python) => run_flink(python, args, &queries, events)?,
        None => HashMap::new(),
    };
    for query in queries {
        let (seconds, mut line) = run_weir(args, query, events)?;
        if let Some(theirs) = flink.remove(query.name()) {
            let rate = theirs["events_per_sec"].as_f64().unwrap_or(f64::NAN);
            line["ratio"] = serde_json::json!(events as f64 / seconds / rate);
            line["flink"] = theirs;
        }
        println!("{line}");
    }
    if let Some(kib) = crate::peak_rss_kib() {
        eprintln!("peak_rss_mib={:.1}", kib as f64 / 1024.0);
    }
    Ok(())
}

/// Runs `query` over `events` events on Weir; returns its seconds and JSON line.
fn run_weir(args: &Args, query: Query, events: u64) -> Result<(f64, serde_json::Value)> {
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
    Ok((seconds, line))
}

/// Flink's side of a Nexmark query.
const FLINK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/flink/nexmark.py");

/// Writes the events for Flink, runs `bench/flink/nexmark.py` with `python` for every one
/// of `queries` and returns its JSON lines by query name.
fn run_flink(
    python: &std::path::Path,
    args: &Args,
    queries: &[Query],
    events: u64,
) -> Result<HashMap<String, serde_json::Value>> {
    // Flink's file source skips a directory whose name starts with a dot (as
    // `tempfile::tempdir()`'s do), so this one has a prefix of its own.
    let dir = tempfile::Builder::new()
        .prefix("weir-nexmark-events-")
        .tempdir()
        .context("creating the directory of Flink's events")?;
    let generator = weir_nexmark::NexmarkGenerator::new(NexmarkConfig::default());
    // One file per subtask: Flink's file source reads a subtask's files one after the
    // other, and a second file would start far behind the first one's watermark.
    let files = u64::from(args.parallelism);
    weir_nexmark::write_json_events(&generator, events, dir.path(), files)
        .context("writing the events for Flink")?;
    let names: Vec<&str> = queries.iter().map(|q| q.name()).collect();
    let mut cmd = std::process::Command::new(python);
    cmd.arg(FLINK_SCRIPT)
        .arg("--events-dir")
        .arg(dir.path())
        .args([
            "--events",
            &events.to_string(),
            "--queries",
            &names.join(","),
        ])
        .args(["--parallelism", &args.parallelism.to_string()])
        .args(["--state-backend", flink_backend(args.state_backend)]);
    if let Some(ms) = args.checkpoint_interval_ms {
        cmd.args(["--checkpoint-interval-ms", &ms.to_string()]);
        cmd.args(["--incremental", &args.incremental.to_string()]);
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
    let mut lines = HashMap::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("Flink's line is not JSON: {line}"))?;
        let query = value["query"].as_str().unwrap_or_default().to_owned();
        lines.insert(query, value);
    }
    if let Some(missing) = names.iter().find(|n| !lines.contains_key(**n)) {
        let tail = String::from_utf8_lossy(&out.stderr[out.stderr.len().saturating_sub(4_000)..]);
        anyhow::bail!("Flink's side printed no line for {missing}; its errors end with: {tail}");
    }
    Ok(lines)
}

/// Flink's name of a state backend.
fn flink_backend(kind: weir_api::StateBackendKind) -> &'static str {
    match kind {
        weir_api::StateBackendKind::RocksDb => "rocksdb",
        _ => "hashmap",
    }
}
