//! `--internal-tls`: the mini-cluster's data connections speak mutual TLS
//! (`security.ssl.internal.*`), with a certificate authority and a certificate made for
//! the run (rcgen), so the benchmark measures what TLS costs the data plane.
//!
//! Invariant: nothing is left on disk; the PEM files live only while they are loaded.

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use weir_runtime::rpc::tls::{InternalTls, InternalTlsFiles};

/// A TLS set-up whose certificate its own trusted authority signed.
pub(crate) fn ephemeral() -> Result<InternalTls> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["weir-bench".to_string()])?.signed_by(&key, &ca)?;
    let dir = tempfile::tempdir().context("a directory for the run's certificates")?;
    let write = |name: &str, pem: String| -> Result<std::path::PathBuf> {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let files = InternalTlsFiles {
        certificate: write("cert.pem", leaf.pem())?,
        private_key: write("key.pem", key.serialize_pem())?,
        trusted: write("ca.pem", ca.pem())?,
    };
    Ok(InternalTls::load(&files)?)
}
