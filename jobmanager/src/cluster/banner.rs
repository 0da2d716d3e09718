//! The line `weir jobmanager` prints on stdout once it listens (with high availability, each
//! time it leads anew): scripts, tests and the
//! benchmark read the addresses it bound (useful with port 0) from it.

use std::net::SocketAddr;

/// The line for a JobManager listening on `rpc` with its REST API on `rest` (over TLS if
/// `tls`).
pub fn format(rpc: SocketAddr, rest: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("JobManager listening on {rpc} (REST on {scheme}://{rest})")
}

/// Prints the banner of [`format()`] as one line on standard output, which a JobManager
/// does each time it starts serving (with high availability, each time it leads). A
/// standard output that is gone (a closed pipe: whoever started the process read the first
/// banner and went away) is logged, never fatal: the JobManager serves on.
pub fn announce(rpc: SocketAddr, rest: SocketAddr, tls: bool) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{}", format(rpc, rest, tls)).and_then(|()| out.flush());
    if let Err(error) = written {
        tracing::warn!(%error, %rpc, %rest, "cannot print the JobManager's banner on standard output");
    }
}

/// Reads the control RPC and REST addresses back from a line [`format()`] wrote.
pub fn parse(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.trim().strip_prefix("JobManager listening on ")?;
    let (rpc, rest) = rest.split_once(" (REST on ")?;
    let rest = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))?;
    Some((rpc.parse().ok()?, rest.strip_suffix(')')?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_banner_reads_back_to_its_addresses() {
        let (rpc, rest) = (
            "127.0.0.1:6123".parse().unwrap(),
            "127.0.0.1:8081".parse().unwrap(),
        );
        assert_eq!(
            super::parse(&super::format(rpc, rest, false)),
            Some((rpc, rest))
        );
        assert_eq!(
            super::parse(&super::format(rpc, rest, true)),
            Some((rpc, rest))
        );
        assert_eq!(super::parse("something else"), None);
    }
}
