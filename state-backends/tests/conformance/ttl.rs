//! State time-to-live on every state kind: expiry, update types, visibility, cleanup
//! on access, before full snapshots and in RocksDB compactions. Time comes from a
//! manual clock, so every expiry is exact.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir_state_backends::{
    KeyedStateBackend, StateBackendKind, StateError, StateTtlConfig, StateTtlConfigBuilder,
    StateVisibility, TtlListState, TtlMapState, TtlReducingState, TtlTimeProvider, TtlValueState,
    UpdateType, VoidNamespace,
};

use crate::common::{full, Backend};

/// A clock the test moves.
#[derive(Default)]
struct ManualClock(AtomicI64);

impl TtlTimeProvider for ManualClock {
    fn current_timestamp(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl ManualClock {
    fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

/// A 100 ms time to live on `clock`.
fn ttl(clock: &Arc<ManualClock>) -> StateTtlConfigBuilder {
    StateTtlConfig::new_builder(Duration::from_millis(100)).set_ttl_time_provider(clock.clone())
}

fn backend(kind: Backend) -> (KeyedStateBackend<String>, Arc<ManualClock>) {
    let b = full(kind);
    b.set_current_key("k".into()).unwrap();
    (b, Arc::new(ManualClock::default()))
}

pub fn ttl_value_state_expires_once_its_time_to_live_passed(kind: Backend) {
    let (b, clock) = backend(kind);
    let s = b
        .ttl_value_state::<String>("v", &ttl(&clock).build())
        .unwrap();
    s.update("one".into()).unwrap();
    clock.set(99);
    assert_eq!(s.value().unwrap().as_deref(), Some("one"));
    clock.set(100);
    assert_eq!(s.value().unwrap(), None);
    assert_eq!(
        b.entry_count("v"),
        Some(0),
        "an expired read removes the entry"
    );
    s.update("two".into()).unwrap();
    clock.set(150);
    assert_eq!(
        s.value().unwrap().as_deref(),
        Some("two"),
        "a write restamps"
    );
}

pub fn update_types_decide_whether_reads_refresh(kind: Backend) {
    let (b, clock) = backend(kind);
    let on_write = b
        .ttl_value_state::<u32>("write", &ttl(&clock).build())
        .unwrap();
    let read_config = ttl(&clock).update_ttl_on_read_and_write().build();
    let on_read = b.ttl_value_state::<u32>("read", &read_config).unwrap();
    let never = ttl(&clock).set_update_type(UpdateType::Disabled).build();
    let disabled = b.ttl_value_state::<u32>("disabled", &never).unwrap();
    for s in [&on_write, &on_read, &disabled] {
        s.update(1).unwrap();
    }
    clock.set(60);
    assert_eq!(on_write.value().unwrap(), Some(1));
    assert_eq!(on_read.value().unwrap(), Some(1));
    clock.set(120);
    assert_eq!(on_write.value().unwrap(), None, "reads do not refresh");
    assert_eq!(
        on_read.value().unwrap(),
        Some(1),
        "the read at 60 refreshed"
    );
    clock.set(i64::MAX);
    assert_eq!(disabled.value().unwrap(), Some(1), "disabled never expires");
}

pub fn return_expired_if_not_cleaned_up_returns_it_once(kind: Backend) {
    let (b, clock) = backend(kind);
    let config = ttl(&clock)
        .set_state_visibility(StateVisibility::ReturnExpiredIfNotCleanedUp)
        .build();
    let s = b.ttl_value_state::<u32>("v", &config).unwrap();
    let l = b.ttl_list_state::<u32>("l", &config).unwrap();
    let m = b.ttl_map_state::<u32, u32>("m", &config).unwrap();
    s.update(7).unwrap();
    l.add(7).unwrap();
    m.put(1, 7).unwrap();
    clock.set(500);
    assert_eq!(s.value().unwrap(), Some(7));
    assert_eq!(s.value().unwrap(), None, "the first read removed it");
    assert_eq!(l.get().unwrap(), [7]);
    assert!(l.get().unwrap().is_empty());
    assert_eq!(m.get(&1).unwrap(), Some(7));
    assert_eq!(m.get(&1).unwrap(), None);
}

pub fn list_elements_expire_one_by_one(kind: Backend) {
    let (b, clock) = backend(kind);
    let l = b.ttl_list_state::<u32>("l", &ttl(&clock).build()).unwrap();
    l.add(1).unwrap();
    clock.set(50);
    l.add_all([2, 3]).unwrap();
    clock.set(110);
    assert_eq!(l.get().unwrap(), [2, 3]);
    assert_eq!(b.entry_count("l"), Some(1));
    clock.set(150);
    assert!(l.get().unwrap().is_empty());
    assert_eq!(
        b.entry_count("l"),
        Some(0),
        "a list of expired elements goes"
    );
    l.update(vec![4, 5]).unwrap();
    assert_eq!(l.get().unwrap(), [4, 5]);
}

pub fn map_entries_expire_one_by_one(kind: Backend) {
    let (b, clock) = backend(kind);
    let m = b
        .ttl_map_state::<u32, String>("m", &ttl(&clock).build())
        .unwrap();
    m.put(1, "a".into()).unwrap();
    clock.set(50);
    m.put(2, "b".into()).unwrap();
    clock.set(120);
    assert_eq!(m.get(&1).unwrap(), None);
    assert!(m.contains(&2).unwrap());
    assert_eq!(m.entries().unwrap(), [(2, "b".to_owned())]);
    assert_eq!(m.keys().unwrap(), [2]);
    assert!(!m.is_empty().unwrap());
    clock.set(150);
    assert!(m.is_empty().unwrap());
    assert!(m.values().unwrap().is_empty());
    assert_eq!(b.entry_count("m"), Some(0));
}

pub fn reducing_and_aggregating_state_start_afresh_after_expiry(kind: Backend) {
    let (b, clock) = backend(kind);
    let config = ttl(&clock).build();
    let sum = b
        .ttl_reducing_state::<u64>("sum", |a: u64, b: u64| a + b, &config)
        .unwrap();
    let avg = b
        .ttl_aggregating_state("avg", crate::kinds::Average, &config)
        .unwrap();
    for v in [1, 2] {
        sum.add(v).unwrap();
        avg.add(v as f64).unwrap();
    }
    clock.set(60);
    sum.add(3).unwrap();
    avg.add(3.0).unwrap();
    assert_eq!(sum.get().unwrap(), Some(6));
    assert_eq!(avg.get().unwrap(), Some(2.0));
    clock.set(160);
    assert_eq!(sum.get().unwrap(), None, "the add at 60 stamped it last");
    sum.add(5).unwrap();
    avg.add(5.0).unwrap();
    assert_eq!(sum.get().unwrap(), Some(5));
    assert_eq!(avg.get().unwrap(), Some(5.0));
    sum.clear().unwrap();
    avg.clear().unwrap();
    assert_eq!((sum.get().unwrap(), avg.get().unwrap()), (None, None));
}

/// Registers one TTL state of each kind: value, list, map, reducing.
type EveryKind = (
    TtlValueState<String, u32>,
    TtlListState<String, u32>,
    TtlMapState<String, u32, u32>,
    TtlReducingState<String, u32>,
);

fn every_kind(b: &KeyedStateBackend<String>, config: &StateTtlConfig) -> EveryKind {
    (
        b.ttl_value_state("v", config).unwrap(),
        b.ttl_list_state("l", config).unwrap(),
        b.ttl_map_state("m", config).unwrap(),
        b.ttl_reducing_state("r", |a: u32, b: u32| a.max(b), config)
            .unwrap(),
    )
}

/// One entry of each kind for key `k` at time 0 and one for key `late` at time 50.
fn fill_every_kind(b: &KeyedStateBackend<String>, clock: &ManualClock, config: &StateTtlConfig) {
    let (s, l, m, r) = every_kind(b, config);
    for (key, at) in [("k", 0), ("late", 50)] {
        clock.set(at);
        b.set_current_key(key.into()).unwrap();
        s.update(1).unwrap();
        l.add(1).unwrap();
        m.put(1, 1).unwrap();
        r.add(1).unwrap();
    }
}

/// Entries stored per state: list, map, reducing, value.
fn counts(b: &KeyedStateBackend<String>) -> Vec<Option<usize>> {
    ["l", "m", "r", "v"].map(|s| b.entry_count(s)).to_vec()
}

pub fn full_snapshots_leave_expired_entries_out_when_asked(kind: Backend) {
    for (cleanup, left) in [(true, 1), (false, 2)] {
        let (b, clock) = backend(kind);
        let mut config = ttl(&clock).disable_cleanup_in_background();
        if cleanup {
            config = config.cleanup_full_snapshot();
        }
        let config = config.build();
        fill_every_kind(&b, &clock, &config);
        clock.set(120);
        let snapshot = b.snapshot().unwrap();
        let restored = full(kind);
        restored.restore(std::slice::from_ref(&snapshot)).unwrap();
        every_kind(&restored, &config);
        assert_eq!(counts(&restored), vec![Some(left); 4], "cleanup {cleanup}");
        assert_eq!(counts(&b), vec![Some(left); 4], "cleanup {cleanup}");
    }
}

pub fn ttl_state_restores_with_its_timestamps(kind: Backend) {
    let (b, clock) = backend(kind);
    let config = ttl(&clock).build();
    fill_every_kind(&b, &clock, &config);
    let snapshot = b.snapshot().unwrap();
    let restored = full(kind);
    restored.restore(std::slice::from_ref(&snapshot)).unwrap();
    let (s, l, _, _) = every_kind(&restored, &config);
    restored.set_current_key("late".into()).unwrap();
    clock.set(120);
    assert_eq!((s.value().unwrap(), l.get().unwrap()), (Some(1), vec![1]));
    restored.set_current_key("k".into()).unwrap();
    assert_eq!((s.value().unwrap(), l.get().unwrap()), (None, vec![]));
}

pub fn compaction_drops_expired_entries_in_rocksdb(kind: Backend) {
    for background in [true, false] {
        let (b, clock) = backend(kind);
        let mut config = ttl(&clock);
        if !background {
            config = config.disable_cleanup_in_background();
        }
        fill_every_kind(&b, &clock, &config.build());
        assert_eq!(counts(&b), vec![Some(2); 4]);
        clock.set(120);
        b.compact().unwrap();
        let dropped = background && kind.kind == StateBackendKind::RocksDb;
        let left = if dropped { 1 } else { 2 };
        assert_eq!(
            counts(&b),
            vec![Some(left); 4],
            "background cleanup {background}"
        );
    }
}

pub fn a_time_to_live_below_one_millisecond_is_rejected_naming_the_state(kind: Backend) {
    let (b, _) = backend(kind);
    let config = StateTtlConfig::new_builder(Duration::from_micros(500)).build();
    let err = b.ttl_value_state::<u32>("session", &config).unwrap_err();
    assert!(matches!(&err, StateError::InvalidTtl { state, .. } if state == "session"));
    assert!(err.to_string().contains("'session'"), "{err}");
}

pub fn ttl_and_plain_state_cannot_share_a_name(kind: Backend) {
    let (b, clock) = backend(kind);
    b.ttl_value_state::<u32>("v", &ttl(&clock).build()).unwrap();
    let err = b.value_state::<VoidNamespace, u32>("v").unwrap_err();
    assert!(matches!(err, StateError::StateTypeMismatch { .. }), "{err}");
}
