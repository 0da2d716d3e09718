//! Bad bytes and broken peers on the data plane: a TaskManager's data server must refuse or
//! fail only the affected channel, name the peer and channel, and keep serving others.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use weir_runtime::exchange::{
    DataServer, GateRegistry, InputGate, InputMessage, HANDSHAKE_MAGIC, MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use weir_runtime::{element, GateAddress, JobId, SubtaskId};

fn gate_address() -> GateAddress {
    GateAddress {
        subtask: SubtaskId {
            job: JobId(7),
            vertex: 1,
            subtask: 0,
        },
        gate: 0,
    }
}

fn handshake(gate: GateAddress, channel: u32, version: u8) -> Vec<u8> {
    let mut b = HANDSHAKE_MAGIC.to_vec();
    b.push(version);
    b.extend_from_slice(&gate.subtask.job.0.to_le_bytes());
    b.extend_from_slice(&gate.subtask.vertex.to_le_bytes());
    b.extend_from_slice(&gate.subtask.subtask.to_le_bytes());
    b.extend_from_slice(&gate.gate.to_le_bytes());
    b.extend_from_slice(&channel.to_le_bytes());
    b
}

fn setup() -> (DataServer, InputGate) {
    let registry = Arc::new(GateRegistry::new());
    let gate = InputGate::new(16);
    registry.register(gate_address(), gate.sender(), 4);
    let server = DataServer::start("127.0.0.1:0".parse().unwrap(), registry).unwrap();
    (server, gate)
}

fn next(gate: &InputGate) -> InputMessage {
    gate.recv_timeout(Duration::from_secs(10))
        .expect("a message within 10 s")
}

fn connect(server: &DataServer) -> TcpStream {
    let s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[test]
fn a_valid_buffer_reaches_its_gate_and_a_clean_end_is_no_failure() {
    let (server, gate) = setup();
    let mut s = connect(&server);
    s.write_all(&handshake(gate_address(), 3, PROTOCOL_VERSION))
        .unwrap();
    let mut buf = Vec::new();
    element::write_event(&mut buf, &element::Element::Watermark(5));
    element::write_event(&mut buf, &element::Element::EndOfPartition);
    s.write_all(&(buf.len() as u32).to_le_bytes()).unwrap();
    s.write_all(&buf).unwrap();
    drop(s);
    match next(&gate) {
        InputMessage::Buffer { channel, data, .. } => {
            assert_eq!(channel, 3);
            assert_eq!(&data[..], &buf[..]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        gate.recv_timeout(Duration::from_millis(200)).is_err(),
        "no failure after a clean end"
    );
}

#[test]
fn garbage_instead_of_a_handshake_is_refused_and_the_server_keeps_serving() {
    let (server, gate) = setup();
    let mut bad = connect(&server);
    bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    // The server closes the connection: read returns EOF (or a reset), never hangs.
    let _ = bad.read_to_end(&mut rest);
    let mut old = connect(&server);
    old.write_all(&handshake(gate_address(), 0, PROTOCOL_VERSION + 1))
        .unwrap();
    let _ = old.read_to_end(&mut rest);
    let mut good = connect(&server);
    good.write_all(&handshake(gate_address(), 1, PROTOCOL_VERSION))
        .unwrap();
    let mut buf = Vec::new();
    element::write_event(&mut buf, &element::Element::EndOfPartition);
    good.write_all(&(buf.len() as u32).to_le_bytes()).unwrap();
    good.write_all(&buf).unwrap();
    assert!(matches!(
        next(&gate),
        InputMessage::Buffer { channel: 1, .. }
    ));
}

#[test]
fn an_oversized_frame_fails_the_channel_naming_peer_and_channel() {
    let (server, gate) = setup();
    let mut s = connect(&server);
    s.write_all(&handshake(gate_address(), 2, PROTOCOL_VERSION))
        .unwrap();
    s.write_all(&((MAX_FRAME_BYTES as u32) + 1).to_le_bytes())
        .unwrap();
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
fn a_peer_that_drops_mid_stream_fails_the_channel() {
    let (server, gate) = setup();
    let mut s = connect(&server);
    s.write_all(&handshake(gate_address(), 0, PROTOCOL_VERSION))
        .unwrap();
    s.write_all(&100u32.to_le_bytes()).unwrap();
    s.write_all(&[1, 2, 3]).unwrap();
    drop(s);
    match next(&gate) {
        InputMessage::Failed { error, .. } => assert!(error.contains("truncated frame"), "{error}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_connection_to_a_channel_the_gate_does_not_have_is_refused() {
    let (server, gate) = setup();
    let mut s = connect(&server);
    s.write_all(&handshake(gate_address(), 99, PROTOCOL_VERSION))
        .unwrap();
    let mut rest = Vec::new();
    // The server closes the connection instead of accepting buffers for channel 99.
    let _ = s.read_to_end(&mut rest);
    assert!(
        gate.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing reaches the gate"
    );
}
