//! Snapshots are backend independent: state snapshotted by the memory backend restores
//! into RocksDB and back, at other parallelisms (2 → 3 → 1), and reads the same; and
//! the RocksDB backend's working directory and errors.
#![cfg(feature = "rocksdb")]

use std::collections::BTreeMap;

use weir_state_backends::{
    assign_to_key_group, key_hash, operator_index_for_key_group, BackendOwner, KeyGroupRange,
    KeyedStateBackend, KeyedStateSnapshot, RocksDbOptions, StateBackendConfig, StateBackendKind,
    StateError,
};

const MAX: u16 = 128;
const KEYS: u64 = 400;

fn backends(kind: StateBackendKind, parallelism: u16) -> Vec<KeyedStateBackend<u64>> {
    (0..parallelism)
        .map(|i| {
            KeyedStateBackend::new(kind, KeyGroupRange::for_operator(MAX, parallelism, i), MAX)
                .unwrap()
        })
        .collect()
}

fn owner(key: u64, parallelism: u16) -> usize {
    operator_index_for_key_group(MAX, parallelism, assign_to_key_group(key_hash(&key), MAX)).into()
}

/// Per key: a value, a list in two windows, and a map of several user keys.
fn populate(bs: &[KeyedStateBackend<u64>]) {
    for k in 0..KEYS {
        let b = &bs[owner(k, bs.len() as u16)];
        b.set_current_key(k).unwrap();
        b.value_state::<u8, String>("value")
            .unwrap()
            .update_in(&1, format!("v{k}"))
            .unwrap();
        let list = b.list_state::<u16, u64>("list").unwrap();
        for window in [10u16, 20] {
            list.add_all_in(&window, (0..k % 5).map(|i| k * 10 + i + u64::from(window)))
                .unwrap();
        }
        let map = b.map_state::<u8, String, u64>("map").unwrap();
        for u in 0..k % 4 {
            map.put_in(&0, format!("u{u}"), k + u).unwrap();
        }
    }
}

/// What one key holds: its value, list and map entries.
type KeyContents = (Option<String>, Vec<u64>, Vec<(String, u64)>);

/// Everything the backends hold, by key.
fn contents(bs: &[KeyedStateBackend<u64>]) -> BTreeMap<u64, KeyContents> {
    let mut out = BTreeMap::new();
    for k in 0..KEYS {
        let b = &bs[owner(k, bs.len() as u16)];
        b.set_current_key(k).unwrap();
        let value = b
            .value_state::<u8, String>("value")
            .unwrap()
            .value_in(&1)
            .unwrap();
        let list = b.list_state::<u16, u64>("list").unwrap();
        let mut lists = list.get_in(&10).unwrap();
        lists.extend(list.get_in(&20).unwrap());
        let mut map = b
            .map_state::<u8, String, u64>("map")
            .unwrap()
            .entries_in(&0)
            .unwrap();
        map.sort();
        out.insert(k, (value, lists, map));
    }
    out
}

fn snapshots(bs: &[KeyedStateBackend<u64>]) -> Vec<KeyedStateSnapshot> {
    bs.iter()
        .map(|b| {
            KeyedStateSnapshot::from_bytes(&b.snapshot().unwrap().to_bytes().unwrap()).unwrap()
        })
        .collect()
}

fn restore(
    kind: StateBackendKind,
    parallelism: u16,
    from: &[KeyedStateSnapshot],
) -> Vec<KeyedStateBackend<u64>> {
    let bs = backends(kind, parallelism);
    for b in &bs {
        b.restore(from).unwrap();
    }
    bs
}

#[test]
fn memory_to_rocksdb_to_memory_through_snapshots_while_rescaling_2_3_1_reads_the_same() {
    let memory = backends(StateBackendKind::Memory, 2);
    populate(&memory);
    let want = contents(&memory);
    assert!(want.values().any(|(_, l, m)| l.len() == 8 && m.len() == 3));

    let rocks = restore(StateBackendKind::RocksDb, 3, &snapshots(&memory));
    assert_eq!(contents(&rocks), want, "memory (2) into RocksDB (3)");
    let back = restore(StateBackendKind::Memory, 1, &snapshots(&rocks));
    assert_eq!(contents(&back), want, "RocksDB (3) into memory (1)");
    // Both backends write the same snapshot bytes for the same entries (lists and
    // values; maps may list their user keys in another order).
    let again = restore(StateBackendKind::RocksDb, 1, &snapshots(&back));
    assert_eq!(contents(&again), want, "memory (1) into RocksDB (1)");
    for name in ["value", "list", "map"] {
        assert_eq!(
            again[0].entry_count(name),
            back[0].entry_count(name),
            "{name}"
        );
    }
}

#[test]
fn a_rocksdb_backend_works_in_its_own_directory_and_deletes_it_when_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let config = StateBackendConfig {
        kind: StateBackendKind::RocksDb,
        incremental: true,
        rocksdb: RocksDbOptions {
            local_dir: Some(tmp.path().to_path_buf()),
            ..RocksDbOptions::default()
        },
    };
    let owner = BackendOwner {
        job: 7,
        slot: 1,
        operator: "counts/by sensor".into(),
    };
    let b = KeyedStateBackend::<u64>::open(&config, &owner, KeyGroupRange::all(MAX), MAX).unwrap();
    let dir = b.local_dir().unwrap();
    assert!(
        dir.starts_with(tmp.path().join("weir-rocksdb")),
        "{}",
        dir.display()
    );
    assert!(dir.join("db/CURRENT").is_file(), "a RocksDB lives there");
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("job-7-counts_by_sensor-"), "{name}");
    b.set_current_key(3).unwrap();
    b.value_state::<weir_state_backends::VoidNamespace, u64>("v")
        .unwrap()
        .update(9)
        .unwrap();
    drop(b);
    assert!(!dir.exists(), "deleted with the backend");
}

#[test]
fn a_local_dir_that_cannot_be_created_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let config = StateBackendConfig {
        kind: StateBackendKind::RocksDb,
        incremental: true,
        rocksdb: RocksDbOptions {
            local_dir: Some(file.clone()),
            ..RocksDbOptions::default()
        },
    };
    let err = KeyedStateBackend::<u64>::open(
        &config,
        &BackendOwner::default(),
        KeyGroupRange::all(MAX),
        MAX,
    )
    .unwrap_err();
    assert!(matches!(err, StateError::Storage { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
