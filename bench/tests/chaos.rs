//! The short chaos schedule CI runs on every submission: the real `weir-chaos` binary with
//! a fixed seed, fifteen faults of every kind on a real cluster (ZooKeeper from
//! `scripts/zookeeper.sh`, JobManagers and TaskManagers as processes), and every output
//! record checked. A long run with any seed is `weir-chaos --seed S --faults N` (README).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run of fifteen faults takes a few minutes; a hung run fails after this.
const TIMEOUT: Duration = Duration::from_secs(900);

/// The `weir` binary, built beside this test's profile by `cargo test --workspace`.
fn weir_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable is in <profile>/deps");
    let weir = profile.join("weir");
    assert!(
        weir.is_file(),
        "{} is missing: build it with cargo build -p weir-cli",
        weir.display()
    );
    weir
}

#[test]
fn a_short_seeded_schedule_of_every_fault_kind_loses_and_duplicates_nothing() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir-chaos"))
        .args(["--seed", "10", "--faults", "15", "--rate", "10000"])
        .arg("--weir")
        .arg(weir_bin())
        .arg("--job")
        .arg(env!("CARGO_BIN_EXE_weir-chaos-job"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir-chaos starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("weir-chaos runs") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("weir-chaos ran for more than {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "weir-chaos failed ({status}):\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last line is no JSON ({e}): {last}\n{stderr}"));
    assert_eq!(report["faults_injected"], 15, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicated"], 0, "{report}");
    assert_eq!(report["violations"], 0, "{report}");
    assert_eq!(report["incomplete_checkpoints_left"], 0, "{report}");
    for kind in [
        "kill-taskmanager",
        "kill-worker",
        "kill-jobmanager",
        "freeze-taskmanager",
        "freeze-worker",
        "freeze-jobmanager",
        "restart-zookeeper",
        "corrupt-checkpoint",
        "fill-checkpoint-storage",
    ] {
        assert!(
            report["faults"][kind].as_u64() >= Some(1),
            "{kind}: {report}"
        );
    }
    assert_eq!(
        report["records_checked"], report["records"],
        "every record is checked: {report}"
    );
}
