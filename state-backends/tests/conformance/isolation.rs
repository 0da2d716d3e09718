//! Key and namespace isolation, clear, modify and namespace merging.

use weir_state_backends::{KeyGroupRange, StateError, VoidNamespace};

use crate::common::{full, key, owner, subtask, Backend, MAX};
use crate::kinds::Average;

pub fn value_state_is_scoped_to_current_key_and_namespace(kind: Backend) {
    let b = full(kind);
    let mut s = b.value_state::<u32, u64>("v").unwrap();
    for k in 0..10 {
        b.set_current_key(key(k)).unwrap();
        for ns in 0..3u32 {
            s.set_namespace(ns);
            s.update(k as u64 * 10 + u64::from(ns)).unwrap();
        }
    }
    for k in 0..10 {
        b.set_current_key(key(k)).unwrap();
        for ns in 0..3u32 {
            assert_eq!(
                s.value_in(&ns).unwrap(),
                Some(k as u64 * 10 + u64::from(ns))
            );
        }
        assert_eq!(s.value_in(&3).unwrap(), None);
    }
    b.set_current_key("unknown".into()).unwrap();
    assert_eq!(s.value().unwrap(), None);
    assert_eq!(b.entry_count("v"), Some(30));
}

pub fn every_kind_isolates_keys_and_namespaces(kind: Backend) {
    let b = full(kind);
    let list = b.list_state::<u8, u32>("l").unwrap();
    let map = b.map_state::<u8, u32, u32>("m").unwrap();
    let sum = b
        .reducing_state::<u8, u32>("r", |a: u32, b: u32| a + b)
        .unwrap();
    let avg = b.aggregating_state::<u8, _, _, _>("a", Average).unwrap();
    for k in 0..4u32 {
        b.set_current_key(key(k as usize)).unwrap();
        for ns in 0..2u8 {
            let v = k * 10 + u32::from(ns);
            list.add_in(&ns, v).unwrap();
            map.put_in(&ns, v, v).unwrap();
            sum.add_in(&ns, v).unwrap();
            avg.add_in(&ns, f64::from(v)).unwrap();
        }
    }
    for k in 0..4u32 {
        b.set_current_key(key(k as usize)).unwrap();
        for ns in 0..2u8 {
            let v = k * 10 + u32::from(ns);
            assert_eq!(list.get_in(&ns).unwrap(), [v]);
            assert_eq!(map.entries_in(&ns).unwrap(), [(v, v)]);
            assert_eq!(sum.get_in(&ns).unwrap(), Some(v));
            assert_eq!(avg.get_in(&ns).unwrap(), Some(f64::from(v)));
        }
    }
}

pub fn clear_removes_only_the_current_entry_and_leaves_no_residue(kind: Backend) {
    let b = full(kind);
    let list = b.list_state::<u64, u8>("window-contents").unwrap();
    let map = b.map_state::<u64, u8, u8>("window-map").unwrap();
    for k in 0..20 {
        b.set_current_key(key(k)).unwrap();
        for window in 0..5u64 {
            list.add_in(&window, 1).unwrap();
            map.put_in(&window, 1, 1).unwrap();
        }
    }
    b.set_current_key(key(0)).unwrap();
    list.clear_in(&0).unwrap();
    assert!(list.get_in(&0).unwrap().is_empty());
    assert_eq!(list.get_in(&1).unwrap(), [1]);
    b.set_current_key(key(1)).unwrap();
    assert_eq!(list.get_in(&0).unwrap(), [1]);
    // Fire and purge every window of every key: nothing may remain.
    for k in 0..20 {
        b.set_current_key(key(k)).unwrap();
        for window in 0..5u64 {
            list.clear_in(&window).unwrap();
            map.remove_in(&window, &1).unwrap();
        }
    }
    assert_eq!(b.entry_count("window-contents"), Some(0));
    assert_eq!(b.entry_count("window-map"), Some(0));
    let snapshot = b.snapshot().unwrap();
    assert!(snapshot.states.iter().all(|s| s.key_groups.is_empty()));
}

pub fn modify_reads_and_writes_in_place(kind: Backend) {
    let b = full(kind);
    let s = b.value_state::<VoidNamespace, Vec<u32>>("buf").unwrap();
    b.set_current_key("k".into()).unwrap();
    let was_empty = s.modify(|slot| {
        let empty = slot.is_none();
        slot.get_or_insert_with(Vec::new).push(1);
        empty
    });
    assert!(was_empty.unwrap());
    s.modify(|slot| slot.as_mut().unwrap().push(2)).unwrap();
    assert_eq!(s.value().unwrap(), Some(vec![1, 2]));
    let taken = s.modify(Option::take).unwrap();
    assert_eq!(taken, Some(vec![1, 2]));
    assert_eq!(s.value().unwrap(), None);
    assert_eq!(b.entry_count("buf"), Some(0));
    s.modify(|slot| assert!(slot.is_none())).unwrap();
    assert_eq!(b.entry_count("buf"), Some(0));
}

pub fn merge_namespaces_combines_list_reducing_and_aggregating_state(kind: Backend) {
    let b = full(kind);
    let list = b.list_state::<u8, u32>("l").unwrap();
    let sum = b
        .reducing_state::<u8, u32>("r", |a: u32, b: u32| a + b)
        .unwrap();
    let avg = b.aggregating_state::<u8, _, _, _>("a", Average).unwrap();
    b.set_current_key("session-key".into()).unwrap();
    for (ns, v) in [(1u8, 1u32), (2, 2), (3, 3), (3, 4)] {
        list.add_in(&ns, v).unwrap();
        sum.add_in(&ns, v).unwrap();
        avg.add_in(&ns, f64::from(v)).unwrap();
    }
    list.merge_namespaces(&1, &[2, 3]).unwrap();
    sum.merge_namespaces(&1, &[2, 3]).unwrap();
    avg.merge_namespaces(&9, &[1, 2, 3]).unwrap();
    assert_eq!(list.get_in(&1).unwrap(), [1, 2, 3, 4]);
    assert_eq!(sum.get_in(&1).unwrap(), Some(10));
    assert_eq!(avg.get_in(&9).unwrap(), Some(2.5));
    for ns in [2u8, 3] {
        assert!(list.get_in(&ns).unwrap().is_empty());
        assert_eq!(sum.get_in(&ns).unwrap(), None);
    }
    assert_eq!(avg.get_in(&1).unwrap(), None);
    for state in ["l", "r", "a"] {
        assert_eq!(b.entry_count(state), Some(1), "{state}");
    }
}

pub fn access_without_a_current_key_fails_naming_the_state(kind: Backend) {
    let b = full(kind);
    let s = b.value_state::<VoidNamespace, u8>("needs-key").unwrap();
    let err = s.update(1).unwrap_err();
    assert!(matches!(err, StateError::NoCurrentKey { ref state } if state == "needs-key"));
    assert!(err.to_string().contains("needs-key"));
    assert_eq!(b.current_key(), None);
    assert_eq!(b.current_key_group(), None);
}

pub fn keys_outside_the_key_group_range_are_rejected(kind: Backend) {
    let b = subtask(kind, 2, 0);
    let range = KeyGroupRange::for_operator(MAX, 2, 0);
    let foreign = (0..).map(key).find(|k| owner(k, 2) == 1).unwrap();
    let local = (0..).map(key).find(|k| owner(k, 2) == 0).unwrap();
    b.set_current_key(local.clone()).unwrap();
    let err = b.set_current_key(foreign).unwrap_err();
    assert!(matches!(err, StateError::KeyGroupOutOfRange { range: r, .. } if r == range));
    assert_eq!(b.current_key(), Some(local));
}

pub fn every_kind_lists_the_keys_holding_state_in_its_namespace(kind: Backend) {
    use weir_state_backends::KeyedState;
    let b = subtask(kind, 2, 1);
    let owned: Vec<usize> = (0..60).filter(|i| owner(&key(*i), 2) == 1).collect();
    let value = b.value_state::<VoidNamespace, u32>("v").unwrap();
    let list = b.list_state::<VoidNamespace, u32>("l").unwrap();
    let map = b.map_state::<VoidNamespace, u32, u32>("m").unwrap();
    let sum = b
        .reducing_state::<VoidNamespace, u32>("r", |a: u32, b: u32| a + b)
        .unwrap();
    let avg = b
        .aggregating_state::<VoidNamespace, _, _, _>("a", Average)
        .unwrap();
    let mut windowed = b.value_state::<u8, u32>("w").unwrap();
    for &i in &owned {
        b.set_current_key(key(i)).unwrap();
        value.update(1).unwrap();
        list.add(1).unwrap();
        // Several user keys per key: the key is still listed once.
        map.put(1, 1).unwrap();
        map.put(2, 2).unwrap();
        sum.add(1).unwrap();
        avg.add(1.0).unwrap();
        windowed.update_in(&((i % 2) as u8), 1).unwrap();
    }
    // Cleared and emptied entries leave their keys out.
    let (gone, rest) = owned.split_at(3);
    for &i in gone {
        b.set_current_key(key(i)).unwrap();
        value.clear().unwrap();
        list.update(Vec::new()).unwrap();
        map.remove(&1).unwrap();
        map.remove(&2).unwrap();
        sum.clear().unwrap();
        avg.clear().unwrap();
    }
    let sorted = |mut keys: Vec<String>| {
        keys.sort();
        keys
    };
    let mut expected: Vec<String> = rest.iter().map(|i| key(*i)).collect();
    expected.sort();
    assert_eq!(sorted(value.state_keys().unwrap()), expected);
    assert_eq!(sorted(list.state_keys().unwrap()), expected);
    assert_eq!(sorted(map.state_keys().unwrap()), expected);
    assert_eq!(sorted(sum.state_keys().unwrap()), expected);
    assert_eq!(sorted(avg.state_keys().unwrap()), expected);
    windowed.set_namespace(1);
    let odd: Vec<String> = owned
        .iter()
        .filter(|i| *i % 2 == 1)
        .map(|i| key(*i))
        .collect();
    assert_eq!(sorted(windowed.state_keys().unwrap()), sorted(odd));
}
