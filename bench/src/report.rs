//! The JSON line `weir-bench` prints for a job it ran: the throughput, then the fields of
//! the workload, of the checkpoints and of the injected failure's recovery.

use crate::recovery_probe::RECOVERY;
use crate::{quantile_ms, Args, LatencySink, Workload, EXCHANGE_RECORD_BYTES};
use weir_api::{JobExecutionResult, StreamExecutionEnvironment};

/// Returns the JSON line of a job that ran for `seconds` with `result`.
pub(crate) fn result_line(
    args: &Args,
    env: &StreamExecutionEnvironment,
    latency: &LatencySink,
    result: &JobExecutionResult,
    seconds: f64,
) -> serde_json::Value {
    let mut line = serde_json::json!({
        "workload": args.workload.name(),
        "records": args.records,
        "seconds": seconds,
        "records_per_sec": args.records as f64 / seconds,
        "state_backend": args.state_backend.name(),
        "internal_tls": args.internal_tls,
    });
    add_workload_fields(&mut line, args, env, latency, seconds);
    if let Some(ms) = args.checkpoint_interval_ms {
        add_checkpoint_fields(&mut line, ms, args.incremental, result);
    }
    if args.fail_after_records.is_some() {
        add_recovery_time(&mut line);
    }
    line
}

/// Adds the fields particular to the workload (bandwidth, latency or state accesses).
fn add_workload_fields(
    line: &mut serde_json::Value,
    args: &Args,
    env: &StreamExecutionEnvironment,
    latency: &LatencySink,
    seconds: f64,
) {
    match args.workload {
        Workload::Exchange => {
            line["mb_per_sec"] =
                serde_json::json!((args.records * EXCHANGE_RECORD_BYTES) as f64 / seconds / 1e6);
        }
        Workload::Latency => {
            let mut samples =
                std::mem::take(&mut *latency.samples.lock().expect("latency samples"));
            samples.sort_unstable();
            line["rate"] = serde_json::json!(args.rate);
            line["buffer_timeout_ms"] =
                serde_json::json!(env.settings().job.buffer_timeout.as_millis() as u64);
            line["p50_ms"] = serde_json::json!(quantile_ms(&samples, 0.50));
            line["p99_ms"] = serde_json::json!(quantile_ms(&samples, 0.99));
        }
        Workload::KeyedState => {
            let per_sec = args.records as f64 / seconds;
            line["keys"] = serde_json::json!(args.keys);
            line["state_reads_per_sec"] = serde_json::json!(per_sec);
            line["state_writes_per_sec"] = serde_json::json!(per_sec);
        }
        _ => {}
    }
}

/// Adds the statistics of the job's completed checkpoints, taken every `interval_ms`.
pub(crate) fn add_checkpoint_fields(
    line: &mut serde_json::Value,
    interval_ms: u64,
    incremental: bool,
    result: &JobExecutionResult,
) {
    let c = &result.checkpoints;
    let mut durations: Vec<u128> = c.iter().map(|c| c.duration.as_millis()).collect();
    durations.sort_unstable();
    line["checkpoint_interval_ms"] = serde_json::json!(interval_ms);
    line["checkpoints"] = serde_json::json!(c.len());
    line["checkpoint_ms_median"] = serde_json::json!(durations.get(durations.len() / 2));
    line["checkpoint_ms_max"] = serde_json::json!(durations.last());
    line["checkpoint_bytes_max"] = serde_json::json!(c.iter().map(|c| c.size).max());
    let mut stored: Vec<u64> = c.iter().map(|c| c.incremental_size).collect();
    stored.sort_unstable();
    line["checkpoint_stored_bytes_median"] = serde_json::json!(stored.get(stored.len() / 2));
    line["incremental"] = serde_json::json!(incremental);
    if let Some(last) = c.last() {
        line["checkpoint_last_bytes"] = serde_json::json!(last.size);
        line["checkpoint_last_stored_bytes"] = serde_json::json!(last.incremental_size);
        line["checkpoint_last_ms"] = serde_json::json!(last.duration.as_millis() as u64);
    }
    line["alignment_ms_max"] = serde_json::json!(c.iter().map(|c| c.max_alignment_ms).max());
}

/// Adds `recovery_ms`, from the injected failure to the first window result after the
/// restore, when both happened.
fn add_recovery_time(line: &mut serde_json::Value) {
    if let (Some(f), Some(o)) = (RECOVERY.failed_at.get(), RECOVERY.first_output.get()) {
        line["recovery_ms"] =
            serde_json::json!(o.saturating_duration_since(*f).as_secs_f64() * 1000.0);
    }
}
