//! Full snapshots of the RocksDB backend streamed from a checkpoint of its database: they
//! encode exactly as the in-memory snapshot of the same state (so every backend restores
//! them), hold the state as of the snapshot, carry the timers, and a snapshot whose
//! checkpoint is gone fails with an error naming it.
#![cfg(feature = "rocksdb")]

use weir_state_backends::{
    assign_to_key_group, encode_into, key_hash, BackendSnapshot, KeyGroupRange, KeyedStateBackend,
    KeyedStateSnapshot, LocalFullSnapshot, StateBackendKind, StateError, TimerService,
    TimerSnapshot,
};

const MAX: u16 = 128;

fn rocksdb(range: KeyGroupRange) -> KeyedStateBackend<u64> {
    KeyedStateBackend::new(StateBackendKind::RocksDb, range, MAX).unwrap()
}

/// Every kind of state over `keys`, some entries written twice (lists merged, not
/// rewritten) and some values left in the value cache.
fn fill(b: &KeyedStateBackend<u64>, keys: std::ops::Range<u64>, round: u64) {
    let value = b.value_state::<u8, String>("value").unwrap();
    let list = b.list_state::<u16, u64>("list").unwrap();
    let map = b.map_state::<u8, String, u64>("map").unwrap();
    let sum = b
        .reducing_state::<u8, u64>("sum", |a: u64, b: u64| a + b)
        .unwrap();
    let range = b.key_group_range();
    let owned = keys.filter(|k| range.contains(assign_to_key_group(key_hash(k), MAX)));
    for k in owned {
        b.set_current_key(k).unwrap();
        value.update_in(&1, format!("v{k}-{round}")).unwrap();
        for window in [10u16, 20] {
            list.add_all_in(&window, (0..k % 4).map(|i| k * 10 + i + round))
                .unwrap();
        }
        for u in 0..k % 3 {
            map.put_in(&0, format!("u{u}"), k + u + round).unwrap();
        }
        sum.add_in(&7, k + round).unwrap();
    }
}

fn streamed(b: &KeyedStateBackend<u64>, checkpoint: u64) -> LocalFullSnapshot {
    match b.snapshot_for_checkpoint(checkpoint, true).unwrap() {
        BackendSnapshot::Streamed(full) => full,
        other => panic!("a RocksDB savepoint is streamed, got {other:?}"),
    }
}

fn encoded<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out).unwrap();
    out
}

#[test]
fn a_streamed_full_snapshot_encodes_as_the_in_memory_snapshot_of_the_same_state() {
    let b = rocksdb(KeyGroupRange::new(16, 80));
    fill(&b, 0..2_000, 0);
    fill(&b, 0..500, 1);
    let want = b.snapshot().unwrap();
    let full = streamed(&b, 1);
    // Writes after the snapshot do not reach it.
    fill(&b, 0..3_000, 2);

    let reader = full.open().unwrap();
    let bytes = encoded(&reader.keyed());
    assert!(reader.take_error().is_none());
    assert_eq!(bytes, encoded(&want));
    let (decoded, _): (KeyedStateSnapshot, usize) =
        weir_state_backends::decode_from(&bytes).unwrap();
    assert_eq!(decoded.states.len(), 4);
    assert!(decoded.states.iter().all(|s| s.key_groups.len() > 30));
    assert_eq!(full.key_group_range(), KeyGroupRange::new(16, 80));
}

#[test]
fn restored_state_not_yet_registered_is_streamed_from_its_snapshot_bytes() {
    let source = rocksdb(KeyGroupRange::all(MAX));
    fill(&source, 0..300, 0);
    let snapshot = source.snapshot().unwrap();

    let b = rocksdb(KeyGroupRange::all(MAX));
    b.restore(&[snapshot]).unwrap();
    // Two states registered (one of them written to), two still pending.
    b.value_state::<u8, String>("value").unwrap();
    b.set_current_key(1).unwrap();
    b.list_state::<u16, u64>("list")
        .unwrap()
        .add_in(&10, 99)
        .unwrap();
    let want = b.snapshot().unwrap();
    assert_eq!(want.states.len(), 4);

    let full = streamed(&b, 3);
    let reader = full.open().unwrap();
    assert_eq!(encoded(&reader.keyed()), encoded(&want));
}

#[test]
fn a_streamed_full_snapshot_carries_the_timers_of_its_database() {
    let b = rocksdb(KeyGroupRange::all(MAX));
    fill(&b, 0..50, 0);
    let mut timers: TimerService<u64, u8> = b.timer_service().unwrap();
    assert!(timers.in_backend());
    for k in 0..400u64 {
        timers
            .register_event_time_timer(k, (k % 3) as u8, 1_000 - k as i64)
            .unwrap();
        timers
            .register_processing_time_timer(k, 0, 5_000 + k as i64)
            .unwrap();
    }
    let want: TimerSnapshot = timers.snapshot().unwrap();
    let mut keyed = b.snapshot_for_checkpoint(4, true).unwrap();
    assert_eq!(timers.snapshot_beside(&mut keyed).unwrap(), None);
    let BackendSnapshot::Streamed(full) = keyed else {
        panic!("a RocksDB savepoint is streamed");
    };
    assert!(full.carries_timers());
    timers.register_event_time_timer(9_999, 0, 1).unwrap();

    let reader = full.open().unwrap();
    assert_eq!(encoded(&reader.timers().unwrap()), encoded(&want));
}

#[test]
fn heap_timers_are_snapshotted_beside_a_streamed_snapshot() {
    let b = rocksdb(KeyGroupRange::all(MAX));
    let mut heap: TimerService<u64, u8> = TimerService::new(KeyGroupRange::all(MAX), MAX);
    heap.register_event_time_timer(3, 0, 10).unwrap();
    let mut keyed = b.snapshot_for_checkpoint(5, true).unwrap();
    let beside = heap.snapshot_beside(&mut keyed).unwrap();
    assert_eq!(beside, Some(heap.snapshot().unwrap()));
    let BackendSnapshot::Streamed(full) = keyed else {
        panic!("a RocksDB savepoint is streamed");
    };
    assert!(!full.carries_timers());
    assert!(full.open().unwrap().timers().is_none());
}

#[test]
fn a_streamed_snapshot_whose_checkpoint_is_gone_fails_naming_it_and_drops_its_files() {
    let b = rocksdb(KeyGroupRange::all(MAX));
    fill(&b, 0..100, 0);
    let full = streamed(&b, 6);
    let dir = b.local_dir().unwrap().join("full-6");
    assert!(dir.join("CURRENT").exists());
    std::fs::write(full.spool_path(), b"partial").unwrap();
    std::fs::remove_file(dir.join("CURRENT")).unwrap();

    let err = full.open().err().expect("the checkpoint cannot be opened");
    assert!(matches!(err, StateError::Storage { .. }), "{err:?}");
    assert!(err.to_string().contains("full-6"), "{err}");
    let spool = full.spool_path().to_path_buf();
    drop(full);
    assert!(!dir.exists() && !spool.exists());
}
