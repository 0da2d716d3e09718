//! Model-based property tests: random operation sequences against a
//! `std::collections::HashMap` model, ending with a snapshot/restore round
//! trip that must preserve the model exactly.

use std::collections::HashMap;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::{full, Backend};

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    })
}

#[derive(Clone, Debug)]
enum ValueOp {
    SetKey(u8),
    Update(u8, i32),
    Clear(u8),
    Add(u8, i32),
    Read(u8),
}

fn value_op() -> impl Strategy<Value = ValueOp> {
    let ns = 0u8..3;
    prop_oneof![
        (0u8..6).prop_map(ValueOp::SetKey),
        (ns.clone(), any::<i32>()).prop_map(|(n, v)| ValueOp::Update(n, v)),
        ns.clone().prop_map(ValueOp::Clear),
        (ns.clone(), -5i32..5).prop_map(|(n, v)| ValueOp::Add(n, v)),
        ns.prop_map(ValueOp::Read),
    ]
}

pub fn value_state_matches_a_hash_map_model(kind: Backend) {
    runner()
        .run(&vec(value_op(), 1..100), |ops| {
            let b = full(kind);
            let s = b.value_state::<u8, i32>("v").unwrap();
            let mut model: HashMap<(String, u8), i32> = HashMap::new();
            let mut key = "k0".to_owned();
            b.set_current_key(key.clone()).unwrap();
            for op in ops {
                match op {
                    ValueOp::SetKey(k) => {
                        key = format!("k{k}");
                        b.set_current_key(key.clone()).unwrap();
                    }
                    ValueOp::Update(ns, v) => {
                        s.update_in(&ns, v).unwrap();
                        model.insert((key.clone(), ns), v);
                    }
                    ValueOp::Clear(ns) => {
                        s.clear_in(&ns).unwrap();
                        model.remove(&(key.clone(), ns));
                    }
                    ValueOp::Add(ns, d) => {
                        // Adding to zero leaves the slot empty, exercising removal.
                        s.modify_in(&ns, |slot| {
                            let next = slot.unwrap_or(0).wrapping_add(d);
                            *slot = (next != 0).then_some(next);
                        })
                        .unwrap();
                        let next = model
                            .get(&(key.clone(), ns))
                            .copied()
                            .unwrap_or(0)
                            .wrapping_add(d);
                        if next == 0 {
                            model.remove(&(key.clone(), ns));
                        } else {
                            model.insert((key.clone(), ns), next);
                        }
                    }
                    ValueOp::Read(ns) => {
                        let expected = model.get(&(key.clone(), ns)).copied();
                        prop_assert_eq!(s.value_in(&ns).unwrap(), expected);
                    }
                }
            }
            prop_assert_eq!(b.entry_count("v"), Some(model.len()));
            let restored = full(kind);
            restored.restore(&[b.snapshot().unwrap()]).unwrap();
            let r = restored.value_state::<u8, i32>("v").unwrap();
            prop_assert_eq!(restored.entry_count("v"), Some(model.len()));
            for ((k, ns), v) in &model {
                restored.set_current_key(k.clone()).unwrap();
                prop_assert_eq!(r.value_in(ns).unwrap(), Some(*v));
            }
            Ok(())
        })
        .unwrap();
}

#[derive(Clone, Debug)]
enum MapOp {
    SetKey(u8),
    Put(u8, u8, u16),
    Remove(u8, u8),
    Clear(u8),
    Check(u8, u8),
}

fn map_op() -> impl Strategy<Value = MapOp> {
    let (ns, uk) = (0u8..2, 0u8..5);
    prop_oneof![
        (0u8..4).prop_map(MapOp::SetKey),
        (ns.clone(), uk.clone(), any::<u16>()).prop_map(|(n, k, v)| MapOp::Put(n, k, v)),
        (ns.clone(), uk.clone()).prop_map(|(n, k)| MapOp::Remove(n, k)),
        ns.clone().prop_map(MapOp::Clear),
        (ns, uk).prop_map(|(n, k)| MapOp::Check(n, k)),
    ]
}

type MapModel = HashMap<(String, u8), HashMap<u8, u16>>;

fn sorted(map: &HashMap<u8, u16>) -> Vec<(u8, u16)> {
    let mut entries: Vec<(u8, u16)> = map.iter().map(|(k, v)| (*k, *v)).collect();
    entries.sort_unstable();
    entries
}

pub fn map_state_matches_a_hash_map_model(kind: Backend) {
    runner()
        .run(&vec(map_op(), 1..100), |ops| {
            let b = full(kind);
            let m = b.map_state::<u8, u8, u16>("m").unwrap();
            let mut model = MapModel::new();
            let mut key = "k0".to_owned();
            b.set_current_key(key.clone()).unwrap();
            for op in ops {
                match op {
                    MapOp::SetKey(k) => {
                        key = format!("k{k}");
                        b.set_current_key(key.clone()).unwrap();
                    }
                    MapOp::Put(ns, k, v) => {
                        m.put_in(&ns, k, v).unwrap();
                        model.entry((key.clone(), ns)).or_default().insert(k, v);
                    }
                    MapOp::Remove(ns, k) => {
                        m.remove_in(&ns, &k).unwrap();
                        if let Some(inner) = model.get_mut(&(key.clone(), ns)) {
                            inner.remove(&k);
                            if inner.is_empty() {
                                model.remove(&(key.clone(), ns));
                            }
                        }
                    }
                    MapOp::Clear(ns) => {
                        m.clear_in(&ns).unwrap();
                        model.remove(&(key.clone(), ns));
                    }
                    MapOp::Check(ns, k) => {
                        let inner = model.get(&(key.clone(), ns)).cloned().unwrap_or_default();
                        prop_assert_eq!(m.get_in(&ns, &k).unwrap(), inner.get(&k).copied());
                        prop_assert_eq!(m.contains_in(&ns, &k).unwrap(), inner.contains_key(&k));
                        prop_assert_eq!(m.len_in(&ns).unwrap(), inner.len());
                        prop_assert_eq!(m.is_empty_in(&ns).unwrap(), inner.is_empty());
                        let mut entries = m.entries_in(&ns).unwrap();
                        entries.sort_unstable();
                        prop_assert_eq!(entries, sorted(&inner));
                    }
                }
            }
            prop_assert_eq!(b.entry_count("m"), Some(model.len()));
            let restored = full(kind);
            restored.restore(&[b.snapshot().unwrap()]).unwrap();
            let r = restored.map_state::<u8, u8, u16>("m").unwrap();
            for ((k, ns), inner) in &model {
                restored.set_current_key(k.clone()).unwrap();
                let mut entries = r.entries_in(ns).unwrap();
                entries.sort_unstable();
                prop_assert_eq!(entries, sorted(inner));
            }
            prop_assert_eq!(restored.entry_count("m"), Some(model.len()));
            Ok(())
        })
        .unwrap();
}
