//! What the CLI prints: aligned tables for people, one JSON object for scripts (the shapes
//! of the REST API). Errors go to stderr as `error: ...`, or to stdout as `{"error": ...}`
//! with `--output json`.

use crate::Format;
use serde_json::json;
use std::io::Write;
use weir_jobmanager::cluster::json;
use weir_jobmanager::cluster::rest::model::JobPlan;
use weir_runtime::rpc::messages::{CheckpointSummary, JobSummary};
use weir_runtime::JobGraph;
use weir_runtime::JobId;

/// Prints one line to standard output. A closed standard output (`weir list | head -1`)
/// ends the process quietly with status 0, as a reader that has seen enough is no failure.
macro_rules! out {
    ($($t:tt)*) => { line(format_args!($($t)*)) };
}

/// Writes `args` and a newline to standard output (see [`out!`]).
fn line(args: std::fmt::Arguments<'_>) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// An error and its causes, each said once: a cause whose text its context already
/// contains is left out.
pub fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Prints rows as columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

fn duration(s: &JobSummary) -> String {
    let end = s.ended_ms.unwrap_or_else(weir_runtime::now_ms);
    format!("{:.1}s", (end - s.submitted_ms).max(0) as f64 / 1000.0)
}

/// An error.
pub fn error(format: Format, e: &anyhow::Error) {
    match format {
        // A closed stdout must not turn the failure into success: the exit code stands.
        Format::Json => {
            let _ = writeln!(std::io::stdout(), "{}", json!({ "error": message(e) }));
        }
        Format::Table => eprintln!("error: {}", message(e)),
    }
}

/// A job was submitted without waiting.
pub fn submitted(format: Format, id: JobId) {
    match format {
        Format::Json => out!("{}", json!({ "job_id": id.to_string() })),
        Format::Table => out!("Job {id} submitted"),
    }
}

/// The list of jobs.
pub fn jobs(format: Format, list: &[JobSummary]) {
    if format == Format::Json {
        out!("{}", json::jobs(list));
        return;
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.name.clone(),
                s.status.name().to_string(),
                s.slots.to_string(),
                s.restarts.to_string(),
                duration(s),
            ]
        })
        .collect();
    table(
        &["JOB ID", "NAME", "STATUS", "SLOTS", "RESTARTS", "DURATION"],
        &rows,
    );
}

/// One job.
pub fn job(format: Format, s: &JobSummary) {
    if format == Format::Json {
        out!("{}", json::job(s));
        return;
    }
    let tms: Vec<String> = s.taskmanagers.iter().map(|t| t.to_string()).collect();
    let rows = vec![
        vec!["Job ID".into(), s.id.to_string()],
        vec!["Name".into(), s.name.clone()],
        vec!["Status".into(), s.status.name().into()],
        vec!["Slots".into(), s.slots.to_string()],
        vec!["Subtasks".into(), s.subtasks.to_string()],
        vec!["Restarts".into(), s.restarts.to_string()],
        vec!["Duration".into(), duration(s)],
        vec!["TaskManagers".into(), tms.join(", ")],
        vec![
            "Last checkpoint".into(),
            s.last_checkpoint.map_or("-".into(), |c| c.to_string()),
        ],
        vec![
            "Message".into(),
            s.message.clone().unwrap_or_else(|| "-".into()),
        ],
    ];
    table(&["FIELD", "VALUE"], &rows);
}

/// A job with its plan: the fields of [`job`] and, in JSON, a `plan` with the REST API's
/// shape (`GET /jobs/{id}/plan`); in a table, one line per vertex with its inputs.
pub fn job_with_plan(format: Format, s: &JobSummary, graph: &JobGraph) {
    let plan = JobPlan::of(s.id, graph).plan;
    if format == Format::Json {
        let mut v = json::job(s);
        v["plan"] = serde_json::to_value(&plan).expect("a plan serializes");
        out!("{v}");
        return;
    }
    job(format, s);
    out!("");
    let rows: Vec<Vec<String>> = plan
        .nodes
        .iter()
        .map(|n| {
            let inputs: Vec<String> = n
                .inputs
                .iter()
                .map(|i| format!("{} ({})", i.id, i.ship_strategy))
                .collect();
            vec![
                n.id.clone(),
                n.operator.clone(),
                n.parallelism.to_string(),
                if inputs.is_empty() {
                    "-".into()
                } else {
                    inputs.join(", ")
                },
            ]
        })
        .collect();
    table(&["VERTEX", "OPERATORS", "PARALLELISM", "INPUTS"], &rows);
}

/// A job's checkpoints.
pub fn checkpoints(format: Format, id: JobId, list: &[CheckpointSummary]) {
    if format == Format::Json {
        out!("{}", json::checkpoints(id, list));
        return;
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                c.size.to_string(),
                c.incremental_size.to_string(),
                c.duration_ms.to_string(),
                c.alignment_ms.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "SIZE (B)",
            "STORED (B)",
            "DURATION (MS)",
            "ALIGNMENT (MS)",
        ],
        &rows,
    );
}

/// A request that succeeded with one value (`what`: the JSON field).
pub fn done(format: Format, id: JobId, what: &str, value: &str) {
    match format {
        Format::Json => {
            let v = if what == "cancelled" {
                json!(true)
            } else {
                json!(value)
            };
            out!("{}", json!({ "job_id": id.to_string(), what: v }));
        }
        Format::Table => out!("Job {id}: {what}: {value}"),
    }
}
