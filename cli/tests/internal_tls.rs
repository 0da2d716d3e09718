//! Mutual TLS on control connections (`security.ssl.internal.*`) in a real cluster: a
//! certificate authority and a cluster certificate made here (rcgen); a JobManager, a
//! TaskManager, its job worker and the CLI all speak TLS and a job runs to its end; a CLI
//! with a certificate of another authority, and one without TLS, are refused.
//! Two TaskManagers with one slot each run the job's two subtasks, so its keyed exchange
//! crosses a data connection between their workers, inside TLS too.

#[path = "../../runtime/tests/certs/mod.rs"]
mod certs;
mod common;

use certs::authority;
use common::{output_lines, output_within, sensor_args, weir_bin, Cluster};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// A certificate authority and a certificate it issued, as PEM files in `dir` named after
/// `name`: (certificate, key, authority).
fn issue(dir: &Path, name: &str) -> [String; 3] {
    let made = authority();
    let write = |suffix: &str, pem: &str| {
        let p = dir.join(format!("{name}-{suffix}.pem"));
        std::fs::write(&p, pem).unwrap();
        format!("{}", p.display())
    };
    [
        write("cert", &made.cert),
        write("key", &made.key),
        write("ca", &made.ca),
    ]
}

fn tls_defines([cert, key, ca]: &[String; 3]) -> Vec<String> {
    vec![
        "security.ssl.internal.enabled=true".into(),
        format!("security.ssl.internal.certificate={cert}"),
        format!("security.ssl.internal.private-key={key}"),
        format!("security.ssl.internal.trusted-certificates={ca}"),
    ]
}

#[test]
fn a_cluster_speaking_mutual_tls_runs_a_job_and_refuses_untrusted_and_plain_peers() {
    let certs = tempfile::tempdir().unwrap();
    let cluster = issue(certs.path(), "cluster");
    let stranger = issue(certs.path(), "stranger");
    let ours = tls_defines(&cluster);
    let theirs = tls_defines(&stranger);
    // Trusts the cluster's authority, but another authority issued its own certificate.
    let trusting = tls_defines(&[stranger[0].clone(), stranger[1].clone(), cluster[2].clone()]);
    let refs: Vec<&str> = ours.iter().map(String::as_str).collect();
    let mut c = Cluster::start(&refs);
    c.defines.extend(ours.iter().cloned());
    for _ in 0..2 {
        // At `info` the workers (the job program logs warnings only) say whether their
        // data planes speak TLS.
        let mut tm = Command::new(weir_bin());
        tm.env("RUST_LOG", "info");
        c.add_taskmanager_with(1, tm);
    }

    let job = c.submit(&sensor_args(&c.path("out"), &c.path("ck"), 20_000, None));
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    assert!(!output_lines(&c.path("out")).is_empty());
    let logs = c.logs();
    assert!(
        logs.matches("data_tls=true").count() >= 2 && !logs.contains("data_tls=false"),
        "both workers' data planes speak TLS\n{logs}"
    );

    // A CLI whose certificate another authority issued is refused in the handshake.
    let o = list(&c, &theirs);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("TLS handshake failed"), "{err}");
    // One that trusts the JobManager is refused by it, and told so too.
    let o = list(&c, &trusting);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("TLS handshake failed"), "{err}");
    // A CLI without TLS gets no answer it could take for one, and is told to enable TLS.
    let o = list(&c, &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("security.ssl.internal.enabled"), "{err}");
    let log = c.jm.log();
    assert!(log.contains("TLS handshake failed"), "{log}");
    assert_eq!(list(&c, &ours).status.code(), Some(0));
}

/// `weir list` against `c` with `defines`.
fn list(c: &Cluster, defines: &[String]) -> Output {
    let mut cmd = Command::new(weir_bin());
    for d in defines {
        cmd.args(["-D", d]);
    }
    cmd.args(["list", "--jobmanager", &c.rpc]);
    output_within(cmd, Duration::from_secs(60))
}
