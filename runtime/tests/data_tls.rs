//! Mutual TLS on data connections (`security.ssl.internal.*`), over real loopback TCP with
//! certificates made here (rcgen): records and the cluster secret cross a recording relay
//! encrypted; a producer without TLS, a consumer the producer does not trust and a producer
//! the consumer does not trust are refused, and their channels fail instead of hanging.

mod certs;

use certs::{authority, Authority};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weir_runtime::exchange::{
    Buffer, BufferPool, ConnectionManager, CreditSink, DataServer, GateEntry, GateRegistry,
    InputGate, InputMessage, NetworkBufferPool, Subpartition, FLAG_END,
};
use weir_runtime::rpc::tls::{InternalTls, InternalTlsFiles};
use weir_runtime::{element, ExchangeError, GateAddress, JobId, SubtaskId};

/// The default network buffer size: a frame spans several TLS records.
const BUFFER_SIZE: usize = 32 << 10;
/// Bytes of the record in each buffer besides [`MARKER`].
const FILLER: usize = 30_000;
const SECRET: &str = "data-plane-s3cret";
const MARKER: &[u8] = b"sensor-7 reading 21.5 C";

/// The TLS set-up of a process holding `own`'s certificate and trusting `trusted`'s CA.
fn tls(dir: &Path, name: &str, own: &Authority, trusted: &Authority) -> InternalTls {
    let write = |suffix: &str, pem: &str| {
        let p = dir.join(format!("{name}-{suffix}.pem"));
        std::fs::write(&p, pem).unwrap();
        p
    };
    InternalTls::load(&InternalTlsFiles {
        certificate: write("cert", &own.cert),
        private_key: write("key", &own.key),
        trusted: write("ca", &trusted.ca),
    })
    .unwrap()
}

fn gate_address() -> GateAddress {
    GateAddress {
        subtask: SubtaskId {
            job: JobId(9),
            vertex: 2,
            subtask: 0,
        },
        gate: 0,
        attempt: 0,
    }
}

/// A consumer TaskManager's data server with one registered gate of 2 channels.
fn consumer(tls: Option<InternalTls>) -> (DataServer, InputGate) {
    let registry = Arc::new(GateRegistry::new());
    let gate = InputGate::new();
    let net = NetworkBufferPool::new(64);
    let pool = BufferPool::new(&net, 16, BUFFER_SIZE, "tls gate").unwrap();
    registry.register(
        gate_address(),
        GateEntry {
            sender: gate.sender(),
            channels: 2,
            pool,
        },
    );
    let server =
        DataServer::start_secured("127.0.0.1:0".parse().unwrap(), registry, Some(SECRET), tls)
            .unwrap();
    (server, gate)
}

/// Relays one connection to `target`, recording what the producer sent.
fn recording_relay(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        let (mut from, _) = listener.accept().unwrap();
        let mut to = TcpStream::connect(target).unwrap();
        let (mut back_from, mut back_to) = (to.try_clone().unwrap(), from.try_clone().unwrap());
        std::thread::spawn(move || std::io::copy(&mut back_from, &mut back_to));
        let mut chunk = [0u8; 16 << 10];
        while let Ok(n @ 1..) = from.read(&mut chunk) {
            record.lock().unwrap().extend_from_slice(&chunk[..n]);
            if to.write_all(&chunk[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
    (addr, seen)
}

fn next(gate: &InputGate) -> InputMessage {
    gate.recv_timeout(Duration::from_secs(10))
        .expect("a message within 10 s")
}

/// One buffer holding a record of [`MARKER`] and [`FILLER`] bytes counting up, the
/// partition's end if `end`.
fn record_buffer(pool: &BufferPool, end: bool) -> Buffer {
    let mut frame = Vec::new();
    let s = element::begin_record(&mut frame, weir_runtime::NO_TIMESTAMP);
    frame.extend_from_slice(MARKER);
    frame.extend((0..FILLER).map(|i| i as u8));
    element::finish_frame(&mut frame, s);
    let mut b = pool.try_request().unwrap();
    b.append(&frame);
    if end {
        b.flags = FLAG_END;
    }
    b
}

/// Waits until `sub` drained or failed, for at most 20 s.
fn drained(sub: &Subpartition) -> Result<(), ExchangeError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let timer = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        timer.store(true, Ordering::Relaxed);
    });
    sub.wait_drained(&cancel)
}

/// Opens channel 0 to `addr` and sends it one buffer that ends it, waiting until it is
/// delivered or fails.
fn send_end(producer: &ConnectionManager, addr: SocketAddr) -> Result<(), ExchangeError> {
    let sub = producer.open_channel(addr, gate_address(), 0)?;
    let net = NetworkBufferPool::new(2);
    let pool = BufferPool::new(&net, 2, BUFFER_SIZE, "producer").unwrap();
    sub.add(record_buffer(&pool, true))?;
    drained(&sub)
}

#[test]
fn records_and_the_cluster_secret_cross_the_wire_encrypted_and_arrive_whole() {
    const BUFFERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let cluster = authority();
    let (server, gate) = consumer(Some(tls(dir.path(), "consumer", &cluster, &cluster)));
    let (relay, seen) = recording_relay(server.local_addr());
    let producer = Arc::new(ConnectionManager::secured(
        Some(SECRET),
        Some(tls(dir.path(), "producer", &cluster, &cluster)),
    ));
    // Two channels on the one connection, written by two threads at once.
    let senders: Vec<_> = (0..2u32)
        .map(|channel| {
            let producer = producer.clone();
            std::thread::spawn(move || {
                let sub = producer
                    .open_channel(relay, gate_address(), channel)
                    .unwrap();
                let net = NetworkBufferPool::new(BUFFERS);
                let pool = BufferPool::new(&net, BUFFERS, BUFFER_SIZE, "producer").unwrap();
                for i in 0..BUFFERS {
                    sub.add(record_buffer(&pool, i + 1 == BUFFERS)).unwrap();
                }
                drained(&sub)
            })
        })
        .collect();
    let mut received = [0usize; 2];
    let mut credits: Vec<Box<dyn CreditSink>> = Vec::new();
    while received.iter().sum::<usize>() < 2 * BUFFERS {
        match next(&gate) {
            InputMessage::Opened { credit, .. } => {
                credit.announce(BUFFERS as u32);
                credits.push(credit);
            }
            InputMessage::Buffer {
                channel, buffer, ..
            } => {
                let payload = buffer.payload();
                let at = payload
                    .windows(MARKER.len())
                    .position(|w| w == MARKER)
                    .expect("the buffer holds the record");
                let filler = &payload[at + MARKER.len()..at + MARKER.len() + FILLER];
                assert!(filler.iter().enumerate().all(|(i, b)| *b == i as u8));
                received[channel as usize] += 1;
                assert_eq!(buffer.is_end(), received[channel as usize] == BUFFERS);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    for s in senders {
        s.join().unwrap().unwrap();
    }
    let wire = seen.lock().unwrap().clone();
    assert_eq!(
        &wire[..2],
        &[0x16, 0x03],
        "a TLS handshake opens the connection"
    );
    assert!(
        wire.len() > 2 * BUFFERS * FILLER,
        "every buffer crossed the relay"
    );
    let contains = |needle: &[u8]| wire.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(SECRET.as_bytes()),
        "the secret is not in the clear"
    );
    assert!(!contains(MARKER), "no record is in the clear");
    assert!(!contains(b"WEIR"), "no frame is in the clear");
}

#[test]
fn a_producer_without_tls_is_refused_by_a_consumer_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = authority();
    let (server, gate) = consumer(Some(tls(dir.path(), "consumer", &cluster, &cluster)));
    let producer = ConnectionManager::secured(Some(SECRET), None);
    // Connecting succeeds (plain TCP); the consumer answers with a TLS alert and ends the
    // connection, and the producer says what the alert means.
    let err = send_end(&producer, server.local_addr())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&server.local_addr().to_string()), "{err}");
    assert!(err.contains("the peer speaks TLS"), "{err}");
    assert!(
        gate.recv_timeout(Duration::from_millis(200)).is_err(),
        "no channel was opened"
    );
}

#[test]
fn a_consumer_the_producer_does_not_trust_is_refused_in_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, stranger) = (authority(), authority());
    let (server, gate) = consumer(Some(tls(dir.path(), "consumer", &stranger, &stranger)));
    let producer = ConnectionManager::secured(
        Some(SECRET),
        Some(tls(dir.path(), "producer", &cluster, &cluster)),
    );
    let err = producer
        .open_channel(server.local_addr(), gate_address(), 0)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLS failed"), "{err}");
    assert!(err.contains(&server.local_addr().to_string()), "{err}");
    assert!(gate.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn a_producer_the_consumer_does_not_trust_gets_no_channel_and_its_channel_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, stranger) = (authority(), authority());
    let (server, gate) = consumer(Some(tls(dir.path(), "consumer", &cluster, &cluster)));
    // Trusts the consumer, but its own certificate comes from another authority.
    let producer = ConnectionManager::secured(
        Some(SECRET),
        Some(tls(dir.path(), "producer", &stranger, &cluster)),
    );
    let err = send_end(&producer, server.local_addr())
        .unwrap_err()
        .to_string();
    // The producer learns of the refusal from the consumer's alert ("TLS failed"), or, when
    // its next write comes first, from the closed connection.
    assert!(err.contains(&server.local_addr().to_string()), "{err}");
    assert!(
        gate.recv_timeout(Duration::from_millis(200)).is_err(),
        "no channel was opened"
    );
    assert_eq!(producer.connection_count(), 0);
}
