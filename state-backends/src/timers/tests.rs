//! Specification tests of the timer service, run against timers on the heap and, with
//! the `rocksdb` feature, in RocksDB.

macro_rules! timer_spec {
    ($name:ident, $new:expr) => {
        mod $name {
            use super::super::*;
            use crate::key_group::DEFAULT_MAX_PARALLELISM as MAX;

            fn new_service(range: KeyGroupRange, max: u16) -> TimerService<String, u32> {
                let new: fn(KeyGroupRange, u16) -> TimerService<String, u32> = $new;
                new(range, max)
            }

            /// A timer service of the backend under test owning `range`.
            fn service_in(range: KeyGroupRange, max: u16) -> TimerService<String, u32> {
                new_service(range, max)
            }

            fn service() -> TimerService<String, u32> {
                service_in(KeyGroupRange::all(MAX), MAX)
            }

            fn fired(out: &[Timer<String, u32>]) -> Vec<(&str, u32, i64)> {
                out.iter()
                    .map(|t| (t.key.as_str(), t.namespace, t.timestamp))
                    .collect()
            }

            #[test]
            fn the_same_timer_registered_twice_fires_once() {
                let mut s = service();
                assert!(s.register_event_time_timer("a".into(), 1, 100).unwrap());
                assert!(!s.register_event_time_timer("a".into(), 1, 100).unwrap());
                assert_eq!(s.len(), 1);
                let mut out = Vec::new();
                s.advance_watermark(100, &mut out).unwrap();
                assert_eq!(fired(&out), [("a", 1, 100)]);
                assert!(s.is_empty());
            }

            #[test]
            fn watermark_fires_due_timers_in_timestamp_order_only() {
                let mut s = service();
                s.register_event_time_timer("a".into(), 0, 30).unwrap();
                s.register_event_time_timer("b".into(), 0, 10).unwrap();
                s.register_event_time_timer("c".into(), 0, 20).unwrap();
                s.register_processing_time_timer("p".into(), 0, 5).unwrap();
                assert_eq!(s.next_event_time(), Some(10));
                let mut out = Vec::new();
                s.advance_watermark(25, &mut out).unwrap();
                assert_eq!(fired(&out), [("b", 0, 10), ("c", 0, 20)]);
                assert_eq!(s.next_event_time(), Some(30));
                assert_eq!(
                    s.processing_time_len(),
                    1,
                    "processing time is a separate domain"
                );
            }

            #[test]
            fn deleted_timers_do_not_fire() {
                let mut s = service();
                s.register_processing_time_timer("a".into(), 0, 10).unwrap();
                s.register_processing_time_timer("b".into(), 0, 10).unwrap();
                assert!(s.delete_processing_time_timer(&"a".into(), &0, 10).unwrap());
                assert!(!s.delete_processing_time_timer(&"a".into(), &0, 10).unwrap());
                assert!(!s.delete_event_time_timer(&"b".into(), &0, 10).unwrap());
                assert_eq!(s.next_processing_time(), Some(10));
                let mut out = Vec::new();
                s.advance_processing_time(10, &mut out).unwrap();
                assert_eq!(fired(&out), [("b", 0, 10)]);
                assert_eq!(s.next_processing_time(), None);
            }

            #[test]
            fn snapshot_restore_preserves_timers_and_their_firing_order() {
                let mut s = service();
                for i in 0..50u32 {
                    s.register_event_time_timer(format!("k{i}"), i % 3, i64::from(i % 7))
                        .unwrap();
                    s.register_processing_time_timer(format!("k{i}"), 0, 1000 + i64::from(i))
                        .unwrap();
                }
                let bytes = s.snapshot().unwrap().to_bytes().unwrap();
                let mut restored = service();
                restored
                    .restore(&[TimerSnapshot::from_bytes(&bytes).unwrap()])
                    .unwrap();
                assert_eq!(
                    (restored.event_time_len(), restored.processing_time_len()),
                    (50, 50)
                );
                let (mut a, mut b) = (Vec::new(), Vec::new());
                s.advance_watermark(i64::MAX, &mut a).unwrap();
                restored.advance_watermark(i64::MAX, &mut b).unwrap();
                assert_eq!(a, b);
            }

            #[test]
            fn rescaled_restore_keeps_exactly_the_owned_key_groups() {
                let mut s = service();
                for i in 0..200u32 {
                    s.register_event_time_timer(format!("k{i}"), 0, i64::from(i))
                        .unwrap();
                }
                let snapshot = s.snapshot().unwrap();
                let mut total = 0;
                for op in 0..3 {
                    let range = KeyGroupRange::for_operator(MAX, 3, op);
                    let mut part = service_in(range, MAX);
                    part.restore(std::slice::from_ref(&snapshot)).unwrap();
                    let mut out = Vec::new();
                    part.advance_watermark(i64::MAX, &mut out).unwrap();
                    for t in &out {
                        assert!(range.contains(assign_to_key_group(key_hash(&t.key), MAX)));
                    }
                    total += out.len();
                }
                assert_eq!(total, 200);
            }

            #[test]
            fn restore_rejects_foreign_max_parallelism_and_corrupt_bytes() {
                let mut s = service();
                s.register_event_time_timer("a".into(), 0, 1).unwrap();
                let mut snapshot = s.snapshot().unwrap();
                let mut other = service_in(KeyGroupRange::all(64), 64);
                assert!(matches!(
                    other.restore(std::slice::from_ref(&snapshot)),
                    Err(StateError::MaxParallelismMismatch {
                        found: 128,
                        expected: 64,
                        ..
                    })
                ));
                snapshot.event_time[0].bytes.truncate(2);
                assert!(matches!(
                    service().restore(&[snapshot]),
                    Err(StateError::Codec { .. })
                ));
            }
        }
    };
}

timer_spec!(heap, TimerService::new);

#[cfg(feature = "rocksdb")]
timer_spec!(rocksdb, |range, max| {
    crate::KeyedStateBackend::<String>::new(crate::StateBackendKind::RocksDb, range, max)
        .unwrap()
        .timer_service()
        .unwrap()
});
