//! Checkpoints of the RocksDB backend through real checkpoint storage: what each
//! incremental checkpoint uploads, native restores at the same and other parallelisms,
//! and full snapshots streamed from a checkpoint of the database into their state files.
#![cfg(feature = "rocksdb")]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_runtime::checkpoint::{
    checkpoint_dir, CheckpointMetadata, CheckpointStorage, KeyedOperatorState, KeyedStateData,
    OperatorSnapshot, OperatorStateHandles, RestoredState, Uploader,
};
use weir_runtime::control::{
    JobManagerGateway, OperatorSubtaskState, RestoreSpec, TaskManagerMessage,
};
use weir_runtime::{CheckpointConfig, JobId, SubtaskId};
use weir_state_backends::{
    assign_to_key_group, key_hash, BackendOwner, BackendSnapshot, KeyGroupRange, KeyedStateBackend,
    LocalFullSnapshot, RocksDbOptions, StateBackendConfig, StateBackendKind, StateError,
    VoidNamespace,
};

const MAX: u16 = 128;
const JOB: JobId = JobId(11);
const UID: &str = "counts";

#[derive(Default)]
struct Acks(Mutex<Vec<TaskManagerMessage>>);

impl JobManagerGateway for Acks {
    fn send(&self, message: TaskManagerMessage) {
        self.0.lock().unwrap().push(message);
    }
}

/// What a test does to a full snapshot before its upload.
type BeforeUpload = Box<dyn FnOnce(&LocalFullSnapshot)>;

struct Setup {
    local: tempfile::TempDir,
    store: tempfile::TempDir,
    before_upload: Mutex<Option<BeforeUpload>>,
}

impl Setup {
    fn new() -> Self {
        Self {
            local: tempfile::tempdir().unwrap(),
            store: tempfile::tempdir().unwrap(),
            before_upload: Mutex::new(None),
        }
    }

    fn url(&self) -> String {
        format!("file://{}", self.store.path().display())
    }

    fn backend(&self, range: KeyGroupRange) -> KeyedStateBackend<u64> {
        let config = StateBackendConfig {
            kind: StateBackendKind::RocksDb,
            incremental: true,
            rocksdb: RocksDbOptions {
                local_dir: Some(self.local.path().to_path_buf()),
                ..RocksDbOptions::default()
            },
        };
        let owner = BackendOwner {
            job: JOB.0,
            slot: range.start,
            operator: UID.into(),
        };
        KeyedStateBackend::open(&config, &owner, range, MAX).unwrap()
    }

    /// Takes and uploads checkpoint `checkpoint` of `backend` (subtask `subtask` of
    /// `parallelism`), returning its acknowledged state.
    fn checkpoint(
        &self,
        backend: &KeyedStateBackend<u64>,
        checkpoint: u64,
        subtask: u16,
        parallelism: u16,
    ) -> OperatorSubtaskState {
        match self.upload(backend, (checkpoint, false), subtask, parallelism) {
            Ok(state) => state,
            Err(reason) => panic!("expected an acknowledgement, got {reason}"),
        }
    }

    /// Takes and uploads checkpoint `checkpoint` (a savepoint: a full snapshot) of
    /// `backend` with its timers; returns its acknowledged state or why it was declined.
    fn upload(
        &self,
        backend: &KeyedStateBackend<u64>,
        (checkpoint, savepoint): (u64, bool),
        subtask: u16,
        parallelism: u16,
    ) -> Result<OperatorSubtaskState, String> {
        let mut snapshot = backend
            .snapshot_for_checkpoint(checkpoint, savepoint)
            .unwrap();
        let timers = backend.timer_service::<VoidNamespace>().unwrap();
        let beside = timers.snapshot_beside(&mut snapshot).unwrap();
        assert!(beside.is_none(), "the timers travel in the snapshot");
        match &snapshot {
            BackendSnapshot::Native(_) => assert!(!savepoint),
            BackendSnapshot::Streamed(full) => {
                assert!(savepoint && full.carries_timers());
                if let Some(prepare) = self.before_upload.lock().unwrap().take() {
                    prepare(full);
                }
            }
            BackendSnapshot::Full(_) => panic!("RocksDB snapshots are native or streamed"),
        }
        let op = OperatorSnapshot::keyed(UID, snapshot, None).unwrap();
        let acks = Arc::new(Acks::default());
        let config = CheckpointConfig::new(Duration::from_secs(1), self.url());
        let id = SubtaskId {
            job: JOB,
            vertex: 1,
            subtask,
        };
        let uploader = Uploader::start(&config, id, parallelism, MAX, acks.clone()).unwrap();
        uploader.submit(checkpoint, vec![op], Duration::ZERO, false);
        drop(uploader); // waits for the upload
        let mut messages = acks.0.lock().unwrap();
        match messages.pop() {
            Some(TaskManagerMessage::AcknowledgeCheckpoint { mut state, .. }) => {
                Ok(state.remove(0))
            }
            Some(TaskManagerMessage::DeclineCheckpoint { reason, .. }) => Err(reason),
            other => panic!("expected an acknowledgement, got {other:?}"),
        }
    }

    fn stored_bytes(&self) -> u64 {
        dir_bytes(self.store.path())
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                dir_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn keys_in(range: KeyGroupRange, keys: std::ops::Range<u64>) -> impl Iterator<Item = u64> {
    keys.filter(move |k| range.contains(assign_to_key_group(key_hash(k), MAX)))
}

fn fill(backend: &KeyedStateBackend<u64>, keys: std::ops::Range<u64>) {
    let count = backend.value_state::<VoidNamespace, u64>("count").unwrap();
    let seen = backend.list_state::<VoidNamespace, u32>("seen").unwrap();
    let mut timers = backend.timer_service::<VoidNamespace>().unwrap();
    for k in keys_in(backend.key_group_range(), keys) {
        backend.set_current_key(k).unwrap();
        count.update(k * 2).unwrap();
        seen.add(k as u32).unwrap();
        seen.add(1).unwrap();
        timers
            .register_event_time_timer(k, VoidNamespace, k as i64)
            .unwrap();
    }
}

fn check(backend: &KeyedStateBackend<u64>, keys: std::ops::Range<u64>) {
    let count = backend.value_state::<VoidNamespace, u64>("count").unwrap();
    let seen = backend.list_state::<VoidNamespace, u32>("seen").unwrap();
    let range = backend.key_group_range();
    let expected: Vec<u64> = keys_in(range, keys).collect();
    assert_eq!(
        backend.entry_count("count"),
        Some(expected.len()),
        "{range}"
    );
    assert_eq!(backend.entry_count("seen"), Some(expected.len()), "{range}");
    for &k in &expected {
        backend.set_current_key(k).unwrap();
        assert_eq!(count.value().unwrap(), Some(k * 2), "key {k}");
        assert_eq!(seen.get().unwrap(), vec![k as u32, 1], "key {k}");
    }
    // The timers (in the database) came along: each key's fires once, in time order.
    let mut timers = backend.timer_service::<VoidNamespace>().unwrap();
    timers.restore(&[]).unwrap();
    let mut fired = Vec::new();
    timers.advance_watermark(i64::MAX, &mut fired).unwrap();
    let mut keys: Vec<u64> = fired.iter().map(|t| t.key).collect();
    assert!(fired.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    keys.sort_unstable();
    assert_eq!(keys, expected, "{range}");
}

#[test]
fn an_incremental_checkpoint_uploads_only_files_no_completed_checkpoint_stored() {
    let s = Setup::new();
    let b = s.backend(KeyGroupRange::all(MAX));
    fill(&b, 0..20_000);
    let before = s.stored_bytes();
    let first = s.checkpoint(&b, 1, 0, 1);
    let written_first = s.stored_bytes() - before;
    let shared_first: u64 = first.handle.shared.iter().map(|f| f.size).sum();
    assert!(!first.handle.shared.is_empty(), "the SST files are shared");
    assert_eq!(written_first, first.handle.size + shared_first);
    b.checkpoint_complete(1);

    // A few more keys: one small new SST file per column family (each flushed memtable:
    // two states and the event-time timers); the others are referenced, not stored.
    fill(&b, 20_000..20_100);
    let before = s.stored_bytes();
    let second = s.checkpoint(&b, 2, 0, 1);
    let written_second = s.stored_bytes() - before;
    let new: Vec<_> = second
        .handle
        .shared
        .iter()
        .filter(|f| !first.handle.shared.contains(f))
        .collect();
    assert_eq!(new.len(), 3, "only the flushed memtables are new: {new:?}");
    assert!(
        first
            .handle
            .shared
            .iter()
            .all(|f| second.handle.shared.contains(f)),
        "every file of the first checkpoint is referenced again"
    );
    assert_eq!(
        written_second,
        second.handle.size + new.iter().map(|f| f.size).sum::<u64>()
    );
    assert!(
        written_second * 10 < written_first,
        "{written_second} bytes for 100 keys vs {written_first} for 20000"
    );

    // Checkpoint 2 is not known to be complete: its new file is stored again, under
    // another name, while checkpoint 1's files are still referenced.
    fill(&b, 20_100..20_110);
    let third = s.checkpoint(&b, 3, 0, 1);
    let again = third
        .handle
        .shared
        .iter()
        .find(|f| f.local == new[0].local)
        .expect("the file of checkpoint 2 is still live");
    assert_ne!(again.path, new[0].path);
    assert_eq!(again.size, new[0].size);
    for f in &first.handle.shared {
        assert!(third.handle.shared.contains(f));
    }
}

#[test]
fn after_a_savepoint_completes_nothing_of_an_older_checkpoint_is_reused() {
    let s = Setup::new();
    let b = s.backend(KeyGroupRange::all(MAX));
    fill(&b, 0..5_000);
    let first = s.checkpoint(&b, 1, 0, 1);
    b.checkpoint_complete(1);
    // A savepoint: a full snapshot, which names no shared file. Once it completes, the
    // checkpoint retention may delete checkpoint 1 and its files.
    let savepoint = s.upload(&b, (2, true), 0, 1).expect("a savepoint");
    assert!(savepoint.handle.shared.is_empty());
    b.checkpoint_complete(2);
    let third = s.checkpoint(&b, 3, 0, 1);
    for f in &third.handle.shared {
        assert!(
            !first.handle.shared.iter().any(|old| old.path == f.path),
            "{} of checkpoint 1 is named again after the savepoint",
            f.path
        );
    }
    // A late notice of an older checkpoint changes nothing.
    b.checkpoint_complete(3);
    b.checkpoint_complete(1);
    let fourth = s.checkpoint(&b, 4, 0, 1);
    assert!(third
        .handle
        .shared
        .iter()
        .all(|f| fourth.handle.shared.contains(f)));
}

/// Writes the metadata of checkpoint `checkpoint` holding `states` and returns the spec
/// tasks restore from.
fn complete(
    s: &Setup,
    checkpoint: u64,
    parallelism: u16,
    states: Vec<OperatorSubtaskState>,
) -> RestoreSpec {
    let metadata = CheckpointMetadata {
        job: JOB,
        job_name: "incremental".into(),
        checkpoint,
        timestamp_ms: 0,
        savepoint: false,
        operators: vec![OperatorStateHandles {
            uid: UID.into(),
            parallelism,
            max_parallelism: MAX,
            subtasks: states.into_iter().map(|s| s.handle).collect(),
        }],
    };
    let storage = CheckpointStorage::open(&s.url()).unwrap();
    storage.write_metadata(&metadata).unwrap();
    storage.verify(JOB, checkpoint).unwrap();
    RestoreSpec {
        storage: s.url(),
        dir: checkpoint_dir(JOB, checkpoint),
        metadata,
    }
}

fn restore(s: &Setup, spec: &RestoreSpec, range: KeyGroupRange) -> KeyedStateBackend<u64> {
    let restored = RestoredState::open(spec).unwrap();
    let b = s.backend(range);
    let state = restored
        .keyed(UID, range, b.local_dir().as_deref())
        .unwrap();
    assert!(state.full.is_empty());
    b.restore_native(state.native).unwrap();
    b
}

#[test]
fn native_snapshots_restore_at_the_same_and_at_other_parallelisms() {
    const KEYS: u64 = 6_000;
    let s = Setup::new();
    let states: Vec<_> = (0..2u16)
        .map(|i| {
            let b = s.backend(KeyGroupRange::for_operator(MAX, 2, i));
            fill(&b, 0..KEYS);
            s.checkpoint(&b, 1, i, 2)
        })
        .collect();
    let spec = complete(&s, 1, 2, states);
    for parallelism in [2u16, 3, 1] {
        for i in 0..parallelism {
            let range = KeyGroupRange::for_operator(MAX, parallelism, i);
            let b = restore(&s, &spec, range);
            // The restored database checkpoints again; at the same parallelism it
            // references the restored files instead of storing them again.
            let snapshot = b.snapshot_for_checkpoint(2, false).unwrap();
            let BackendSnapshot::Native(local) = snapshot else {
                panic!("native");
            };
            if parallelism == 2 {
                let sst = local.files.iter().filter(|f| f.is_shareable()).count();
                assert_eq!(local.reusable.len(), sst, "every SST file is reusable");
            } else {
                assert!(
                    local.reusable.is_empty(),
                    "a rescaled database starts afresh"
                );
            }
            drop(local);
            check(&b, 0..KEYS);
        }
    }
}

#[test]
fn a_savepoint_after_a_native_restore_needs_the_states_registered() {
    let s = Setup::new();
    let b = s.backend(KeyGroupRange::all(MAX));
    fill(&b, 0..100);
    let spec = complete(&s, 1, 1, vec![s.checkpoint(&b, 1, 0, 1)]);
    let restored = restore(&s, &spec, KeyGroupRange::all(MAX));
    assert_eq!(restored.state_names(), ["count", "seen"]);
    let err = restored.snapshot_for_checkpoint(2, true).unwrap_err();
    assert!(
        matches!(&err, StateError::UnregisteredNativeState(name) if name == "count"),
        "{err}"
    );
    // A restored state must be asked for with its kind.
    let err = restored
        .map_state::<VoidNamespace, u8, u8>("count")
        .unwrap_err();
    assert!(
        matches!(err, StateError::SnapshotKindMismatch { .. }),
        "{err}"
    );
    check(&restored, 0..100);
    let BackendSnapshot::Streamed(full) = restored.snapshot_for_checkpoint(2, true).unwrap() else {
        panic!("a savepoint is a full snapshot");
    };
    let reader = full.open().unwrap();
    let mut bytes = Vec::new();
    weir_state_backends::encode_into(&reader.keyed(), &mut bytes).unwrap();
    let (keyed, _): (weir_state_backends::KeyedStateSnapshot, usize) =
        weir_state_backends::decode_from(&bytes).unwrap();
    assert_eq!(keyed.states.len(), 2);
}

#[test]
fn a_corrupt_or_missing_shared_file_fails_the_restore_naming_it() {
    let s = Setup::new();
    let b = s.backend(KeyGroupRange::all(MAX));
    fill(&b, 0..1_000);
    let spec = complete(&s, 1, 1, vec![s.checkpoint(&b, 1, 0, 1)]);
    let file = spec.metadata.operators[0].subtasks[0].shared[0].clone();
    let on_disk = s.store.path().join(&file.path);
    let mut bytes = std::fs::read(&on_disk).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&on_disk, &bytes).unwrap();
    let restored = RestoredState::open(&spec).unwrap();
    let target = s.backend(KeyGroupRange::all(MAX));
    let err = restored
        .keyed(UID, KeyGroupRange::all(MAX), target.local_dir().as_deref())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&file.path) && err.contains("crc32"), "{err}");

    std::fs::remove_file(&on_disk).unwrap();
    let storage = CheckpointStorage::open(&s.url()).unwrap();
    let err = storage.verify(JOB, 1).unwrap_err().to_string();
    assert!(err.contains(&file.path), "{err}");
    // The memory backend cannot restore a native snapshot, and says so.
    let err = restored
        .keyed(UID, KeyGroupRange::all(MAX), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rocksdb state backend"), "{err}");
}

#[test]
fn a_streamed_full_snapshot_is_stored_as_the_in_memory_one_and_restores_at_other_parallelisms() {
    const KEYS: u64 = 5_000;
    let s = Setup::new();
    let storage = CheckpointStorage::open(&s.url()).unwrap();
    let states: Vec<_> = (0..2u16)
        .map(|i| {
            let b = s.backend(KeyGroupRange::for_operator(MAX, 2, i));
            fill(&b, 0..KEYS);
            let in_memory = KeyedOperatorState {
                keyed: KeyedStateData::Full(b.snapshot().unwrap()),
                timers: Some(
                    b.timer_service::<VoidNamespace>()
                        .unwrap()
                        .snapshot()
                        .unwrap(),
                ),
            };
            let state = s.upload(&b, (1, true), i, 2).unwrap();
            let stored = storage.read_state(JOB, 1, &state.handle).unwrap();
            assert!(stored == in_memory.encode(UID).unwrap(), "subtask {i}");
            let left: Vec<_> = std::fs::read_dir(b.local_dir().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().starts_with("full-"))
                .collect();
            assert!(
                left.is_empty(),
                "the upload leaves no local files: {left:?}"
            );
            state
        })
        .collect();
    let spec = complete(&s, 1, 2, states);
    for parallelism in [3u16, 1] {
        for i in 0..parallelism {
            let range = KeyGroupRange::for_operator(MAX, parallelism, i);
            let state = RestoredState::open(&spec)
                .unwrap()
                .keyed(UID, range, None)
                .unwrap();
            assert!(state.native.is_empty() && !state.full.is_empty());
            let b = s.backend(range);
            b.restore(&state.full).unwrap();
            let mut timers = b.timer_service::<VoidNamespace>().unwrap();
            timers.restore(&state.timers).unwrap();
            drop(timers);
            check(&b, 0..KEYS);
        }
    }
}

#[test]
fn a_full_snapshot_that_cannot_be_read_is_declined_naming_the_operator_and_stores_nothing() {
    let s = Setup::new();
    let b = s.backend(KeyGroupRange::all(MAX));
    fill(&b, 0..1_000);
    *s.before_upload.lock().unwrap() = Some(Box::new(|full: &LocalFullSnapshot| {
        let dir = full.spool_path().with_extension("");
        std::fs::remove_file(dir.join("CURRENT")).unwrap();
    }));
    let before = s.stored_bytes();
    let reason = s.upload(&b, (4, true), 0, 1).unwrap_err();
    assert!(
        reason.contains("cannot read the snapshot of 'counts'") && reason.contains("full-4"),
        "{reason}"
    );
    assert_eq!(s.stored_bytes(), before, "nothing was stored");
    // The next savepoint of the same backend succeeds.
    s.upload(&b, (5, true), 0, 1).unwrap();
}
