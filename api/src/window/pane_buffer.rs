//! The in-memory pre-aggregation buffer of an aggregating event-time window operator: one
//! accumulator per (window, key), kept window by window.
//!
//! Records fold into the buffer without touching the state backend; a window that fires
//! while all of its accumulators are buffered is drained from memory, window by window,
//! with no backend access and no timer per key (the buffer is itself the window's timer).
//! Accumulators reach the backend only when the buffer spills: at a checkpoint barrier
//! (the entries stay buffered, clean) and when it is full (the windows that end first leave
//! it, until it is half full: they take no more records once event time moved on, while
//! the newest windows, if spilled, would be read back for their next records).
//!
//! Invariants:
//! - A slot's accumulator is the whole of its (window, key): a slot created for a window
//!   that may have stored state starts from the stored accumulator, so the buffer is never
//!   merged with the backend.
//! - `stored` on a slot means the backend holds an entry and an event-time timer for it;
//!   only such slots are fired by their timer, every other slot by its window's drain.
//! - A window may have stored entries only if it was spilled in this run or ends no later
//!   than the last restored timer; a window outside both starts every slot empty.
//! - Windows drain in the order of their ends.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use weir_runtime::{Timestamp, MIN_WATERMARK};

use super::assigner::TimeWindow;

/// The buffered accumulator of one (window, key).
pub(crate) struct Slot<ACC> {
    /// The accumulator: the whole of the window's contents for the key.
    pub(crate) acc: ACC,
    /// Changed since it was last written to the backend.
    pub(crate) dirty: bool,
    /// The backend holds an entry and a firing timer for this (window, key).
    pub(crate) stored: bool,
}

/// Windows in the order they fire: by end, then start.
type WindowOrder = (Timestamp, Timestamp);

fn order(w: &TimeWindow) -> WindowOrder {
    (w.end, w.start)
}

/// The buffered slots of one window.
pub(crate) type Slots<K, ACC> = FxHashMap<K, Slot<ACC>>;

/// Accumulators by window and key, bounded by a number of slots.
pub(crate) struct PaneBuffer<K, ACC> {
    windows: BTreeMap<WindowOrder, (TimeWindow, Slots<K, ACC>)>,
    len: usize,
    capacity: usize,
    /// Windows spilled in this run, until they fire.
    spilled: BTreeSet<WindowOrder>,
    /// Windows ending at or before this may have restored entries.
    restored_through: Timestamp,
}

impl<K: std::hash::Hash + Eq, ACC> PaneBuffer<K, ACC> {
    /// An empty buffer of at most `capacity` slots, after a restore whose latest window
    /// fires at `restored_through` (`MIN_WATERMARK`: nothing restored).
    pub(crate) fn new(capacity: usize, restored_through: Timestamp) -> Self {
        Self {
            windows: BTreeMap::new(),
            len: 0,
            capacity,
            spilled: BTreeSet::new(),
            restored_through,
        }
    }

    /// Number of buffered slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds its capacity and must spill.
    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// Whether the backend may hold entries of `w`.
    pub(crate) fn may_be_stored(&self, w: &TimeWindow) -> bool {
        w.max_timestamp() <= self.restored_through || self.spilled.contains(&order(w))
    }

    /// The slot of (`w`, `key`), if buffered.
    #[inline]
    pub(crate) fn get_mut(&mut self, w: &TimeWindow, key: &K) -> Option<&mut Slot<ACC>> {
        self.windows.get_mut(&order(w))?.1.get_mut(key)
    }

    /// Buffers `slot` for (`w`, `key`), which has none, and returns it.
    pub(crate) fn insert(&mut self, w: TimeWindow, key: K, slot: Slot<ACC>) -> &mut Slot<ACC> {
        self.len += 1;
        let (_, slots) = self
            .windows
            .entry(order(&w))
            .or_insert_with(|| (w, FxHashMap::default()));
        slots.entry(key).or_insert(slot)
    }

    /// Takes the slot of (`w`, `key`) out of the buffer.
    pub(crate) fn take(&mut self, w: &TimeWindow, key: &K) -> Option<Slot<ACC>> {
        let (_, slots) = self.windows.get_mut(&order(w))?;
        let slot = slots.remove(key)?;
        self.len -= 1;
        if slots.is_empty() {
            self.windows.remove(&order(w));
        }
        Some(slot)
    }

    /// The firing time of the earliest window, if it fires at `watermark`.
    pub(crate) fn next_due(&self, watermark: Timestamp) -> Option<Timestamp> {
        let (_, (w, _)) = self.windows.first_key_value()?;
        Some(w.max_timestamp()).filter(|t| *t <= watermark)
    }

    /// Removes and returns the earliest window, with its slots, if it fires at `watermark`.
    pub(crate) fn pop_due(&mut self, watermark: Timestamp) -> Option<(TimeWindow, Slots<K, ACC>)> {
        let entry = self.windows.first_entry()?;
        if entry.get().0.max_timestamp() > watermark {
            return None;
        }
        let (w, slots) = entry.remove();
        self.len -= slots.len();
        Some((w, slots))
    }

    /// Forgets spilled windows that fired at `watermark` or before.
    pub(crate) fn fired_through(&mut self, watermark: Timestamp) {
        while let Some(first) = self.spilled.first() {
            if first.0.saturating_sub(1) > watermark {
                break;
            }
            self.spilled.pop_first();
        }
        if self.restored_through <= watermark {
            self.restored_through = MIN_WATERMARK;
        }
    }

    /// Calls `f` with every window and its slots, and records every window as spilled.
    pub(crate) fn spill_each<E>(
        &mut self,
        mut f: impl FnMut(&TimeWindow, &mut Slots<K, ACC>) -> Result<(), E>,
    ) -> Result<(), E> {
        for (o, (w, slots)) in &mut self.windows {
            self.spilled.insert(*o);
            f(w, slots)?;
        }
        Ok(())
    }

    /// Removes the window that ends first, with its slots, and records it as spilled (its
    /// changed slots must go to the backend).
    pub(crate) fn evict_first(&mut self) -> Option<(TimeWindow, Slots<K, ACC>)> {
        let (o, (w, slots)) = self.windows.pop_first()?;
        self.spilled.insert(o);
        self.len -= slots.len();
        Some((w, slots))
    }

    /// The slots the buffer holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(start: i64) -> TimeWindow {
        TimeWindow {
            start,
            end: start + 10,
        }
    }

    fn slot(acc: u32) -> Slot<u32> {
        Slot {
            acc,
            dirty: true,
            stored: false,
        }
    }

    #[test]
    fn windows_drain_in_the_order_of_their_ends_once_due() {
        let mut b = PaneBuffer::new(10, MIN_WATERMARK);
        b.insert(w(20), 1u8, slot(1));
        b.insert(w(0), 1u8, slot(2));
        b.insert(w(0), 2u8, slot(3));
        assert_eq!(b.len(), 3);
        assert!(b.pop_due(8).is_none(), "the first window fires at 9");
        assert_eq!((b.next_due(8), b.next_due(9)), (None, Some(9)));
        let (first, slots) = b.pop_due(9).unwrap();
        assert_eq!((first, slots.len()), (w(0), 2));
        assert!(b.pop_due(9).is_none());
        assert_eq!(b.len(), 1);
        assert_eq!(b.pop_due(i64::MAX).unwrap().0, w(20));
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn a_window_may_be_stored_once_spilled_or_restored_until_it_fires() {
        let mut b = PaneBuffer::new(2, 29);
        assert!(b.may_be_stored(&w(20)), "restored through 29");
        assert!(!b.may_be_stored(&w(30)));
        b.insert(w(30), 1u8, slot(1));
        b.insert(w(30), 2u8, slot(1));
        assert!(b.is_full());
        b.spill_each(|_, _| Ok::<_, ()>(())).unwrap();
        assert!(b.may_be_stored(&w(30)));
        assert_eq!(b.len(), 2);
        b.fired_through(39);
        assert!(!b.may_be_stored(&w(30)), "fired windows are forgotten");
        assert!(!b.may_be_stored(&w(20)));
    }

    #[test]
    fn eviction_takes_the_window_that_ends_first_and_marks_it_spilled() {
        let mut b = PaneBuffer::new(3, MIN_WATERMARK);
        b.insert(w(20), 1u8, slot(1));
        b.insert(w(0), 1u8, slot(2));
        b.insert(w(0), 2u8, slot(3));
        assert!(!b.may_be_stored(&w(0)));
        let (first, slots) = b.evict_first().unwrap();
        assert_eq!((first, slots.len(), b.len()), (w(0), 2, 1));
        assert!(b.may_be_stored(&w(0)) && !b.may_be_stored(&w(20)));
        assert_eq!(b.evict_first().unwrap().0, w(20));
        assert!(b.evict_first().is_none());
    }

    #[test]
    fn taking_the_last_slot_of_a_window_removes_the_window() {
        let mut b = PaneBuffer::new(10, MIN_WATERMARK);
        b.insert(w(0), 7u8, slot(5));
        assert_eq!(b.get_mut(&w(0), &7).map(|s| s.acc), Some(5));
        assert_eq!(b.take(&w(0), &7).map(|s| s.acc), Some(5));
        assert!(b.take(&w(0), &7).is_none());
        assert!(b.pop_due(i64::MAX).is_none());
        assert_eq!(b.len(), 0);
    }
}
