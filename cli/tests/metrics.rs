//! Metrics of a real cluster (a `weir jobmanager`, a `weir taskmanager` and its job worker,
//! each serving Prometheus metrics on a port of one range): Flink's names and scopes on
//! every endpoint, the same task metrics in the REST API (reported by the worker with its
//! heartbeats), back-pressure and watermarks per vertex, and a bad port refused.

mod common;

use common::{sensor_args, spawn_jobmanager, wait_until, Cluster};
use serde_json::Value;
use std::time::Duration;

/// The value of the first sample of `name` whose labels contain `label`, in every
/// Prometheus text body of `bodies`.
fn sample(bodies: &[String], name: &str, label: &str) -> Option<f64> {
    bodies
        .iter()
        .flat_map(|b| b.lines())
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| l.contains(label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The `/metrics` bodies of every endpoint on `ports` that answers.
fn scrape(ports: std::ops::RangeInclusive<u16>) -> Vec<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    ports
        .filter_map(|p| {
            let mut r = agent
                .get(format!("http://127.0.0.1:{p}/metrics"))
                .call()
                .ok()?;
            r.body_mut().read_to_string().ok()
        })
        .collect()
}

/// A REST metric list's values by id.
fn values(list: &Value) -> Vec<(String, f64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["value"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_process_serves_flinks_metrics_and_the_rest_api_shows_the_workers_reports() {
    // A range of 16 ports below the ephemeral ones (32768 and up), different per test
    // process unless their ids agree modulo 1300.
    let first = 10_000 + (std::process::id() % 1_300) as u16 * 16;
    let last = first + 15;
    let range = format!("metrics.prometheus.port={first}-{last}");
    let mut c = Cluster::start(&[&range, "heartbeat.interval=200"]);
    c.defines.push(range.clone());
    c.add_taskmanager(2);

    let (out, ck) = (c.path("out"), c.path("ck"));
    let job = c.submit(&sensor_args(&out, &ck, 1_000_000, Some(2_000)));
    c.wait_for_checkpoint(&job);
    let label = format!("job_id=\"{job}\"");

    // The JobManager, the TaskManager and the job worker each serve their scope.
    let bodies = wait_until("every endpoint's metrics", Duration::from_secs(60), || {
        let b = scrape(first..=last);
        let ready = sample(&b, "weir_taskmanager_job_task_numRecordsOut", &label)
            .is_some_and(|v| v > 0.0)
            && sample(
                &b,
                "weir_jobmanager_job_numberOfCompletedCheckpoints",
                &label,
            )
            .is_some_and(|v| v >= 1.0);
        ready.then_some(b)
    });
    assert!(bodies.len() >= 3, "JobManager, TaskManager and worker");
    // The cluster-wide gauges of this cluster's JobManager: the body that has its job.
    let jm: Vec<String> = bodies
        .iter()
        .filter(|b| b.contains("weir_jobmanager_job_uptime") && b.contains(&label))
        .cloned()
        .collect();
    assert_eq!(jm.len(), 1, "one JobManager runs this job");
    assert_eq!(sample(&jm, "weir_jobmanager_taskSlotsTotal", ""), Some(2.0));
    assert_eq!(sample(&jm, "weir_jobmanager_numRunningJobs", ""), Some(1.0));
    assert!(sample(&bodies, "weir_jobmanager_job_uptime", &label).unwrap() > 0.0);
    assert_eq!(
        sample(&bodies, "weir_taskmanager_Status_Slots_Total", "tm_id="),
        Some(2.0)
    );
    assert!(sample(&bodies, "weir_taskmanager_Status_Memory_RSS", "tm_id=").unwrap() > 1e6);
    for name in [
        "numRecordsIn",
        "numRecordsInPerSecond",
        "busyTimeMsPerSecond",
        "idleTimeMsPerSecond",
        "backPressuredTimeMsPerSecond",
        "currentOutputWatermark",
        "buffers_inPoolUsage",
        "buffers_outPoolUsage",
    ] {
        let full = format!("weir_taskmanager_job_task_{name}");
        assert!(
            sample(&bodies, &full, &label).is_some(),
            "{full} is published"
        );
    }

    // The REST API: the job's metrics, and each vertex's from the worker's reports.
    let listed = c.rest(&format!("/jobs/{job}/metrics"));
    assert_eq!(listed.as_array().unwrap().len(), 6, "{listed}");
    let got = values(&c.rest(&format!(
        "/jobs/{job}/metrics?get=uptime,numRestarts,numberOfCompletedCheckpoints"
    )));
    assert_eq!(got[1], ("numRestarts".into(), 0.0));
    assert!(got[0].1 > 0.0 && got[2].1 >= 1.0, "{got:?}");
    let source = values(&c.rest(&format!(
        "/jobs/{job}/vertices/0/metrics?get=0.numRecordsOut,1.numRecordsOut"
    )));
    assert_eq!(source.len(), 2, "both subtasks report: {source:?}");
    let windows = wait_until("the windows' watermarks", Duration::from_secs(60), || {
        let w = c.rest(&format!("/jobs/{job}/vertices/1/watermarks"));
        let v = values(&w);
        (v.len() == 2 && v.iter().all(|(_, wm)| *wm > 0.0)).then_some(v)
    });
    assert_eq!(windows[0].0, "0.currentInputWatermark");
    let bp = c.rest(&format!("/jobs/{job}/vertices/0/backpressure"));
    assert_eq!(bp["status"], "ok", "{bp}");
    let subtasks = bp["subtasks"].as_array().unwrap();
    assert_eq!(subtasks.len(), 2, "{bp}");
    for s in subtasks {
        let (ratio, idle, busy) = (
            s["ratio"].as_f64().unwrap(),
            s["idleRatio"].as_f64().unwrap(),
            s["busyRatio"].as_f64().unwrap(),
        );
        assert!(ratio + idle + busy <= 1.0 + 1e-9, "{s}");
        assert!(["ok", "low", "high"].contains(&s["backpressure-level"].as_str().unwrap()));
    }
    let missing = c.rest(&format!("/jobs/{job}/vertices/9/backpressure"));
    assert!(
        missing["errors"][0].as_str().unwrap().contains("'9'"),
        "{missing}"
    );
}

#[test]
fn a_bad_metrics_port_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (mut jm, _banner) = spawn_jobmanager(
        dir.path(),
        "jobmanager",
        &["metrics.prometheus.port=9300-9200"],
    );
    let status = wait_until("the jobmanager's exit", Duration::from_secs(30), || {
        jm.child.try_wait().unwrap()
    });
    assert!(!status.success());
    let log = jm.log();
    assert!(log.contains("metrics.prometheus.port"), "{log}");
}
