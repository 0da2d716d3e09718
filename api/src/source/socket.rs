//! A source that reads text lines from a TCP server, as Flink's and Spark's
//! `socketTextStream`.
//!
//! Invariants:
//! - Only subtask 0 connects ([`SourceFunction::max_parallelism`] is 1; any other subtask
//!   finishes at once). Connecting waits at most the connect timeout; a refused or timed-out
//!   connection fails the task with an error naming `host:port`.
//! - Every `\n`-terminated line, without its `\n` and a `\r` before it, is one `String`
//!   record with [`NO_TIMESTAMP`]; bytes that are not UTF-8 are replaced (lossy decoding).
//!   A partial line survives across polls until its terminator arrives.
//! - A poll reads the socket at most once, so it never blocks longer than the read timeout
//!   (50 ms): when nothing arrived it returns [`SourceStep::Idle`], and once it has emitted
//!   records it stops before a read that could block, so emitted records are not held back.
//! - When the server closes the connection, a pending unterminated last line is emitted and
//!   the stream finishes.

use super::text::{strip_line_end, EmptyReader};
use super::{SourceContext, SourceFunction, SourceReader};
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;
use weir_runtime::{Output, SourceStep, TaskError, NO_TIMESTAMP};

/// The longest a poll blocks waiting for data.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// Reads `\n`-terminated text lines from a TCP server.
#[derive(Clone, Debug)]
pub struct SocketTextSource {
    host: String,
    port: u16,
    connect_timeout: Duration,
}

impl SocketTextSource {
    /// Creates a source reading from `host:port`, with a 5 s connect timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Sets how long connecting may take (per resolved address).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Returns `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn connect(&self) -> Result<TcpStream, TaskError> {
        let address = self.address();
        let fail = |e: std::io::Error| {
            TaskError::Io(format!("socket source cannot connect to {address}: {e}"))
        };
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(fail)?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(fail(last.unwrap_or_else(|| {
            std::io::Error::new(ErrorKind::NotFound, "the host name resolved to no address")
        })))
    }
}

impl SourceFunction<String> for SocketTextSource {
    fn create_reader(
        &self,
        ctx: &SourceContext,
    ) -> Result<Box<dyn SourceReader<String>>, TaskError> {
        if ctx.subtask != 0 {
            return Ok(Box::new(EmptyReader));
        }
        let stream = self.connect()?;
        let address = self.address();
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|e| TaskError::Io(format!("socket source {address}: {e}")))?;
        Ok(Box::new(SocketReader {
            reader: BufReader::with_capacity(64 * 1024, stream),
            pending: Vec::new(),
            address,
        }))
    }

    fn max_parallelism(&self) -> Option<u16> {
        Some(1)
    }
}

struct SocketReader {
    reader: BufReader<TcpStream>,
    /// The bytes of the line being read (a partial line between polls).
    pending: Vec<u8>,
    address: String,
}

impl SocketReader {
    fn take_line(&mut self) -> String {
        strip_line_end(&mut self.pending);
        let bytes = std::mem::take(&mut self.pending);
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl SourceReader<String> for SocketReader {
    fn snapshot_splits(
        &mut self,
        _checkpoint: weir_runtime::CheckpointId,
    ) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        // A socket cannot be read again.
        Ok(None)
    }

    fn restore_splits(&mut self, _splits: Vec<Vec<u8>>) -> Result<(), TaskError> {
        Err(TaskError::RestoredState(
            "a socket source has no position to restore".into(),
        ))
    }

    fn poll(&mut self, out: &mut dyn Output<String>, max: usize) -> Result<SourceStep, TaskError> {
        let mut emitted = 0;
        let mut read_socket = false;
        while emitted < max {
            if self.reader.buffer().is_empty() {
                // The next read goes to the socket and may block: do that at most once per
                // poll, and never while holding emitted records back from the task loop.
                if read_socket || emitted > 0 {
                    return Ok(SourceStep::More);
                }
                read_socket = true;
            }
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    // The read already waited for the read timeout.
                    return Ok(if emitted > 0 {
                        SourceStep::More
                    } else {
                        SourceStep::Idle(Duration::ZERO)
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(TaskError::Io(format!(
                        "socket source {}: read failed: {e}",
                        self.address
                    )));
                }
            };
            if buf.is_empty() {
                // The server closed the connection.
                if !self.pending.is_empty() {
                    let line = self.take_line();
                    out.emit(line, NO_TIMESTAMP)?;
                }
                return Ok(SourceStep::Finished);
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.pending.extend_from_slice(&buf[..=end]);
                    self.reader.consume(end + 1);
                    let line = self.take_line();
                    out.emit(line, NO_TIMESTAMP)?;
                    emitted += 1;
                }
                None => {
                    let n = buf.len();
                    self.pending.extend_from_slice(buf);
                    self.reader.consume(n);
                }
            }
        }
        Ok(SourceStep::More)
    }
}
