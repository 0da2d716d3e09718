//! The standalone JobManager's control RPC endpoint.
//!
//! One tokio task per connection. After the handshake (protocol version, role, cluster
//! secret) the role decides the conversation: a client sends requests and reads one answer
//! each; a TaskManager registers, then heartbeats and reports its workers; a job worker
//! registers for its job, then carries task reports. Invariants: a connection that fails
//! its handshake or sends bytes that are not a message is logged and closed, and touches
//! no job; dispatcher calls (which may block on its lock) run on blocking threads, and a
//! worker's reports reach the dispatcher in the order it sent them.

use super::{Cluster, ClusterSettings};
use crate::ha::HaServices;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};
use weir_runtime::control::{JobManagerGateway, TaskManagerId, TaskManagerMessage};
use weir_runtime::rpc::messages::{
    TaskManagerCommand, TaskManagerRequest, WorkerCommand, WorkerReport,
};
use weir_runtime::rpc::{
    accept, spawn_link, ControlStream, Fenced, FencedSender, LinkReceiver, PeerRole, RpcError,
    CONNECT_TIMEOUT,
};
use weir_runtime::JobId;

/// A running standalone JobManager: its RPC endpoint and cluster state.
pub struct JobManagerServer {
    address: SocketAddr,
    cluster: Arc<Cluster>,
    runtime: tokio::runtime::Runtime,
}

impl JobManagerServer {
    /// Binds the RPC address and starts serving; with high-availability services `ha`,
    /// recovers the jobs of earlier leaders first (see [`Cluster::recover`]).
    pub fn start(
        settings: ClusterSettings,
        ha: Option<Arc<HaServices>>,
    ) -> Result<Self, std::io::Error> {
        let cluster = Cluster::new(settings.clone(), ha).map_err(std::io::Error::other)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("weir-jm-rpc")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind(settings.rpc_address))?;
        let address = listener.local_addr()?;
        info!(%address, secret = settings.secret.is_some(), "jobmanager listening");
        runtime.spawn(serve(listener, cluster.clone()));
        cluster.recover().map_err(std::io::Error::other)?;
        let watcher = Arc::downgrade(&cluster);
        let period = (settings.heartbeat_interval / 2).max(Duration::from_millis(10));
        std::thread::Builder::new()
            .name("weir-jm-heartbeats".into())
            .spawn(move || loop {
                std::thread::sleep(period);
                match watcher.upgrade() {
                    Some(c) => c.check_heartbeats(),
                    None => return,
                }
            })?;
        Ok(Self {
            address,
            cluster,
            runtime,
        })
    }

    /// The address the RPC endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The cluster state.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Serves the REST API on `address`, asking for `security.token` and speaking TLS with
    /// `security.tls` if set; returns the address bound.
    pub fn serve_rest(
        &self,
        address: SocketAddr,
        security: &super::rest::security::RestSecurity,
    ) -> Result<SocketAddr, RestServeError> {
        let acceptor = match &security.tls {
            Some(files) => Some(super::rest::security::acceptor(files)?),
            None => None,
        };
        let listener = self
            .runtime
            .block_on(tokio::net::TcpListener::bind(address))?;
        let bound = listener.local_addr()?;
        let app = super::rest::router(self.cluster.clone(), security.token.clone());
        let tls = acceptor.is_some();
        match acceptor {
            Some(acceptor) => {
                let listener = {
                    let _entered = self.runtime.enter();
                    super::rest::security::TlsListener::new(listener, acceptor)?
                };
                self.runtime.spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        warn!(error = %e, "REST API stopped");
                    }
                });
            }
            None => {
                self.runtime.spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        warn!(error = %e, "REST API stopped");
                    }
                });
            }
        }
        info!(address = %bound, tls, authentication = security.token.is_some(), "REST API listening");
        Ok(bound)
    }
}

/// Why the REST API cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RestServeError {
    /// Its address cannot be bound.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Its TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] super::rest::security::RestTlsError),
}

async fn serve(listener: TcpListener, cluster: Arc<Cluster>) {
    let connections = Arc::new(AtomicU64::new(0));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let id = connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(handle(stream, peer.to_string(), cluster.clone(), id));
            }
            Err(e) => {
                warn!(error = %e, "cannot accept a control connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(tcp: TcpStream, peer: String, cluster: Arc<Cluster>, connection: u64) {
    let _ = tcp.set_nodelay(true);
    let secret = cluster.settings().secret.clone();
    let handshake = async {
        let mut stream = weir_runtime::rpc::tls::server(tcp, &peer).await?;
        let role = accept(&mut stream, &peer, secret.as_ref().map(|s| s.expose())).await?;
        Ok::<_, RpcError>((stream, role))
    };
    let (stream, role) = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(accepted)) => accepted,
        Ok(Err(e)) => {
            warn!(%peer, error = %e, "control connection refused");
            return;
        }
        Err(_) => {
            warn!(%peer, "control connection refused: no handshake within the connect timeout");
            return;
        }
    };
    let result = match role {
        PeerRole::Client => super::client_api::serve(stream, &peer, cluster).await,
        PeerRole::TaskManager => taskmanager(stream, peer.clone(), cluster).await,
        PeerRole::Worker => worker(stream, peer.clone(), cluster, connection).await,
    };
    if let Err(e) = result {
        warn!(%peer, role = ?role, error = %e, "control connection closed");
    }
}

/// Serves one TaskManager: registration, heartbeats, worker reports; a broken connection
/// loses it.
async fn taskmanager(
    stream: ControlStream,
    peer: String,
    cluster: Arc<Cluster>,
) -> Result<(), RpcError> {
    let (tx, mut rx) =
        spawn_link::<TaskManagerRequest, Fenced<TaskManagerCommand>>(stream, peer.clone());
    let tx = FencedSender::new(tx, cluster.epoch());
    let slots = match rx.recv().await {
        Some(Ok(TaskManagerRequest::Register { slots })) => slots,
        Some(Ok(other)) => {
            return Err(RpcError::Corrupt {
                peer,
                reason: format!("a taskmanager must register first, it sent {other:?}"),
            })
        }
        Some(Err(e)) => return Err(e),
        None => return Ok(()),
    };
    let c = cluster.clone();
    let p = peer.clone();
    // The cluster holds the only sender: a TaskManager it forgets (missed heartbeats) has
    // its connection closed, so it cannot linger registered on its side.
    let id = blocking(move || c.register_taskmanager(slots, p, tx)).await;
    let ended = loop {
        match rx.recv().await {
            Some(Ok(TaskManagerRequest::Heartbeat)) => cluster.heartbeat(id),
            Some(Ok(TaskManagerRequest::WorkerExited { job, start, reason })) => {
                let c = cluster.clone();
                blocking(move || c.worker_exited(job, id, start, reason)).await;
            }
            Some(Ok(TaskManagerRequest::Register { .. })) => {
                warn!(taskmanager = id, %peer, "taskmanager registered twice; ignored");
            }
            Some(Err(e)) => break e.to_string(),
            None => break "connection closed".to_string(),
        }
    };
    let c = cluster.clone();
    blocking(move || c.taskmanager_lost(id, &format!("connection broke: {ended}"))).await;
    Ok(())
}

/// What a worker connection hands to the thread that applies its reports in order.
enum WorkerEvent {
    Report(TaskManagerMessage),
    Metrics(Vec<weir_runtime::metrics::TaskMetricsReport>),
    Lost(String),
}

/// Serves one job worker: registration, then its task reports.
async fn worker(
    stream: ControlStream,
    peer: String,
    cluster: Arc<Cluster>,
    connection: u64,
) -> Result<(), RpcError> {
    let (tx, mut rx) = spawn_link::<WorkerReport, Fenced<WorkerCommand>>(stream, peer.clone());
    let tx = FencedSender::new(tx, cluster.epoch());
    let (job, tm, data_address, fingerprint) = match rx.recv().await {
        Some(Ok(WorkerReport::Register {
            job,
            taskmanager,
            data_address,
            fingerprint,
        })) => (job, taskmanager, data_address, fingerprint),
        Some(Ok(_)) => {
            return Err(RpcError::Corrupt {
                peer,
                reason: "a worker must register first".into(),
            })
        }
        Some(Err(e)) => return Err(e),
        None => return Ok(()),
    };
    let c = cluster.clone();
    let link = tx.clone();
    let registered =
        blocking(move || c.register_worker(job, tm, data_address, fingerprint, connection, link))
            .await;
    if let Err(e) = registered {
        let reason = e.to_string();
        warn!(job_id = %job, taskmanager = tm, %peer, %reason, "job worker refused");
        let _ = tx.send(WorkerCommand::Refused { reason });
        return Ok(());
    }
    let _ = tx.send(WorkerCommand::Registered {
        heartbeat_interval_ms: cluster.settings().heartbeat_interval.as_millis() as u64,
    });
    drop(tx);
    let (events, applied) = std::sync::mpsc::channel::<WorkerEvent>();
    let c = cluster.clone();
    std::thread::Builder::new()
        .name(format!("weir-worker-{job}-{tm}"))
        .spawn(move || {
            for e in applied {
                match e {
                    WorkerEvent::Report(m) => c.dispatcher().send(m),
                    WorkerEvent::Metrics(tasks) => {
                        c.task_metrics().record((job, tm, connection), tasks)
                    }
                    WorkerEvent::Lost(why) => {
                        c.task_metrics().forget((job, tm, connection));
                        let reason = format!(
                            "the worker process of job {job} on taskmanager {tm} is gone: {why}"
                        );
                        c.worker_lost(job, tm, connection, &reason);
                        return;
                    }
                }
            }
        })
        .map_err(|source| RpcError::Io {
            peer: peer.clone(),
            source,
        })?;
    relay_reports(rx, events, cluster.settings().heartbeat_timeout, job, tm).await
}

/// Runs `f` on a blocking thread (it may wait on the dispatcher's lock).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a blocking control task panicked")
}

/// Hands a registered worker's reports on to `events` until its link ends or it sends
/// nothing, not even a heartbeat, for `timeout` (a frozen process keeps its connection
/// open); then reports it lost. Returning drops the link, which closes the connection.
async fn relay_reports(
    mut rx: LinkReceiver<WorkerReport>,
    events: std::sync::mpsc::Sender<WorkerEvent>,
    timeout: Duration,
    job: JobId,
    tm: TaskManagerId,
) -> Result<(), RpcError> {
    loop {
        let Ok(next) = tokio::time::timeout(timeout, rx.recv()).await else {
            let why = format!(
                "no heartbeat for {} ms (heartbeat.timeout)",
                timeout.as_millis()
            );
            let _ = events.send(WorkerEvent::Lost(why));
            return Ok(());
        };
        match next {
            Some(Ok(WorkerReport::Heartbeat { tasks })) => {
                let _ = events.send(WorkerEvent::Metrics(tasks));
            }
            Some(Ok(WorkerReport::Task(m))) => {
                let _ = events.send(WorkerEvent::Report(m));
            }
            Some(Ok(WorkerReport::Register { .. })) => {
                warn!(job_id = %job, taskmanager = tm, "worker registered twice; ignored");
            }
            Some(Err(e)) => {
                let _ = events.send(WorkerEvent::Lost(e.to_string()));
                return Ok(());
            }
            None => {
                let _ = events.send(WorkerEvent::Lost("connection closed".into()));
                return Ok(());
            }
        }
    }
}
