//! The REST API's security against a real `weir jobmanager`: TLS with a certificate made
//! here (rcgen), the cluster secret as a bearer token over it, a client that does not trust
//! the certificate refused, plain HTTP getting no answer, and bad TLS configuration refused
//! naming the key.

mod common;

use common::{spawn_jobmanager, wait_until, Cluster};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A self-signed certificate for 127.0.0.1 and its key, written into `dir`.
fn certificate(dir: &Path, name: &str) -> (String, String, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let der = CertificateDer::from_pem_slice(ck.cert.pem().as_bytes()).unwrap();
    (cert.display().to_string(), key.display().to_string(), der)
}

/// GET `path` over TLS trusting only `root`, with `token` as the bearer token: the status
/// and body, or the I/O error of the handshake.
fn https_get(
    rest: &str,
    root: &CertificateDer<'static>,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(rest)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut tls = StreamOwned::new(conn, tcp);
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(tls, "GET {path} HTTP/1.0\r\nHost: {rest}\r\n{auth}\r\n")?;
    let mut response = String::new();
    match tls.read_to_string(&mut response) {
        Ok(_) => {}
        // Servers may close without close_notify once the answer is out.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(e),
    }
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok((status, body.to_string()))
}

#[test]
fn the_rest_api_over_tls_asks_for_the_secret_and_refuses_untrusting_and_plain_clients() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate(certs.path(), "rest");
    let (_, _, stranger) = certificate(certs.path(), "other");
    let defines = [
        "security.ssl.rest.enabled=true".to_string(),
        format!("security.ssl.rest.certificate={cert}"),
        format!("security.ssl.rest.private-key={key}"),
        "cluster.secret=t0ken".to_string(),
    ];
    let defines: Vec<&str> = defines.iter().map(String::as_str).collect();
    let c = Cluster::start(&defines);

    let (status, body) = https_get(&c.rest, &root, "/overview", Some("t0ken")).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("slots-total"), "{body}");
    let (status, body) = https_get(&c.rest, &root, "/overview", None).unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("t0ken"), "{body}");

    let refused = https_get(&c.rest, &stranger, "/overview", Some("t0ken"));
    let err = refused.expect_err("a client that does not trust the certificate");
    assert!(err.to_string().contains("certificate"), "{err}");

    // Plain HTTP gets no HTTP answer, only a closed connection.
    let mut plain = TcpStream::connect(&c.rest).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(plain, "GET /overview HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("slots-total"));
}

/// Starts a JobManager with `defines` and returns its log once it exited (it must).
fn refused_jobmanager(dir: &Path, defines: &[&str]) -> String {
    let (mut jm, _banner) = spawn_jobmanager(dir, "jobmanager", defines);
    let status = wait_until("the jobmanager's exit", Duration::from_secs(30), || {
        jm.child.try_wait().unwrap()
    });
    assert!(!status.success());
    jm.log()
}

#[test]
fn bad_tls_settings_are_refused_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = refused_jobmanager(dir.path(), &["security.ssl.rest.enabled=true"]);
    assert!(log.contains("security.ssl.rest.certificate"), "{log}");
    let missing = dir.path().join("missing.pem").display().to_string();
    let cert = format!("security.ssl.rest.certificate={missing}");
    let key = format!("security.ssl.rest.private-key={missing}");
    let log = refused_jobmanager(dir.path(), &["security.ssl.rest.enabled=true", &cert, &key]);
    assert!(
        log.contains("security.ssl.rest.certificate") && log.contains("missing.pem"),
        "{log}"
    );
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let cert = format!("security.ssl.rest.certificate={}", garbage.display());
    let log = refused_jobmanager(dir.path(), &["security.ssl.rest.enabled=true", &cert, &key]);
    assert!(log.contains("no certificate"), "{log}");
}
