//! A control connection after its handshake, as two channels: messages to send and
//! messages received.
//!
//! [`spawn_link`] starts one reader and one writer task on the current tokio runtime, so
//! synchronous code (the JobManager's dispatcher, a TaskManager's supervisor) sends
//! without waiting on the socket and receives in order. Invariant: the receiver yields the
//! peer's messages in the order sent and then exactly one `Err` (the reason the
//! connection ended) before closing; dropping every sender closes the socket's write side.

use super::ControlStream;
use super::{read_message, write_message, RpcError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// The sending half of a link.
pub type LinkSender<T> = mpsc::UnboundedSender<T>;

/// The receiving half of a link: messages, then the error that ended it.
pub type LinkReceiver<T> = mpsc::UnboundedReceiver<Result<T, RpcError>>;

/// The longest closing a link's side may take.
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the reader and writer tasks of `stream` (handshake done) with `peer` named in
/// errors. Must be called inside a tokio runtime.
pub fn spawn_link<In, Out>(
    stream: ControlStream,
    peer: String,
) -> (LinkSender<Out>, LinkReceiver<In>)
where
    In: DeserializeOwned + Send + 'static,
    Out: Serialize + Send + Sync + 'static,
{
    let (mut read, mut write) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let writer_peer = peer.clone();
    tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            if let Err(e) = write_message(&mut write, &writer_peer, &message).await {
                tracing::debug!(peer = %writer_peer, error = %e, "control link write failed");
                break;
            }
        }
        // Every sender is gone (or the connection failed): close our side, so that the peer
        // reads the end of the stream (a split stream's write half does not on drop). With
        // TLS this sends close_notify first; bounded, as a peer that reads nothing could
        // stall it.
        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, write.shutdown()).await;
    });
    tokio::spawn(async move {
        loop {
            match read_message::<_, In>(&mut read, &peer).await {
                Ok(m) => {
                    if in_tx.send(Ok(m)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = in_tx.send(Err(e));
                    break;
                }
            }
        }
    });
    (out_tx, in_rx)
}
