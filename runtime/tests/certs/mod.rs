//! A certificate authority and a certificate it signed, made for a test (rcgen), for the
//! tests of internal TLS (shared with the CLI's cluster test).

#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A certificate authority and a leaf certificate it signed, as PEM strings.
pub struct Authority {
    /// The authority's certificate.
    pub ca: String,
    /// The leaf certificate (for the name `weir-node`).
    pub cert: String,
    /// The leaf's private key.
    pub key: String,
}

/// Makes a new authority and a leaf certificate it signed.
pub fn authority() -> Authority {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["weir-node".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Authority {
        ca: ca.pem(),
        cert: leaf.pem(),
        key: key.serialize_pem(),
    }
}
