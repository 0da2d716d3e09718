//! Snapshot, restore, rescaling and corruption handling.

use weir_state_backends::{
    CodecError, KeyGroupRange, KeyedStateBackend, KeyedStateSnapshot, StateError, VoidNamespace,
    FORMAT_VERSION,
};

use crate::common::{full, key, owner, subtask, Backend, MAX};
use crate::kinds::Average;

const KEYS: usize = 300;

/// Writes one entry per key into every state kind, on the subtask owning it.
fn populate(backends: &[KeyedStateBackend<String>]) {
    let parallelism = backends.len() as u16;
    for i in 0..KEYS {
        let k = key(i);
        let b = &backends[usize::from(owner(&k, parallelism))];
        b.set_current_key(k).unwrap();
        let n = i as u64;
        b.value_state::<VoidNamespace, u64>("value")
            .unwrap()
            .update(n)
            .unwrap();
        let list = b.list_state::<u32, u64>("list").unwrap();
        list.add_all_in(&7, [n, n + 1]).unwrap();
        let map = b.map_state::<VoidNamespace, String, u64>("map").unwrap();
        map.put(format!("u{i}"), n).unwrap();
        b.reducing_state::<VoidNamespace, u64>("sum", |a: u64, b: u64| a + b)
            .unwrap()
            .add(n)
            .unwrap();
        b.aggregating_state::<VoidNamespace, _, _, _>("avg", Average)
            .unwrap()
            .add(n as f64)
            .unwrap();
    }
}

/// Checks that `b` holds exactly the keys it owns with the populated values.
fn verify(b: &KeyedStateBackend<String>, parallelism: u16, index: u16) {
    let value = b.value_state::<VoidNamespace, u64>("value").unwrap();
    let list = b.list_state::<u32, u64>("list").unwrap();
    let map = b.map_state::<VoidNamespace, String, u64>("map").unwrap();
    let sum = b
        .reducing_state::<VoidNamespace, u64>("sum", |a: u64, b: u64| a + b)
        .unwrap();
    let avg = b
        .aggregating_state::<VoidNamespace, _, _, _>("avg", Average)
        .unwrap();
    let mut owned = 0;
    for i in 0..KEYS {
        let k = key(i);
        if owner(&k, parallelism) != index {
            assert!(matches!(
                b.set_current_key(k),
                Err(StateError::KeyGroupOutOfRange { .. })
            ));
            continue;
        }
        owned += 1;
        b.set_current_key(k).unwrap();
        let n = i as u64;
        assert_eq!(value.value().unwrap(), Some(n));
        assert_eq!(list.get_in(&7).unwrap(), [n, n + 1]);
        assert_eq!(map.entries().unwrap(), [(format!("u{i}"), n)]);
        assert_eq!(sum.get().unwrap(), Some(n));
        assert_eq!(avg.get().unwrap(), Some(n as f64));
    }
    for state in ["value", "list", "map", "sum", "avg"] {
        assert_eq!(
            b.entry_count(state),
            Some(owned),
            "{state} on subtask {index}"
        );
    }
}

fn subtasks(kind: Backend, parallelism: u16) -> Vec<KeyedStateBackend<String>> {
    (0..parallelism)
        .map(|i| subtask(kind, parallelism, i))
        .collect()
}

pub fn snapshot_restore_into_a_fresh_backend_gives_identical_reads(kind: Backend) {
    let source = vec![full(kind)];
    populate(&source);
    let bytes = source[0].snapshot().unwrap().to_bytes().unwrap();
    let snapshot = KeyedStateSnapshot::from_bytes(&bytes).unwrap();
    assert_eq!(snapshot, source[0].snapshot().unwrap());
    let restored = full(kind);
    restored.restore(&[snapshot]).unwrap();
    verify(&restored, 1, 0);
    // Restoring into a backend whose states are already registered works too.
    let registered = vec![full(kind)];
    populate(&registered);
    registered[0]
        .restore(&[source[0].snapshot().unwrap()])
        .unwrap();
    verify(&registered[0], 1, 0);
}

pub fn snapshot_is_unaffected_by_later_writes(kind: Backend) {
    let b = full(kind);
    let s = b.value_state::<VoidNamespace, u8>("v").unwrap();
    b.set_current_key("k".into()).unwrap();
    s.update(1).unwrap();
    let snapshot = b.snapshot().unwrap();
    s.update(2).unwrap();
    b.restore(&[snapshot]).unwrap();
    assert_eq!(s.value().unwrap(), Some(1));
}

pub fn rescale_two_into_three_keeps_exactly_the_owned_key_groups(kind: Backend) {
    let old = subtasks(kind, 2);
    populate(&old);
    let snapshots: Vec<KeyedStateSnapshot> = old.iter().map(|b| b.snapshot().unwrap()).collect();
    for (index, b) in subtasks(kind, 3).iter().enumerate() {
        b.restore(&snapshots).unwrap();
        verify(b, 3, index as u16);
        let range = b.key_group_range();
        let snapshot = b.snapshot().unwrap();
        for state in &snapshot.states {
            assert!(state.key_groups.iter().all(|g| range.contains(g.key_group)));
        }
    }
}

pub fn rescale_three_into_one_keeps_every_key_group(kind: Backend) {
    let old = subtasks(kind, 3);
    populate(&old);
    let bytes: Vec<Vec<u8>> = old
        .iter()
        .map(|b| b.snapshot().unwrap().to_bytes().unwrap())
        .collect();
    let snapshots: Vec<KeyedStateSnapshot> = bytes
        .iter()
        .map(|b| KeyedStateSnapshot::from_bytes(b).unwrap())
        .collect();
    let single = full(kind);
    single.restore(&snapshots).unwrap();
    verify(&single, 1, 0);
}

pub fn corrupt_truncated_and_wrong_version_bytes_fail_clearly(kind: Backend) {
    let source = vec![full(kind)];
    populate(&source);
    let bytes = source[0].snapshot().unwrap().to_bytes().unwrap();
    let decode = |bytes: &[u8]| KeyedStateSnapshot::from_bytes(bytes).unwrap_err();

    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x40;
    let err = decode(&flipped);
    assert!(matches!(
        err,
        StateError::Codec {
            source: CodecError::ChecksumMismatch { .. },
            ..
        }
    ));
    assert!(err.to_string().contains("keyed state snapshot"), "{err}");

    for len in [0, 3, bytes.len() / 2, bytes.len() - 1] {
        let err = decode(&bytes[..len]);
        assert!(
            matches!(
                err,
                StateError::Codec {
                    source: CodecError::Truncated { .. } | CodecError::ChecksumMismatch { .. },
                    ..
                }
            ),
            "len {len}: {err}"
        );
    }

    let mut versioned = bytes.clone();
    versioned[0] = FORMAT_VERSION + 1;
    let err = decode(&versioned);
    assert!(matches!(
        err,
        StateError::Codec { source: CodecError::VersionMismatch { found, expected, .. }, .. }
            if found == FORMAT_VERSION + 1 && expected == FORMAT_VERSION
    ));
}

pub fn corrupt_key_group_bytes_fail_with_state_and_key_group(kind: Backend) {
    let source = vec![full(kind)];
    populate(&source);
    let mut snapshot = source[0].snapshot().unwrap();
    let state = snapshot
        .states
        .iter_mut()
        .find(|s| s.name == "map")
        .unwrap();
    let group = &mut state.key_groups[0];
    let key_group = group.key_group;
    group.bytes.truncate(group.bytes.len() - 1);

    // Registered before restore: restore fails.
    let registered = full(kind);
    registered
        .map_state::<VoidNamespace, String, u64>("map")
        .unwrap();
    let err = registered
        .restore(std::slice::from_ref(&snapshot))
        .unwrap_err();
    let expected = format!("state 'map' key group {key_group}");
    assert!(err.to_string().contains(&expected), "{err}");

    // Registered after restore: registration fails, and keeps failing.
    let lazy = full(kind);
    lazy.restore(&[snapshot]).unwrap();
    for _ in 0..2 {
        let err = lazy
            .map_state::<VoidNamespace, String, u64>("map")
            .unwrap_err();
        assert!(matches!(err, StateError::Codec { .. }), "{err}");
        assert!(err.to_string().contains(&expected), "{err}");
    }
}

pub fn incompatible_snapshot_layouts_are_rejected(kind: Backend) {
    let source = vec![full(kind)];
    populate(&source);
    let snapshot = source[0].snapshot().unwrap();
    let twice = [snapshot.clone(), snapshot.clone()];
    assert!(matches!(
        full(kind).restore(&twice),
        Err(StateError::OverlappingSnapshots { .. })
    ));
    let other = kind.open(KeyGroupRange::all(64), 64);
    assert!(matches!(
        other.restore(std::slice::from_ref(&snapshot)),
        Err(StateError::MaxParallelismMismatch {
            found: MAX,
            expected: 64,
            ..
        })
    ));
    let mut lying = snapshot;
    lying.key_group_range = KeyGroupRange::new(0, 1);
    assert!(matches!(
        full(kind).restore(&[lying]),
        Err(StateError::KeyGroupOutsideSnapshot { .. })
    ));
}
