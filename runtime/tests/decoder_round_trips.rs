//! Every decoder of bytes from outside the process gives back exactly what its encoder
//! wrote, and refuses (never misreads, never panics on) bytes that were changed: checkpoint
//! metadata, state files, control RPC frames and requests, artifact digests.

use proptest::prelude::*;
use weir_runtime::checkpoint::SharedStateFile;
use weir_runtime::checkpoint::{
    CheckpointMetadata, OperatorSnapshot, OperatorStateHandles, SubtaskStateHandle,
};
use weir_runtime::rpc::messages::{ArtifactDigest, ArtifactHasher, TaskManagerRequest};
use weir_runtime::rpc::request::{
    JobGraphOf, JobInfo, TriggerCheckpoint, TriggerSavepoint, WaitJob,
};
use weir_runtime::rpc::{read_message, write_message, ClientRequest};
use weir_runtime::JobId;

fn shared_file() -> impl Strategy<Value = SharedStateFile> {
    ("[a-z0-9]{1,8}", "[a-z/]{1,16}", any::<u64>(), any::<u32>()).prop_map(
        |(local, path, size, checksum)| SharedStateFile {
            local,
            path,
            size,
            checksum,
        },
    )
}

fn handle() -> impl Strategy<Value = SubtaskStateHandle> {
    (
        any::<u16>(),
        "[a-z0-9-]{1,24}",
        any::<u64>(),
        any::<(u16, u16)>(),
        proptest::collection::vec(shared_file(), 0..3),
    )
        .prop_map(|(subtask, file, size, (a, b), shared)| SubtaskStateHandle {
            subtask,
            file,
            size,
            key_group_start: a.min(b),
            key_group_end: a.max(b),
            shared,
        })
}

fn metadata() -> impl Strategy<Value = CheckpointMetadata> {
    let operator = (
        "[a-z-]{1,12}",
        any::<u16>(),
        any::<u16>(),
        proptest::collection::vec(handle(), 0..4),
    )
        .prop_map(
            |(uid, parallelism, max_parallelism, subtasks)| OperatorStateHandles {
                uid,
                parallelism,
                max_parallelism,
                subtasks,
            },
        );
    (
        any::<u64>(),
        ".{0,16}",
        any::<u64>(),
        any::<i64>(),
        any::<bool>(),
        proptest::collection::vec(operator, 0..4),
    )
        .prop_map(
            |(job, job_name, checkpoint, timestamp_ms, savepoint, operators)| CheckpointMetadata {
                job: JobId(job),
                job_name,
                checkpoint,
                timestamp_ms,
                savepoint,
                operators,
            },
        )
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

proptest! {
    #[test]
    fn checkpoint_metadata_round_trips_and_any_changed_byte_is_refused(
        m in metadata(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let bytes = weir_state_backends::encode_versioned(&m).unwrap();
        let back: CheckpointMetadata =
            weir_state_backends::decode_versioned(&bytes, "_metadata").unwrap();
        prop_assert_eq!(&back, &m);
        let mut changed = bytes.clone();
        let i = flip.index(changed.len());
        changed[i] ^= 1 << bit;
        prop_assert!(weir_state_backends::decode_versioned::<CheckpointMetadata>(&changed, "_metadata").is_err());
        prop_assert!(weir_state_backends::decode_versioned::<CheckpointMetadata>(&bytes[..i], "_metadata").is_err());
    }

    #[test]
    fn operator_list_state_round_trips(entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 0..8)) {
        let snapshot = OperatorSnapshot::operator_list("sink", &entries).unwrap();
        prop_assert_eq!(OperatorSnapshot::decode_list(&snapshot.bytes).unwrap(), entries);
    }

    #[test]
    fn client_requests_round_trip_through_a_frame(job: u64, timeout_ms: u64, dir in proptest::option::of("[a-z/]{1,20}"), stop: bool, drain: bool) {
        let sent: Vec<ClientRequest> = vec![
            WaitJob { job: JobId(job), timeout_ms }.into(),
            TriggerSavepoint { job: JobId(job), dir: dir.clone(), stop, drain }.into(),
            JobInfo(JobId(job)).into(),
            TriggerCheckpoint(JobId(job)).into(),
            JobGraphOf(JobId(job)).into(),
        ];
        let received = run(async {
            let mut wire = Vec::new();
            for r in &sent {
                write_message(&mut wire, "test", r).await.unwrap();
            }
            let mut input = wire.as_slice();
            let mut out = Vec::new();
            for _ in 0..sent.len() {
                out.push(read_message::<_, ClientRequest>(&mut input, "test").await.unwrap());
            }
            out
        });
        prop_assert_eq!(format!("{received:?}"), format!("{sent:?}"));
    }

    #[test]
    fn a_changed_rpc_frame_is_refused_not_misread(start in 0u64.., reason in ".{0,40}", flip in any::<prop::sample::Index>()) {
        let message = TaskManagerRequest::WorkerExited { job: JobId(7), start, reason };
        let verdict = run(async {
            let mut wire = Vec::new();
            write_message(&mut wire, "test", &message).await.unwrap();
            let i = flip.index(wire.len());
            wire[i] ^= 0x5a;
            read_message::<_, TaskManagerRequest>(&mut wire.as_slice(), "test").await
        });
        match verdict {
            Err(_) => {}
            Ok(m) => prop_assert!(false, "a changed frame decoded as {m:?}"),
        }
    }

    #[test]
    fn artifact_digests_round_trip_through_their_text(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut h = ArtifactHasher::default();
        h.update(&bytes);
        let d: ArtifactDigest = h.finish();
        prop_assert_eq!(ArtifactDigest::parse(&d.to_string()).unwrap(), d);
    }
}

/// `payload` as one frame with the right length and crc32.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Found by the `rpc_frame` fuzz target: a well-formed frame whose message claims a string
/// of about 2^61 bytes made the decoder try to allocate it and abort the process.
#[test]
fn a_frame_claiming_a_huge_string_is_refused_without_allocating_it() {
    let payload = [
        0x02, 0x00, 0xd0, 0xfd, 0xfd, 0x8a, 0x00, 0xed, 0x02, 0x00, 0xd0, 0xfd,
    ];
    let wire = framed(&payload);
    let read = run(read_message::<_, TaskManagerRequest>(
        &mut wire.as_slice(),
        "peer",
    ));
    assert!(read.is_err(), "{read:?}");
}

/// Found by the `state_file` fuzz target: keyed operator state claiming a 55 TB buffer
/// aborted the process on restore.
#[test]
fn keyed_state_claiming_a_huge_buffer_is_refused_without_allocating_it() {
    let bytes = [
        0x01, 0x0a, 0xfd, 0xff, 0x0a, 0xfd, 0xff, 0xff, 0x31, 0x00, 0x00,
    ];
    assert!(OperatorSnapshot::decode_keyed(&bytes).is_err());
    assert!(OperatorSnapshot::decode_list(&bytes).is_err());
}
