//! Mutual TLS on control connections (`security.ssl.internal.*`) in a real cluster: a
//! certificate authority and a cluster certificate made here (rcgen); a JobManager, a
//! TaskManager, its job worker and the CLI all speak TLS and a job runs to its end; a CLI
//! with a certificate of another authority, and one without TLS, are refused.

mod common;

use common::{output_lines, output_within, sensor_args, weir_bin, Cluster};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// A certificate authority and a certificate it issued, as PEM files in `dir` named after
/// `name`: (certificate, key, authority).
fn issue(dir: &Path, name: &str) -> [String; 3] {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["weir-node".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let write = |suffix: &str, pem: String| {
        let p = dir.join(format!("{name}-{suffix}.pem"));
        std::fs::write(&p, pem).unwrap();
        format!("{}", p.display())
    };
    [
        write("cert", leaf.pem()),
        write("key", key.serialize_pem()),
        write("ca", ca.pem()),
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
    let ours = tls_defines(&issue(certs.path(), "cluster"));
    let theirs = tls_defines(&issue(certs.path(), "stranger"));
    let refs: Vec<&str> = ours.iter().map(String::as_str).collect();
    let mut c = Cluster::start(&refs);
    c.defines.extend(ours.iter().cloned());
    c.add_taskmanager(2);

    let job = c.submit(&sensor_args(&c.path("out"), &c.path("ck"), 20_000, None));
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    assert!(!output_lines(&c.path("out")).is_empty());

    // A CLI whose certificate another authority issued is refused in the handshake.
    let o = list(&c, &theirs);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("TLS handshake failed"), "{err}");
    // A CLI without TLS gets no answer it could take for one.
    let o = list(&c, &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
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
