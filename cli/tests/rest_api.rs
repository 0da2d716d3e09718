//! The JobManager's REST API against a real cluster (a `weir jobmanager` and a
//! `weir taskmanager` process on loopback): Flink's routes and shapes with real data, the
//! actions (checkpoint, savepoint, cancel) with their trigger ids polled to the end, the
//! checkpoint history after a cancellation, errors for bad requests, and the OpenAPI
//! document against the routes served.

mod common;

use common::{sensor_args, wait_until, Cluster};
use serde_json::{json, Value};
use std::time::Duration;

/// An HTTP client that returns every status as a response.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(c: &Cluster) -> Self {
        Self {
            base: format!("http://{}", c.rest),
            agent: agent(),
        }
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_json().unwrap())
    }

    fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .send_json(body)
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_json().unwrap())
    }

    fn patch(&self, path: &str) -> (u16, Value) {
        let mut r = self
            .agent
            .patch(format!("{}{path}", self.base))
            .send_empty()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_json().unwrap())
    }

    /// Polls an asynchronous operation until it completed; returns its outcome.
    fn completed(&self, path: &str) -> Value {
        wait_until(path, Duration::from_secs(120), || {
            let v = self.ok(path);
            match v["status"]["id"].as_str() {
                Some("COMPLETED") => Some(v["operation"].clone()),
                Some("IN_PROGRESS") => None,
                other => panic!("unexpected status {other:?}: {v}"),
            }
        })
    }
}

fn error_of(body: &Value) -> String {
    body["errors"][0].as_str().unwrap_or_default().to_string()
}

#[test]
fn the_rest_api_shows_a_running_job_acts_on_it_and_keeps_its_checkpoint_history_after_cancel() {
    let mut c = Cluster::start(&[]);
    c.add_taskmanager(2);
    let api = Api::new(&c);

    let overview = api.ok("/overview");
    assert_eq!(overview["taskmanagers"], 1, "{overview}");
    assert_eq!(overview["slots-total"], 2, "{overview}");
    assert!(api.ok("/config")["weir-version"].is_string());
    let tm = api.ok("/taskmanagers")["taskmanagers"][0].clone();
    assert_eq!(tm["slotsNumber"], 2, "{tm}");
    let (status, body) = api.get(&format!("/taskmanagers/{}", tm["id"]));
    assert_eq!(
        (status, body["freeSlots"].clone()),
        (200, json!(2)),
        "{body}"
    );
    let (status, body) = api.get("/taskmanagers/999");
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("999"), "{body}");

    // A sensor job slow enough to be running while the API is asked, failing once.
    let (out, ck, sp) = (c.path("out"), c.path("ck"), c.path("sp"));
    let mut args = sensor_args(&out, &ck, 1_000_000, Some(2_000));
    args.extend(["--fail-after-records".into(), "4000".into()]);
    let job = c.submit(&args);
    wait_until(
        "the job's failure and a checkpoint",
        Duration::from_secs(120),
        || {
            let i = c.info(&job);
            (i["restarts"].as_u64() >= Some(1) && i["last_checkpoint"].as_u64() >= Some(1))
                .then_some(())
        },
    );
    wait_until("every subtask running", Duration::from_secs(60), || {
        let d = api.ok(&format!("/jobs/{job}"));
        (d["state"] == "RUNNING" && d["status-counts"]["DEPLOYING"] == 0).then_some(())
    });

    let details = api.ok(&format!("/jobs/{job}"));
    assert_eq!(details["jid"], job.as_str());
    assert_eq!(
        details["job_id"],
        job.as_str(),
        "weir's fields are there too"
    );
    assert_eq!(details["isStoppable"], true);
    let vertices = details["vertices"].as_array().unwrap();
    assert!(vertices.len() >= 2, "{details}");
    let running: u64 = vertices
        .iter()
        .map(|v| v["tasks"]["RUNNING"].as_u64().unwrap())
        .sum();
    assert_eq!(running, details["subtasks"].as_u64().unwrap(), "{details}");
    let listed = api.ok("/jobs");
    assert_eq!(listed["jobs"][0]["id"], job.as_str(), "{listed}");
    let jobs = api.ok("/jobs/overview");
    assert_eq!(jobs["jobs"][0]["jid"], job.as_str(), "{jobs}");
    assert_eq!(jobs["jobs"][0]["state"], "RUNNING", "{jobs}");

    let plan = api.ok(&format!("/jobs/{job}/plan"))["plan"].clone();
    assert_eq!(plan["type"], "STREAMING");
    let nodes = plan["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), vertices.len());
    assert!(
        nodes
            .iter()
            .flat_map(|n| n["inputs"].as_array().unwrap())
            .any(|i| i["ship_strategy"] == "HASH"),
        "the key_by is a hash exchange: {plan}"
    );
    let vertex = api.ok(&format!("/jobs/{job}/vertices/0"));
    let subtasks = vertex["subtasks"].as_array().unwrap();
    assert_eq!(
        subtasks.len() as u64,
        vertex["parallelism"].as_u64().unwrap()
    );
    assert!(
        subtasks
            .iter()
            .all(|s| s["status"] == "RUNNING" && s["host"].is_string()),
        "{vertex}"
    );
    let (status, body) = api.get(&format!("/jobs/{job}/vertices/99"));
    assert_eq!(status, 404, "{body}");

    let exceptions = api.ok(&format!("/jobs/{job}/exceptions"));
    let root = exceptions["root-exception"].as_str().unwrap();
    assert!(
        root.contains("reading 4000"),
        "the injected failure: {exceptions}"
    );
    assert_eq!(
        exceptions["exceptionHistory"]["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let config = api.ok(&format!("/jobs/{job}/checkpoints/config"));
    assert_eq!(
        (config["interval"].clone(), config["mode"].clone()),
        (json!(200), json!("exactly_once"))
    );

    // A checkpoint on request, polled to its end.
    let (status, trigger) = api.post(&format!("/jobs/{job}/checkpoints"), json!({}));
    assert_eq!(status, 202, "{trigger}");
    let tid = trigger["request-id"].as_str().unwrap();
    let done = api.completed(&format!("/jobs/{job}/checkpoints/{tid}"));
    let location = done["location"].as_str().unwrap();
    let id = done["checkpointId"].as_u64().unwrap();
    assert!(location.ends_with(&format!("chk-{id}")), "{done}");

    // A savepoint into a directory, polled on Flink's savepoint path.
    let target = format!("file://{}", sp.display());
    let (status, trigger) = api.post(
        &format!("/jobs/{job}/savepoints"),
        json!({ "target-directory": target }),
    );
    assert_eq!(status, 202, "{trigger}");
    let tid = trigger["request-id"].as_str().unwrap();
    let done = api.completed(&format!("/jobs/{job}/savepoints/{tid}"));
    let savepoint = done["location"].as_str().unwrap();
    let path = savepoint.strip_prefix("file://").unwrap();
    assert!(
        std::path::Path::new(path).join("_metadata").is_file(),
        "{done}"
    );

    let checkpoints = api.ok(&format!("/jobs/{job}/checkpoints"));
    assert!(
        checkpoints["counts"]["completed"].as_u64().unwrap() >= 3,
        "{checkpoints}"
    );
    assert_eq!(
        checkpoints["counts"]["restored"], 1,
        "one restart: {checkpoints}"
    );
    assert_eq!(
        checkpoints["latest"]["savepoint"]["external_path"],
        savepoint
    );
    assert!(
        checkpoints["summary"]["state_size"]["max"]
            .as_u64()
            .unwrap()
            > 0
    );
    let newest = &checkpoints["history"][0];
    assert!(
        newest["trigger_timestamp"].as_i64().unwrap() > 0,
        "{newest}"
    );

    // Bad requests name what is wrong.
    let (status, body) = api.get(&format!("/jobs/{job}/savepoints/no-such-trigger"));
    assert_eq!(status, 404, "{body}");
    // An action without a JSON body (what a cross-site form sends) is refused.
    let bare = api
        .agent
        .post(format!("{}/jobs/{job}/stop", api.base))
        .send_empty()
        .unwrap();
    assert_eq!(bare.status().as_u16(), 415);
    let mut bare = bare;
    let why: Value = bare.body_mut().read_json().unwrap();
    assert!(error_of(&why).contains("Content-Type"), "{why}");
    let (status, body) = api.post(
        &format!("/jobs/{job}/savepoints"),
        json!({ "target-directory": 5 }),
    );
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("target-directory"), "{body}");
    let (status, body) = api.patch(&format!("/jobs/{job}?mode=stop"));
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("POST /jobs/"), "{body}");
    let (status, body) = api.post("/jobs/00000000000000ff/savepoints", json!({}));
    assert_eq!(status, 404, "{body}");
    let (status, body) = api.get("/jobs/not-a-job");
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("not-a-job"), "{body}");
    let (status, body) = api.get("/no/such/route");
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("no such route"), "{body}");

    // Cancelled: the checkpoint history stays.
    let (status, body) = api.patch(&format!("/jobs/{job}?mode=cancel"));
    assert_eq!(status, 202, "{body}");
    assert_eq!(c.wait_for_end(&job)["status"], "CANCELLED");
    let after = api.ok(&format!("/jobs/{job}/checkpoints"));
    let completed = |v: &Value| v["counts"]["completed"].as_u64().unwrap();
    assert!(completed(&after) >= completed(&checkpoints), "{after}");
    assert!(!after["history"].as_array().unwrap().is_empty(), "{after}");
    assert_eq!(api.ok("/overview")["jobs-cancelled"], 1);
    let (status, body) = api.patch(&format!("/jobs/{job}"));
    assert_eq!(status, 409, "{body}");
    assert!(error_of(&body).contains("CANCELLED"), "{body}");
}

#[test]
fn the_openapi_document_lists_exactly_the_routes_served() {
    let c = Cluster::start(&[]);
    let api = Api::new(&c);
    let doc = api.ok("/openapi.json");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = weir_jobmanager::cluster::rest::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes);
    // Every documented GET route is served (an unknown id is a 404 that names the id, not
    // the fallback for paths that have no route).
    for (method, path) in &routes {
        if method != "GET" {
            continue;
        }
        let concrete = path
            .replace("{id}", "00000000000000ff")
            .replace("{vid}", "0")
            .replace("{triggerid}", "t");
        let (status, body) = api.get(&concrete);
        assert!(
            status == 200 || status == 404,
            "{concrete}: {status} {body}"
        );
        assert!(
            !error_of(&body).contains("no such route"),
            "{concrete} is not served"
        );
    }
    assert!(
        doc["components"]["schemas"]["JobCheckpoints"].is_object(),
        "bodies are typed"
    );
}
