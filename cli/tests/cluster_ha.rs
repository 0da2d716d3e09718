//! JobManager high availability with real processes and a real ZooKeeper
//! (`scripts/zookeeper.sh`): two `weir jobmanager`s with the same `high-availability.*`
//! settings, one leading and one standing by; the CLI and a TaskManager find the leader
//! through ZooKeeper without `--jobmanager`; after `kill -9` of the leader the standby
//! leads (once the leader's session expires) and the CLI finds it. A TaskManager started
//! before any JobManager waits for one. Bad settings and an unreachable quorum are errors
//! that name them.

mod common;
#[path = "../../jobmanager/tests/common/zookeeper.rs"]
mod zookeeper;

use common::{
    output_within, spawn_jobmanager, spawn_taskmanager, wait_until, weir_bin, Cluster,
    COMMAND_TIMEOUT,
};
use std::process::{Command, Output};
use std::time::Duration;
use zookeeper::ZooKeeper;

/// HA settings (`key=value`) for cluster `id` on `zk`, storing under `dir`.
fn ha(zk: &ZooKeeper, id: &str, dir: &std::path::Path) -> Vec<String> {
    zk.defines(id, dir, "2 s")
}

/// Runs `weir VERB` with `defines` and no `--jobmanager`.
fn weir(defines: &[String], args: &[&str]) -> Output {
    let mut cmd = Command::new(weir_bin());
    for d in defines {
        cmd.args(["-D", d]);
    }
    cmd.args(args);
    output_within(cmd, COMMAND_TIMEOUT)
}

fn assert_lists_jobs(out: &Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_standby_jobmanager_leads_after_the_leader_is_killed_and_the_cli_finds_each_leader() {
    let zk = ZooKeeper::start();
    let dir = tempfile::tempdir().unwrap();
    let defines = ha(&zk, "takeover", dir.path());
    let refs: Vec<&str> = defines.iter().map(String::as_str).collect();
    let mut leader = Cluster::start(&refs);
    let (mut second, banner) = spawn_jobmanager(dir.path(), "standby", &refs);
    wait_until(
        "the standby to join the election",
        Duration::from_secs(30),
        || second.log().contains("JobManager candidate").then_some(()),
    );
    assert_lists_jobs(&weir(&defines, &["list"]));

    // A TaskManager without --jobmanager registers with the leader found in ZooKeeper.
    let _tm = spawn_taskmanager(dir.path(), 0, 1, &defines);
    wait_until(
        "the taskmanager to register with the leader",
        Duration::from_secs(30),
        || (!leader.taskmanager_ids().is_empty()).then_some(()),
    );
    assert!(
        banner.try_recv().is_err(),
        "the standby serves while the leader leads"
    );

    leader.jm.kill9();
    let line = banner
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the standby did not take over: {}", second.log()));
    let (rpc, _) = weir_jobmanager::cluster::banner::parse(&line)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert_ne!(rpc.to_string(), leader.rpc);
    // The CLI finds the new leader (the old one is gone).
    assert_lists_jobs(&weir(&defines, &["list"]));
    second.kill9();
}

#[test]
fn a_taskmanager_started_before_any_jobmanager_waits_and_registers_with_the_first_leader() {
    let zk = ZooKeeper::start();
    let dir = tempfile::tempdir().unwrap();
    let defines = ha(&zk, "early", dir.path());
    let tm = spawn_taskmanager(dir.path(), 0, 1, &defines);
    wait_until(
        "the taskmanager to wait for a leader",
        Duration::from_secs(60),
        || {
            tm.log()
                .contains("succeeds to establish session")
                .then_some(())
        },
    );
    assert!(tm.child.id() > 0 && !tm.log().contains("taskmanager registered"));
    let refs: Vec<&str> = defines.iter().map(String::as_str).collect();
    let leader = Cluster::start(&refs);
    wait_until(
        "the early taskmanager to register",
        Duration::from_secs(60),
        || (!leader.taskmanager_ids().is_empty()).then_some(()),
    );
}

#[test]
fn an_unreachable_quorum_fails_the_cli_and_a_jobmanager_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let defines = vec![
        "high-availability.type=zookeeper".to_string(),
        format!("high-availability.zookeeper.quorum=127.0.0.1:{port}"),
        format!(
            "high-availability.storageDir=file://{}",
            dir.path().display()
        ),
        "high-availability.zookeeper.client.connection-timeout=1 s".to_string(),
    ];
    let want = format!("ZooKeeper quorum 127.0.0.1:{port} is unreachable");
    for args in [
        &["list"][..],
        &[
            "jobmanager",
            "--rpc-address",
            "127.0.0.1:0",
            "--rest-address",
            "127.0.0.1:0",
        ][..],
    ] {
        let out = weir(&defines, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&want), "{args:?}: {stderr}");
    }
}

#[test]
fn incomplete_or_malformed_high_availability_settings_are_refused_naming_the_key() {
    let out = weir(&["high-availability.type=zookeeper".into()], &["list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("high-availability.zookeeper.quorum"),
        "{stderr}"
    );
    let out = weir(
        &[
            "high-availability.type=zookeeper".into(),
            "high-availability.zookeeper.quorum=127.0.0.1:1".into(),
            "high-availability.storageDir=file:///tmp".into(),
            "high-availability.zookeeper.client.session-timeout=soon".into(),
        ],
        &["list"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("high-availability.zookeeper.client.session-timeout")
            && stderr.contains("-D high-availability.zookeeper.client.session-timeout"),
        "{stderr}"
    );
}
