//! A JobManager whose standard output is gone serves on: whoever started it may read the
//! first banner and close the pipe, and with high availability the JobManager prints its
//! banner again each time it leads anew (found by `weir-chaos`: a JobManager that lost its
//! ZooKeeper session and led again died writing its second banner into a closed pipe).

mod common;

use common::{wait_until, weir_bin, Proc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn a_jobmanager_whose_standard_output_is_closed_logs_it_and_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("jobmanager.log");
    let mut child = Command::new(weir_bin())
        .args(["jobmanager", "--rpc-address", "127.0.0.1:0"])
        .args(["--rest-address", "127.0.0.1:0", "-D"])
        .arg(format!(
            "jobmanager.artifacts.dir={}",
            dir.path().join("artifacts").display()
        ))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Close the read end of the pipe before the banner is written.
    drop(child.stdout.take());
    let jm = Proc { child, log };
    wait_until("the JobManager to report its closed output", WAIT, || {
        jm.log()
            .contains("cannot print the JobManager's banner on standard output")
            .then_some(())
    });
    let rest = jm
        .log()
        .lines()
        .find(|l| l.contains("REST API listening"))
        .and_then(|l| l.split("address=").nth(1)?.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no REST address in the log: {}", jm.log()));
    let mut s = TcpStream::connect(&rest).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET /overview HTTP/1.0\r\nHost: {rest}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    let mut jm = jm;
    assert!(
        jm.child.try_wait().unwrap().is_none(),
        "the JobManager serves on: {}",
        jm.log()
    );
}
