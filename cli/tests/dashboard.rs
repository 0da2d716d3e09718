//! The web dashboard in a real browser: Debian's `chromium`, headless, driven over the
//! DevTools protocol against a real cluster running a sensor job. The page must draw the
//! job's graph (one box per vertex, records flowing) and the checkpoint chart from real
//! data, and a click on its Cancel button must cancel the job.

mod common;

use common::{sensor_args, wait_until, Cluster};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// A headless chromium, killed when dropped.
struct Browser {
    child: Child,
    devtools: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromium with its DevTools endpoint on a free loopback port.
    fn start() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium (Debian's `chromium` package) runs the dashboard test");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ws://") {
                    let _ = tx.send(url.split('/').next().unwrap_or_default().to_string());
                }
            }
        });
        let devtools = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium announces its DevTools endpoint");
        Self {
            child,
            devtools,
            _profile: profile,
        }
    }

    /// Opens `url` in a new tab, once loaded, and returns a DevTools session on it.
    fn open(&self, url: &str) -> Page {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let target: Value = agent
            .put(format!("http://{}/json/new?about:blank", self.devtools))
            .send_empty()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let ws = target["webSocketDebuggerUrl"].as_str().unwrap();
        let (socket, _) = tungstenite::connect(ws).unwrap();
        if let MaybeTlsStream::Plain(s) = socket.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(180))).unwrap();
        }
        let mut page = Page {
            socket,
            next: 0,
            events: Vec::new(),
        };
        page.call("Page.enable", json!({}));
        page.call("Page.navigate", json!({ "url": url }));
        page.wait_for("Page.loadEventFired");
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DevTools session on one tab.
struct Page {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
    /// Events read while waiting for a command's result.
    events: Vec<String>,
}

impl Page {
    /// Sends a DevTools command and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let request = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::Text(request.to_string().into()))
            .unwrap();
        loop {
            let Message::Text(text) = self.socket.read().unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
            if let Some(event) = v["method"].as_str() {
                self.events.push(event.to_string());
            }
        }
    }

    /// Reads messages until the event `method` arrives.
    fn wait_for(&mut self, method: &str) {
        if self.events.iter().any(|e| e == method) {
            return;
        }
        loop {
            let Message::Text(text) = self.socket.read().unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["method"] == method {
                return;
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
        );
        assert!(r["exceptionDetails"].is_null(), "{expression}: {r}");
        r["result"]["value"].clone()
    }
}

/// Resolves, once the job page shows every vertex with records flowing into some and at
/// least one checkpoint bar, to what it drew; rejects after two minutes with the page's text.
const RENDERED: &str = r#"new Promise((ok, fail) => {
  const t0 = Date.now();
  (function check() {
    const vertices = document.querySelectorAll('#dag g.vertex').length;
    const bars = document.querySelectorAll('#checkpoint-chart rect.ckpt-bar').length;
    const rates = [...document.querySelectorAll('#dag text.rate')].map((e) => e.textContent);
    if (vertices > 0 && bars > 0 && rates.some((r) => !r.startsWith('0/s'))) {
      ok({ vertices, bars, rates, state: document.getElementById('job-state').textContent });
    } else if (Date.now() - t0 > 120000) {
      fail(new Error(document.body.innerText));
    } else {
      setTimeout(check, 200);
    }
  })();
})"#;

#[test]
fn the_dashboard_draws_a_running_jobs_graph_and_checkpoints_and_its_cancel_button_cancels_it() {
    let mut c = Cluster::start(&["heartbeat.interval=200"]);
    c.add_taskmanager(2);
    let (out, ck) = (c.path("out"), c.path("ck"));
    let job = c.submit(&sensor_args(&out, &ck, 1_000_000, Some(2_000)));
    c.wait_for_checkpoint(&job);
    let nodes = c.rest(&format!("/jobs/{job}/plan"))["plan"]["nodes"]
        .as_array()
        .unwrap()
        .len();

    let browser = Browser::start();
    let mut page = browser.open(&format!("http://{}/#/job/{job}", c.rest));
    let drawn = page.eval(RENDERED);
    assert_eq!(drawn["vertices"], nodes, "{drawn}");
    assert_eq!(drawn["state"], "RUNNING", "{drawn}");
    let shot = page.call("Page.captureScreenshot", json!({ "format": "png" }));
    let png = shot["data"].as_str().unwrap();
    assert!(
        png.starts_with("iVBORw0KGgo") && png.len() > 10_000,
        "a PNG of the page"
    );

    page.eval("document.getElementById('cancel').click(); true");
    assert_eq!(c.wait_for_end(&job)["status"], "CANCELLED");
    wait_until(
        "the page showing the cancellation",
        Duration::from_secs(40),
        || {
            let s = page.eval("document.getElementById('job-state')?.textContent ?? ''");
            (s == "CANCELLED").then_some(())
        },
    );
    let overview =
        page.eval("fetch('/jobs/overview').then((r) => r.json()).then((j) => j.jobs[0].state)");
    assert_eq!(overview, "CANCELLED");
}
