//! Mutual TLS on control connections (`security.ssl.internal.*`): every process of a
//! cluster presents the certificate of `security.ssl.internal.certificate` and accepts a
//! peer only if the peer's chain leads to one of `security.ssl.internal.trusted-certificates`,
//! as Flink's internal SSL does with its shared keystore and truststore (PEM files here).
//!
//! Installed once per process ([`install`]) before its first control connection; [`client`]
//! and [`server`] then wrap every connection, and the `WRPC` handshake (with the cluster
//! secret) runs inside the TLS session. Host names are not checked (Flink's default for
//! internal connections): trust comes from the certificate authority alone, so one
//! certificate may serve every host.
//!
//! Invariants: a process either speaks TLS on every control connection or on none; a peer
//! whose certificate is not trusted, or that speaks plain, is refused during the handshake
//! with an error that names it.

use super::RpcError;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore,
    ServerConfig, SignatureScheme,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A control connection: plain TCP, or TLS over it.
pub trait ControlIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ControlIo for T {}

/// A control connection of either kind.
pub type ControlStream = Box<dyn ControlIo>;

/// The PEM files of `security.ssl.internal.*`.
#[derive(Clone, Debug)]
pub struct InternalTlsFiles {
    /// This process's certificate chain, leaf first.
    pub certificate: PathBuf,
    /// Its private key.
    pub private_key: PathBuf,
    /// The certificate authorities a peer's chain must lead to.
    pub trusted: PathBuf,
}

/// Why internal TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum InternalTlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("{key} = {path}: {reason}")]
    Pem {
        /// The configuration key naming the file.
        key: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the certificates.
    #[error("security.ssl.internal: {0}")]
    Config(String),
    /// Another configuration was installed before.
    #[error("security.ssl.internal is already set up in this process")]
    AlreadyInstalled,
}

/// The name a client asks for; never checked (see the module docs).
pub(crate) const SERVER_NAME: &str = "weir-cluster";

/// The loaded TLS set-up of `security.ssl.internal.*`: how to dial and how to accept.
#[derive(Clone)]
pub struct InternalTls {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl std::fmt::Debug for InternalTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalTls")
    }
}

impl InternalTls {
    /// Loads the certificates, key and trusted authorities of `files`.
    pub fn load(files: &InternalTlsFiles) -> Result<Self, InternalTlsError> {
        build(files)
    }

    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }
}

static INTERNAL: OnceLock<InternalTls> = OnceLock::new();

/// Sets up mutual TLS for every control connection this process makes or accepts, and
/// returns it for the process's data connections.
pub fn install(files: &InternalTlsFiles) -> Result<InternalTls, InternalTlsError> {
    let internal = build(files)?;
    INTERNAL
        .set(internal.clone())
        .map_err(|_| InternalTlsError::AlreadyInstalled)?;
    Ok(internal)
}

/// Whether this process speaks TLS on control connections.
pub fn enabled() -> bool {
    INTERNAL.get().is_some()
}

/// The TLS set-up this process installed, if any.
pub fn installed() -> Option<&'static InternalTls> {
    INTERNAL.get()
}

fn pem(key: &'static str, path: &Path, reason: impl ToString) -> InternalTlsError {
    InternalTlsError::Pem {
        key,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The certificates of the PEM file `path`, which configuration key `key` names; at least one.
pub fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, InternalTlsError> {
    let all: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(key, path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(key, path, e))?;
    if all.is_empty() {
        return Err(pem(key, path, "no certificate in the file"));
    }
    Ok(all)
}

/// The private key of the PEM file `path`, which configuration key `key` names.
pub fn private_key(
    key: &'static str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, InternalTlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem(key, path, e))
}

fn build(files: &InternalTlsFiles) -> Result<InternalTls, InternalTlsError> {
    const CERT: &str = "security.ssl.internal.certificate";
    const KEY: &str = "security.ssl.internal.private-key";
    const TRUSTED: &str = "security.ssl.internal.trusted-certificates";
    let chain = certificates(CERT, &files.certificate)?;
    let key = private_key(KEY, &files.private_key)?;
    let mut roots = RootCertStore::empty();
    for c in certificates(TRUSTED, &files.trusted)? {
        roots.add(c).map_err(|e| pem(TRUSTED, &files.trusted, e))?;
    }
    let roots = Arc::new(roots);
    let config = |e: TlsError| InternalTlsError::Config(e.to_string());
    // ring rather than aws-lc-rs: no second C crypto library to build; rustls marks it
    // deprecated only because ring has no post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| InternalTlsError::Config(e.to_string()))?;
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config)?
        .with_client_cert_verifier(clients)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(config)?;
    let servers = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| InternalTlsError::Config(e.to_string()))?;
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyName {
            inner: servers,
            provider,
        }))
        .with_client_auth_cert(chain, key)
        .map_err(config)?;
    Ok(InternalTls {
        client: Arc::new(client),
        server: Arc::new(server),
    })
}

/// The client side of a control connection to `peer`: TLS if installed, else plain.
pub async fn client(tcp: TcpStream, peer: &str) -> Result<ControlStream, RpcError> {
    let Some(internal) = INTERNAL.get() else {
        return Ok(Box::new(tcp));
    };
    let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
    match TlsConnector::from(internal.client_config())
        .connect(name, tcp)
        .await
    {
        Ok(tls) => Ok(Box::new(tls)),
        Err(e) => Err(handshake_failed(peer, e)),
    }
}

/// The server side of a control connection from `peer`: TLS if installed, else plain.
pub async fn server(tcp: TcpStream, peer: &str) -> Result<ControlStream, RpcError> {
    let Some(internal) = INTERNAL.get() else {
        return Ok(Box::new(tcp));
    };
    match TlsAcceptor::from(internal.server_config())
        .accept(tcp)
        .await
    {
        Ok(tls) => Ok(Box::new(tls)),
        Err(e) => Err(handshake_failed(peer, e)),
    }
}

pub(crate) fn handshake_failed(peer: &str, e: std::io::Error) -> RpcError {
    RpcError::Io {
        peer: peer.to_owned(),
        source: failed("TLS handshake failed", e),
    }
}

/// `e` saying that TLS failed (`what`) and why it usually does; for control and data
/// connections alike.
pub(crate) fn failed(what: &str, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(
        e.kind(),
        format!(
            "{what} ({e}); do both sides have security.ssl.internal.enabled and certificates \
             the other trusts?"
        ),
    )
}

/// Makes ring the process's default rustls provider, for clients that use the default
/// (object_store's HTTPS to S3); a provider installed before stays.
pub fn install_default_provider() {
    // ring rather than aws-lc-rs: no second C crypto library to build; rustls marks it
    // deprecated only because ring has no post-quantum key exchange.
    #[allow(deprecated)]
    let ring = tokio_rustls::rustls::crypto::ring::default_provider();
    let _ = ring.install_default();
}

/// Whether `bytes` (the first a peer sent) start a TLS record, an alert or a handshake, as a
/// peer with `security.ssl.internal.enabled` sends where a plain one expects Weir bytes.
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, ..])
}

/// Verifies a server's chain against the trusted authorities, whatever host name it is for.
#[derive(Debug)]
struct AnyName {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
