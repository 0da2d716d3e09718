//! The data plane between TaskManagers, driven over real loopback TCP: credits flow back
//! on the shared connection, a producer sends only against credit, and bad bytes or broken
//! peers fail only the affected channels, naming the peer and the channel.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use weir_runtime::exchange::protocol::{
    control_frame, decode_header, encode_header, encode_hello, encode_open, FrameHeader, FrameKind,
    HEADER_LEN, MAX_FRAME_BYTES,
};
use weir_runtime::exchange::{
    BufferPool, ConnectionManager, CreditSink, DataServer, GateEntry, GateRegistry, InputGate,
    InputMessage, NetworkBufferPool, FLAG_BARRIER, FLAG_END,
};
use weir_runtime::{element, GateAddress, JobId, SubtaskId};

const BUFFER_SIZE: usize = 1024;

fn gate_address() -> GateAddress {
    gate_address_at(0)
}

/// The test gate's address as job attempt `attempt` deploys it.
fn gate_address_at(attempt: u32) -> GateAddress {
    GateAddress {
        subtask: SubtaskId {
            job: JobId(7),
            vertex: 1,
            subtask: 0,
        },
        gate: 0,
        attempt,
    }
}

fn register(registry: &GateRegistry, gate: &InputGate) {
    register_at(registry, gate, 0);
}

fn register_at(registry: &GateRegistry, gate: &InputGate, attempt: u32) {
    let net = NetworkBufferPool::new(64);
    let pool = BufferPool::new(&net, 4 * 2 + 8, BUFFER_SIZE, "test gate").unwrap();
    registry.register(
        gate_address_at(attempt),
        GateEntry {
            sender: gate.sender(),
            channels: 4,
            pool,
        },
    );
}

fn setup() -> (DataServer, InputGate, Arc<GateRegistry>) {
    let registry = Arc::new(GateRegistry::new());
    let gate = InputGate::new();
    register(&registry, &gate);
    let server = DataServer::start("127.0.0.1:0".parse().unwrap(), registry.clone()).unwrap();
    (server, gate, registry)
}

fn next(gate: &InputGate) -> InputMessage {
    gate.recv_timeout(Duration::from_secs(10))
        .expect("a message within 10 s")
}

/// A producer TaskManager speaking the protocol by hand.
struct Peer(TcpStream);

impl Peer {
    fn connect(server: &DataServer) -> Self {
        let s = TcpStream::connect(server.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Peer(s)
    }

    fn hello(server: &DataServer) -> Self {
        let mut p = Self::connect(server);
        p.0.write_all(&encode_hello(b"")).unwrap();
        p
    }

    fn open(&mut self, id: u32, channel: u32) {
        self.open_at(id, channel, 0);
    }

    /// Opens a channel as a producer of job attempt `attempt`.
    fn open_at(&mut self, id: u32, channel: u32, attempt: u32) {
        let frame = control_frame(
            FrameKind::Open,
            id,
            0,
            &encode_open(&gate_address_at(attempt), channel),
        );
        self.0.write_all(&frame).unwrap();
    }

    fn data(&mut self, id: u32, flags: u8, payload: &[u8]) {
        let mut h = [0u8; HEADER_LEN];
        encode_header(
            &FrameHeader {
                kind: FrameKind::Data,
                channel: id,
                arg: 0,
                len: payload.len() as u32,
                flags,
                complete: payload.len() as u32,
            },
            &mut h,
        );
        self.0.write_all(&h).unwrap();
        self.0.write_all(payload).unwrap();
    }

    fn read_frame(&mut self) -> (FrameHeader, Vec<u8>) {
        let mut h = [0u8; HEADER_LEN];
        self.0.read_exact(&mut h).unwrap();
        let header = decode_header(&h).unwrap();
        let mut payload = vec![0u8; header.len as usize];
        self.0.read_exact(&mut payload).unwrap();
        (header, payload)
    }
}

fn end_payload() -> Vec<u8> {
    let mut buf = Vec::new();
    element::write_event(&mut buf, &element::Element::Watermark(5));
    element::write_event(&mut buf, &element::Element::EndOfPartition);
    buf
}

/// Takes the `Opened` of a channel and grants it `credits`.
fn accept_channel(gate: &InputGate, channel: u32, credits: u32) -> Box<dyn CreditSink> {
    match next(gate) {
        InputMessage::Opened {
            channel: c, credit, ..
        } => {
            assert_eq!(c, channel);
            credit.announce(credits);
            credit
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn an_opened_channel_gets_credit_back_and_its_buffer_reaches_the_gate() {
    let (server, gate, _) = setup();
    let mut p = Peer::hello(&server);
    p.open(7, 3);
    let _credit = accept_channel(&gate, 3, 2);
    let (h, _) = p.read_frame();
    assert_eq!((h.kind, h.channel, h.arg), (FrameKind::Credit, 7, 2));
    let payload = end_payload();
    p.data(7, FLAG_END, &payload);
    drop(p);
    match next(&gate) {
        InputMessage::Buffer {
            channel, buffer, ..
        } => {
            assert_eq!(channel, 3);
            assert_eq!(buffer.payload(), &payload[..]);
            assert!(buffer.is_end());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        gate.recv_timeout(Duration::from_millis(200)).is_err(),
        "no failure after a clean end"
    );
}

#[test]
fn garbage_or_another_version_instead_of_a_hello_is_refused_and_the_server_keeps_serving() {
    let (server, gate, _) = setup();
    let mut bad = Peer::connect(&server);
    bad.0
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    // The server closes the connection: read returns EOF (or a reset), never hangs.
    let _ = bad.0.read_to_end(&mut rest);
    let mut old = Peer::connect(&server);
    let mut hello = encode_hello(b"");
    hello[4] += 1;
    old.0.write_all(&hello).unwrap();
    let _ = old.0.read_to_end(&mut rest);
    let mut good = Peer::hello(&server);
    good.open(1, 1);
    accept_channel(&gate, 1, 1);
}

#[test]
fn a_server_with_a_cluster_secret_refuses_connections_without_it() {
    let registry = Arc::new(GateRegistry::new());
    let gate = InputGate::new();
    register(&registry, &gate);
    let server = DataServer::start_secured(
        "127.0.0.1:0".parse().unwrap(),
        registry,
        Some("s3cret"),
        None,
    )
    .unwrap();
    for hello in [encode_hello(b""), encode_hello(b"wrong")] {
        let mut p = Peer::connect(&server);
        p.0.write_all(&hello).unwrap();
        p.open(1, 1);
        let mut rest = Vec::new();
        // Refused: the server closes the connection and opens no channel.
        let _ = p.0.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }
    assert!(
        gate.recv_timeout(Duration::ZERO).is_err(),
        "no channel was opened"
    );
    let mut good = Peer::connect(&server);
    good.0.write_all(&encode_hello(b"s3cret")).unwrap();
    good.open(1, 1);
    accept_channel(&gate, 1, 1);
}

#[test]
fn an_oversized_frame_fails_the_channels_of_the_connection_naming_peer_and_channel() {
    let (server, gate, _) = setup();
    let mut p = Peer::hello(&server);
    p.open(4, 2);
    let _credit = accept_channel(&gate, 2, 2);
    let mut h = [0u8; HEADER_LEN];
    h[0] = FrameKind::Data as u8;
    h[1..5].copy_from_slice(&4u32.to_le_bytes());
    h[9..13].copy_from_slice(&(MAX_FRAME_BYTES as u32 + 1).to_le_bytes());
    p.0.write_all(&h).unwrap();
    match next(&gate) {
        InputMessage::Failed { channel, error, .. } => {
            assert_eq!(channel, 2);
            assert!(
                error.contains("127.0.0.1") && error.contains("channel 2"),
                "{error}"
            );
            assert!(error.contains("outside"), "{error}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_buffer_larger_than_the_gates_buffers_or_without_credit_fails_only_its_channel() {
    let (server, gate, _) = setup();
    let mut p = Peer::hello(&server);
    p.open(1, 0);
    p.open(2, 1);
    let _c0 = accept_channel(&gate, 0, 1);
    let _c1 = accept_channel(&gate, 1, 1);
    p.data(1, 0, &vec![0u8; BUFFER_SIZE * 4]);
    match next(&gate) {
        InputMessage::Failed { channel, error, .. } => {
            assert_eq!(channel, 0);
            assert!(error.contains("exceeds"), "{error}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Channel 1 has one credit: its first buffer arrives, its second breaks the protocol.
    let payload = end_payload();
    p.data(2, 0, &payload[..13]);
    p.data(2, 0, &payload[..13]);
    assert!(matches!(
        next(&gate),
        InputMessage::Buffer { channel: 1, .. }
    ));
    match next(&gate) {
        InputMessage::Failed { channel, error, .. } => {
            assert_eq!(channel, 1);
            assert!(error.contains("without credit"), "{error}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The producer hears of both failures, each naming its channel.
    let mut errors = Vec::new();
    while errors.len() < 2 {
        let (h, msg) = p.read_frame();
        if h.kind == FrameKind::Error {
            errors.push((h.channel, String::from_utf8(msg).unwrap()));
        }
    }
    assert_eq!(errors[0].0, 1);
    assert_eq!(errors[1].0, 2);
}

#[test]
fn data_for_an_unknown_channel_id_is_refused_without_harming_the_others() {
    let (server, gate, _) = setup();
    let mut p = Peer::hello(&server);
    p.open(1, 0);
    let _c = accept_channel(&gate, 0, 2);
    p.data(99, 0, b"garbage bytes");
    let payload = end_payload();
    p.data(1, FLAG_END, &payload);
    match next(&gate) {
        InputMessage::Buffer {
            channel, buffer, ..
        } => {
            assert_eq!(channel, 0);
            assert_eq!(buffer.payload(), &payload[..]);
        }
        other => panic!("unexpected {other:?}"),
    }
    loop {
        let (h, msg) = p.read_frame();
        if h.kind == FrameKind::Error {
            assert_eq!(h.channel, 99);
            assert!(String::from_utf8(msg)
                .unwrap()
                .contains("unknown channel id 99"));
            break;
        }
    }
}

#[test]
fn a_peer_that_drops_mid_frame_fails_its_open_channels() {
    let (server, gate, _) = setup();
    let mut p = Peer::hello(&server);
    p.open(5, 0);
    let _c = accept_channel(&gate, 0, 2);
    let mut h = [0u8; HEADER_LEN];
    h[0] = FrameKind::Data as u8;
    h[1..5].copy_from_slice(&5u32.to_le_bytes());
    h[9..13].copy_from_slice(&100u32.to_le_bytes());
    h[14..18].copy_from_slice(&100u32.to_le_bytes());
    p.0.write_all(&h).unwrap();
    p.0.write_all(&[1, 2, 3]).unwrap();
    drop(p);
    match next(&gate) {
        InputMessage::Failed { error, .. } => {
            assert!(error.contains("truncated data frame"), "{error}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_channel_the_gate_does_not_have_is_refused_with_an_error_frame() {
    let (server, gate, _) = setup();
    let mut p = Peer::hello(&server);
    p.open(3, 99);
    let (h, msg) = p.read_frame();
    assert_eq!((h.kind, h.channel), (FrameKind::Error, 3));
    let msg = String::from_utf8(msg).unwrap();
    assert!(msg.contains("channel 99 does not exist"), "{msg}");
    assert!(
        gate.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing reaches the gate"
    );
}

#[test]
fn a_channel_opened_before_its_gate_is_registered_waits_while_others_flow() {
    let registry = Arc::new(GateRegistry::new());
    let server = DataServer::start("127.0.0.1:0".parse().unwrap(), registry.clone()).unwrap();
    let mut p = Peer::hello(&server);
    p.open(1, 0);
    let gate = InputGate::new();
    register(&registry, &gate);
    accept_channel(&gate, 0, 1);
}

#[test]
fn a_channel_of_an_earlier_job_attempt_never_attaches_to_the_gate_of_a_later_one() {
    // A producer of attempt 0 opened its channel just before the job restarted (its
    // connection then stalled); attempt 1's consumer registers the gate at the same place.
    let registry = Arc::new(GateRegistry::new());
    let server = DataServer::start("127.0.0.1:0".parse().unwrap(), registry.clone()).unwrap();
    let mut p = Peer::hello(&server);
    p.open_at(1, 0, 0);
    let gate = InputGate::new();
    register_at(&registry, &gate, 1);
    p.open_at(2, 1, 1);
    accept_channel(&gate, 1, 1);
    assert!(
        gate.recv_timeout(Duration::from_millis(300)).is_err(),
        "the earlier attempt's channel 0 stays out of the later attempt's gate"
    );
}

#[test]
fn a_remote_producer_sends_only_against_credit_in_order_with_its_backlog() {
    let (server, gate, _) = setup();
    let connections = ConnectionManager::new();
    let sub = connections
        .open_channel(server.local_addr(), gate_address(), 2)
        .unwrap();
    let net = NetworkBufferPool::new(8);
    let pool = BufferPool::new(&net, 8, BUFFER_SIZE, "producer").unwrap();
    for i in 0..5u8 {
        let mut frame = Vec::new();
        let s = element::begin_record(&mut frame, weir_runtime::NO_TIMESTAMP);
        frame.extend_from_slice(&[i; 10]);
        element::finish_frame(&mut frame, s);
        let mut b = pool.try_request().unwrap();
        b.append(&frame);
        if i == 4 {
            b.flags = FLAG_END;
        }
        sub.add(b).unwrap();
    }
    assert_eq!(sub.counts(), (0, 5, 0), "nothing leaves without credit");
    let credit = accept_channel(&gate, 2, 1);
    let first = match next(&gate) {
        InputMessage::Buffer { buffer, .. } => buffer,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(first.backlog, 4);
    assert_eq!(sub.counts(), (0, 4, 1), "one credit, one buffer");
    credit.announce(4);
    let mut backlogs = Vec::new();
    for _ in 0..4 {
        match next(&gate) {
            InputMessage::Buffer { buffer, .. } => backlogs.push(buffer.backlog),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(backlogs, vec![3, 2, 1, 0]);
    sub.wait_drained(&AtomicBool::new(false)).unwrap();
    drop(first);
    assert_eq!(pool.usage().0, 0, "every producer buffer came back");
}

#[test]
fn a_consumer_taskmanager_that_drops_the_connection_fails_the_producers_channel() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 5 + HEADER_LEN + 20];
        s.read_exact(&mut hello).unwrap();
        // Drops the connection without granting credit.
    });
    let connections = ConnectionManager::new();
    let sub = connections.open_channel(addr, gate_address(), 0).unwrap();
    sub.add(weir_runtime::exchange::Buffer::unpooled(&end_payload()))
        .unwrap();
    fake.join().unwrap();
    let err = sub.wait_drained(&AtomicBool::new(false)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&addr.to_string()) && msg.contains("channel 0"),
        "{msg}"
    );
    assert_eq!(connections.connection_count(), 0);
}

#[test]
fn a_flagged_barrier_keeps_its_offset_across_the_connection_and_buffer_sizes_flow_back() {
    let (server, gate, _) = setup();
    let connections = ConnectionManager::new();
    let sub = connections
        .open_channel(server.local_addr(), gate_address(), 1)
        .unwrap();
    let net = NetworkBufferPool::new(8);
    let pool = BufferPool::new(&net, 8, BUFFER_SIZE, "producer").unwrap();
    let mut payload = Vec::new();
    let s = element::begin_record(&mut payload, weir_runtime::NO_TIMESTAMP);
    payload.extend_from_slice(&[9; 10]);
    element::finish_frame(&mut payload, s);
    let at = payload.len();
    let options = element::BarrierOptions::from_byte(0b10_0010);
    element::write_event(&mut payload, &element::Element::Barrier(3, options));
    let mut b = pool.try_request().unwrap();
    b.append(&payload);
    b.flags = FLAG_BARRIER;
    b.complete = at as u32;
    sub.add(b).unwrap();
    let credit = accept_channel(&gate, 1, 1);
    match next(&gate) {
        InputMessage::Buffer { buffer, .. } => {
            assert_eq!(buffer.flags, FLAG_BARRIER);
            assert_eq!(buffer.complete as usize, at, "where the barrier starts");
            assert_eq!(buffer.payload(), &payload[..]);
        }
        other => panic!("unexpected {other:?}"),
    }
    // The consumer asks for smaller buffers: a BUFFER_SIZE frame reaches the producer.
    credit.resize_buffers(512);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sub.buffer_size() != Some(512) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(sub.buffer_size(), Some(512));
}
