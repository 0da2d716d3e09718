//! Who may use the REST API, and over what: the cluster secret as a bearer token, and TLS.
//!
//! A cluster with `cluster.secret` requires `Authorization: Bearer <secret>` on every
//! request (a REST address outside loopback is only accepted with a secret, so an exposed API
//! always asks for it); a request without it, or with another, is answered
//! `401 {"errors": [...]}` with `WWW-Authenticate: Bearer`, and the secret never appears in
//! an answer or a log. With `security.ssl.rest.enabled` the API speaks only TLS (rustls,
//! certificate chain and private key from PEM files); handshakes run concurrently, each
//! bounded by [`HANDSHAKE_TIMEOUT`], so a slow client cannot hold up the others.

use super::model::ErrorBody;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;
use weir_runtime::{same_secret, Secret};

/// The longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most TLS handshakes in progress at once; further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 256;

/// How the REST API is protected.
#[derive(Clone, Debug, Default)]
pub struct RestSecurity {
    /// The bearer token every request must carry (the cluster secret), if any.
    pub token: Option<Secret>,
    /// The certificate chain and key to serve TLS with, if any.
    pub tls: Option<TlsFiles>,
}

/// PEM files of a TLS server: `security.ssl.rest.certificate` and `.private-key`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub certificate: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

/// Why TLS cannot be set up.
#[derive(Debug, Error)]
pub enum RestTlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error(transparent)]
    Pem(#[from] weir_runtime::rpc::tls::InternalTlsError),
    /// rustls refused the certificate and key.
    #[error("the certificate and private key of the REST API do not go together: {0}")]
    Config(String),
}

/// Builds the TLS acceptor from `files`.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, RestTlsError> {
    use weir_runtime::rpc::tls::{certificates, private_key};
    let chain = certificates("security.ssl.rest.certificate", &files.certificate)?;
    let key = private_key("security.ssl.rest.private-key", &files.private_key)?;
    // ring rather than aws-lc-rs: no second C crypto library to build; rustls marks it
    // deprecated only because ring has no post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RestTlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| RestTlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Refuses a request without the bearer token `token`.
pub(crate) async fn require_token(
    State(token): State<Arc<Secret>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t) if same_secret(t.as_bytes(), token.expose().as_bytes()) => next.run(request).await,
        other => {
            let why = match other {
                None => "this REST API requires the cluster secret: send `Authorization: Bearer <cluster.secret>`",
                Some(_) => "the bearer token is not this cluster's secret",
            };
            debug!(path = %request.uri().path(), "REST request refused: no valid bearer token");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(ErrorBody::new(why.to_string())),
            )
                .into_response()
        }
    }
}

/// A listener that hands out TLS streams whose handshake succeeded.
pub(crate) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Accepts on `tcp`, shaking hands with `acceptor`, each connection on a task of its
    /// own; failed or slow handshakes are dropped.
    pub(crate) fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            // Ends with the listener (the server stopped): the port is released.
            while !tx.is_closed() {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "REST TLS handshake failed"),
                        Err(_) => debug!(%peer, "REST TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(next) => next,
            // The accepting task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
