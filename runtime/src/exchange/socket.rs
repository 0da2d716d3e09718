//! TCP settings of the data plane's connections: how a producer connects to a consumer
//! TaskManager, and how long either end lets the bytes it sent go unacknowledged.
//!
//! A link that drops every packet (a partition, a cable pulled) stalls a TCP connection
//! without an error: the kernel retransmits with a doubling backoff (0.2, 0.4, 0.8, 1.6,
//! 3.2 s, ...), so once the link heals the connection may still wait seconds for its next
//! retransmission, and a connect's SYN is retried after 1, 2, 4 s, ...
//!
//! Invariants: bytes sent on a data connection that the peer's kernel has not acknowledged
//! for [`UNACKED_TIMEOUT`] end the connection with an error (its channels fail and the job
//! restarts, as for any broken connection), which bounds both the stall and the wait after
//! the heal. A slow peer never trips it (its kernel acknowledges what arrives, and its
//! reader thread drains the socket into buffers it granted); a peer process frozen for
//! longer with its receive window closed does, as Linux counts a closed window against the
//! timeout. A connect makes attempts of at most [`CONNECT_ATTEMPT`] until its total
//! timeout, so a link that heals while a connect waits is used within one attempt; a
//! refused or unreachable peer fails at once.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long bytes sent on a data connection may stay unacknowledged (`TCP_USER_TIMEOUT`).
pub(crate) const UNACKED_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest single connect attempt.
pub(crate) const CONNECT_ATTEMPT: Duration = Duration::from_secs(1);

/// Ends `stream` with an error once bytes it sent go unacknowledged for
/// [`UNACKED_TIMEOUT`].
pub(crate) fn bound_unacknowledged(stream: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(stream).set_tcp_user_timeout(Some(UNACKED_TIMEOUT))
}

/// Connects to `addr`, retrying attempts that time out (at most [`CONNECT_ATTEMPT`] each)
/// until `total` has passed; any other error ends it at once.
pub(crate) fn connect(addr: SocketAddr, total: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + total;
    loop {
        let attempt = deadline
            .saturating_duration_since(Instant::now())
            .min(CONNECT_ATTEMPT);
        if attempt.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from {addr} within {total:?}"),
            ));
        }
        match TcpStream::connect_timeout(&addr, attempt) {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn both_ends_of_a_data_connection_bound_how_long_their_bytes_go_unacknowledged() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = connect(listener.local_addr().unwrap(), Duration::from_secs(5)).unwrap();
        let (server, _) = listener.accept().unwrap();
        for end in [&client, &server] {
            bound_unacknowledged(end).unwrap();
            let set = socket2::SockRef::from(end).tcp_user_timeout().unwrap();
            assert_eq!(set, Some(UNACKED_TIMEOUT));
        }
    }

    #[test]
    fn a_refused_connect_fails_at_once_instead_of_retrying_until_its_timeout() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // The listener is dropped: nothing listens on `addr` any more.
        // Retried, it would end in the deadline's `TimedOut` instead.
        let e = connect(addr, Duration::from_secs(30)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    }
}
