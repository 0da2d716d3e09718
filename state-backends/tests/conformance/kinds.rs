//! Semantics of each state kind and of state registration.

use weir_state_backends::{AggregateFunction, StateError, StateKind, VoidNamespace};

use crate::common::{full, Backend};

pub fn value_state_reads_back_updates_and_clears(kind: Backend) {
    let b = full(kind);
    let s = b.value_state::<VoidNamespace, String>("v").unwrap();
    b.set_current_key("k".into()).unwrap();
    assert_eq!(s.value().unwrap(), None);
    s.update("one".into()).unwrap();
    s.update("two".into()).unwrap();
    assert_eq!(s.value().unwrap().as_deref(), Some("two"));
    assert_eq!(s.with_value(|v| v.map(String::len)).unwrap(), Some(3));
    s.clear().unwrap();
    assert_eq!(s.value().unwrap(), None);
    s.clear().unwrap();
}

pub fn list_state_preserves_insertion_order(kind: Backend) {
    let b = full(kind);
    let s = b.list_state::<VoidNamespace, u32>("l").unwrap();
    b.set_current_key("k".into()).unwrap();
    assert!(s.get().unwrap().is_empty());
    s.add(3).unwrap();
    s.add(1).unwrap();
    s.add_all([4, 1, 5]).unwrap();
    assert_eq!(s.get().unwrap(), [3, 1, 4, 1, 5]);
    s.update(vec![9, 2]).unwrap();
    assert_eq!(s.get().unwrap(), [9, 2]);
    assert_eq!(s.with_values(|v| v.iter().sum::<u32>()).unwrap(), 11);
    s.clear().unwrap();
    assert!(s.get().unwrap().is_empty());
}

pub fn map_state_behaves_like_a_map(kind: Backend) {
    let b = full(kind);
    let m = b.map_state::<VoidNamespace, u32, String>("m").unwrap();
    b.set_current_key("k".into()).unwrap();
    assert!(m.is_empty().unwrap());
    m.put(1, "a".into()).unwrap();
    m.put(2, "b".into()).unwrap();
    m.put(1, "c".into()).unwrap();
    assert_eq!(m.get(&1).unwrap().as_deref(), Some("c"));
    assert_eq!(m.get(&3).unwrap(), None);
    assert!(m.contains(&2).unwrap() && !m.contains(&3).unwrap());
    let mut keys = m.keys().unwrap();
    keys.sort_unstable();
    assert_eq!(keys, [1, 2]);
    let mut values = m.values().unwrap();
    values.sort();
    assert_eq!(values, ["b", "c"]);
    let mut entries = m.entries().unwrap();
    entries.sort();
    assert_eq!(entries, [(1, "c".to_owned()), (2, "b".to_owned())]);
    m.remove(&1).unwrap();
    assert_eq!((m.len().unwrap(), m.get(&1).unwrap()), (1, None));
    m.clear().unwrap();
    assert!(m.is_empty().unwrap());
    assert_eq!(b.entry_count("m"), Some(0));
}

pub fn reducing_state_reduces_in_place(kind: Backend) {
    let b = full(kind);
    let s = b
        .reducing_state::<VoidNamespace, i64>("max", i64::max)
        .unwrap();
    b.set_current_key("k".into()).unwrap();
    assert_eq!(s.get().unwrap(), None);
    for v in [3, 9, -1, 4] {
        s.add(v).unwrap();
    }
    assert_eq!(s.get().unwrap(), Some(9));
    s.clear().unwrap();
    assert_eq!(s.get().unwrap(), None);
}

/// Average of `f64` values, accumulated as (sum, count).
pub struct Average;

impl AggregateFunction<f64, (f64, u64), f64> for Average {
    fn create_accumulator(&self) -> (f64, u64) {
        (0.0, 0)
    }
    fn add(&self, value: f64, acc: &mut (f64, u64)) {
        acc.0 += value;
        acc.1 += 1;
    }
    fn get_result(&self, acc: &(f64, u64)) -> f64 {
        acc.0 / acc.1 as f64
    }
    fn merge(&self, a: (f64, u64), b: (f64, u64)) -> (f64, u64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

pub fn aggregating_state_accumulates_and_reports_results(kind: Backend) {
    let b = full(kind);
    let s = b
        .aggregating_state::<VoidNamespace, _, _, _>("avg", Average)
        .unwrap();
    b.set_current_key("k".into()).unwrap();
    assert_eq!(s.get().unwrap(), None);
    for v in [2.0, 4.0, 9.0] {
        s.add(v).unwrap();
    }
    assert_eq!(s.get().unwrap(), Some(5.0));
    s.clear().unwrap();
    assert_eq!(s.get().unwrap(), None);
}

pub fn registering_a_name_twice_returns_the_same_state(kind: Backend) {
    let b = full(kind);
    let first = b.list_state::<VoidNamespace, u8>("l").unwrap();
    let second = b.list_state::<VoidNamespace, u8>("l").unwrap();
    b.set_current_key("k".into()).unwrap();
    first.add(1).unwrap();
    second.add(2).unwrap();
    assert_eq!(first.get().unwrap(), [1, 2]);
    assert_eq!(b.state_names(), ["l"]);
}

pub fn a_name_cannot_be_reused_with_another_kind_or_type(kind: Backend) {
    let b = full(kind);
    b.value_state::<VoidNamespace, u64>("s").unwrap();
    let err = b.map_state::<VoidNamespace, u8, u8>("s").unwrap_err();
    assert!(matches!(
        &err,
        StateError::StateTypeMismatch {
            name,
            existing_kind: StateKind::Value,
            requested_kind: StateKind::Map,
            ..
        } if name == "s"
    ));
    let err = b.value_state::<u32, u64>("s").unwrap_err();
    assert!(matches!(err, StateError::StateTypeMismatch { .. }));
    let err = b
        .aggregating_state::<VoidNamespace, _, _, _>("s", Average)
        .unwrap_err();
    assert!(err.to_string().contains("'s'"), "{err}");
}
