//! The RocksDB backend keeps the process's memory bounded by the slot's managed memory,
//! whatever the size of the state: ten million keys, many times the budget, in one
//! subtask. Alone in its test binary, so that nothing else moves the resident set.
#![cfg(feature = "rocksdb")]

use weir_state_backends::{
    BackendOwner, KeyGroupRange, KeyedStateBackend, RocksDbOptions, StateBackendConfig,
    StateBackendKind, VoidNamespace,
};

const KEYS: u64 = 10_000_000;
const BUDGET: u64 = 16 << 20;
const MAX: u16 = 128;

/// The process's resident set in bytes (Linux).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    kib << 10
}

/// The bytes of the files directly in `dir`.
fn files_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[test]
fn ten_million_keys_beyond_the_memory_budget_keep_the_resident_set_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let config = StateBackendConfig {
        kind: StateBackendKind::RocksDb,
        incremental: true,
        rocksdb: RocksDbOptions {
            local_dir: Some(tmp.path().to_path_buf()),
            managed_memory_bytes: BUDGET,
            ..RocksDbOptions::default()
        },
    };
    let backend = KeyedStateBackend::<u64>::open(
        &config,
        &BackendOwner::default(),
        KeyGroupRange::all(MAX),
        MAX,
    )
    .unwrap();
    let state = backend
        .value_state::<VoidNamespace, [u64; 4]>("readings")
        .unwrap();
    let mut after_warm_up = 0;
    let mut peak = 0;
    for k in 0..KEYS {
        backend.set_current_key(k).unwrap();
        state
            .update([k, k ^ 0x5555, k.rotate_left(17), !k])
            .unwrap();
        if k == KEYS / 10 {
            after_warm_up = rss();
        }
        if k % 500_000 == 0 {
            peak = peak.max(rss());
        }
    }
    peak = peak.max(rss());
    let on_disk = files_bytes(&backend.local_dir().unwrap().join("db"));
    // The state is far larger than the budget...
    let raw = KEYS * (8 + 4 * 8);
    assert!(raw > 20 * BUDGET, "{raw} bytes of state");
    assert!(on_disk > 4 * BUDGET, "{on_disk} bytes on disk");
    // ...yet memory grew by less than the budget and RocksDB's fixed overheads after the
    // first tenth of the keys (a heap keeping the state would grow by some 400 MB).
    let growth = peak.saturating_sub(after_warm_up);
    assert!(
        growth < 2 * BUDGET + (32 << 20),
        "resident set grew by {growth} bytes (from {after_warm_up} to a peak of {peak}) with a budget of {BUDGET}"
    );
    // Every key is there.
    for k in (0..KEYS).step_by(999_983) {
        backend.set_current_key(k).unwrap();
        assert_eq!(state.value().unwrap().map(|v| v[0]), Some(k));
    }
}
