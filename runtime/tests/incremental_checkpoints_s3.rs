//! A RocksDB incremental checkpoint on S3 (a real S3-compatible server, `scripts/s3.sh`):
//! its SST files, one larger than a multipart part, stream up in parts and back down into
//! a new database that then holds every value.
#![cfg(feature = "rocksdb")]

mod s3;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use weir_runtime::checkpoint::{
    checkpoint_dir, CheckpointMetadata, CheckpointStorage, OperatorSnapshot, OperatorStateHandles,
    RestoredState, Uploader, PART_SIZE,
};
use weir_runtime::control::{JobManagerGateway, RestoreSpec, TaskManagerMessage};
use weir_runtime::{CheckpointConfig, JobId, SubtaskId};
use weir_state_backends::{
    BackendOwner, BackendSnapshot, KeyGroupRange, KeyedStateBackend, RocksDbOptions,
    StateBackendConfig, StateBackendKind, VoidNamespace,
};

const MAX: u16 = 128;
const JOB: JobId = JobId(0x5353);
const UID: &str = "blobs";
const KEYS: u64 = 60_000;
const URL: &str = "s3://weir/incremental";

#[derive(Default)]
struct Acks(Mutex<Vec<TaskManagerMessage>>);

impl JobManagerGateway for Acks {
    fn send(&self, message: TaskManagerMessage) {
        self.0.lock().unwrap().push(message);
    }
}

fn backend(local: &std::path::Path) -> KeyedStateBackend<u64> {
    let config = StateBackendConfig {
        kind: StateBackendKind::RocksDb,
        incremental: true,
        rocksdb: RocksDbOptions {
            local_dir: Some(local.to_path_buf()),
            ..RocksDbOptions::default()
        },
    };
    let owner = BackendOwner {
        job: JOB.0,
        slot: 0,
        operator: UID.into(),
    };
    KeyedStateBackend::open(&config, &owner, KeyGroupRange::all(MAX), MAX).unwrap()
}

/// The value of key `k`: 400 incompressible bytes, reproducible.
fn blob(k: u64) -> Vec<u8> {
    s3::noise(k.wrapping_mul(0x9e37_79b9_7f4a_7c15), 400)
}

#[test]
fn an_incremental_checkpoint_with_a_file_larger_than_a_part_restores_from_s3() {
    let s = s3::server();
    s.install();
    let local = tempfile::tempdir().unwrap();
    let b = backend(&local.path().join("first"));
    let blobs = b.value_state::<VoidNamespace, Vec<u8>>("blob").unwrap();
    for k in 0..KEYS {
        b.set_current_key(k).unwrap();
        blobs.update(blob(k)).unwrap();
    }
    let snapshot = b.snapshot_for_checkpoint(1, false).unwrap();
    assert!(matches!(snapshot, BackendSnapshot::Native(_)));
    let acks = Arc::new(Acks::default());
    let id = SubtaskId {
        job: JOB,
        vertex: 1,
        subtask: 0,
    };
    let config = CheckpointConfig::new(Duration::from_secs(1), URL);
    let uploader = Uploader::start(&config, id, 1, MAX, acks.clone()).unwrap();
    uploader.submit(
        1,
        vec![OperatorSnapshot::keyed(UID, snapshot, None).unwrap()],
        Duration::ZERO,
        false,
    );
    drop(uploader); // waits for the upload
    let state = match acks.0.lock().unwrap().pop() {
        Some(TaskManagerMessage::AcknowledgeCheckpoint { mut state, .. }) => state.remove(0),
        other => panic!("expected an acknowledgement, got {other:?}"),
    };
    let big = state
        .handle
        .shared
        .iter()
        .find(|f| f.size > PART_SIZE as u64)
        .unwrap_or_else(|| {
            panic!(
                "an SST file over {PART_SIZE} bytes: {:?}",
                state.handle.shared
            )
        });
    let e_tag = s.e_tag(&format!("incremental/{}", big.path));
    assert!(
        e_tag.trim_matches('"').contains('-'),
        "a multipart upload: {e_tag}"
    );

    let metadata = CheckpointMetadata {
        job: JOB,
        job_name: "s3".into(),
        checkpoint: 1,
        timestamp_ms: 0,
        savepoint: false,
        operators: vec![OperatorStateHandles {
            uid: UID.into(),
            parallelism: 1,
            max_parallelism: MAX,
            subtasks: vec![state.handle],
        }],
    };
    CheckpointStorage::open(URL)
        .unwrap()
        .write_metadata(&metadata)
        .unwrap();
    let spec = RestoreSpec {
        storage: URL.into(),
        dir: checkpoint_dir(JOB, 1),
        metadata,
    };
    let restored = backend(&local.path().join("second"));
    let keyed = RestoredState::open(&spec)
        .unwrap()
        .keyed(
            UID,
            KeyGroupRange::all(MAX),
            restored.local_dir().as_deref(),
        )
        .unwrap();
    restored.restore_native(keyed.native).unwrap();
    let blobs = restored
        .value_state::<VoidNamespace, Vec<u8>>("blob")
        .unwrap();
    for k in (0..KEYS).step_by(97) {
        restored.set_current_key(k).unwrap();
        assert_eq!(blobs.value().unwrap(), Some(blob(k)), "key {k}");
    }
    assert_eq!(restored.entry_count("blob"), Some(KEYS as usize));
}
