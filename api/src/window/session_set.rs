//! The session windows of one key (Flink's `MergingWindowSet`), kept in keyed value state:
//! adding a new element's window merges it with every session it overlaps or touches.
//!
//! Invariants: the sessions of a key never overlap or touch one another; adding a window
//! whose merged session is late leaves the set as it was; a key with no session has no
//! state.

use super::assigner::TimeWindow;
use weir_state_backends::{StateError, StateKey, ValueState, VoidNamespace};

/// The sessions of the current key.
pub(crate) type SessionState<K> = ValueState<K, VoidNamespace, Vec<TimeWindow>>;

/// What adding a window did to the set.
pub(crate) struct SessionMerge {
    /// The session the new window belongs to now.
    pub(crate) merged: TimeWindow,
    /// The sessions it overlapped or touched (their state goes to `merged`).
    pub(crate) absorbed: Vec<TimeWindow>,
    /// The merged session is late: the set is unchanged.
    pub(crate) late: bool,
}

impl SessionMerge {
    /// The sessions merged away into a different window: their state moves to `merged`.
    pub(crate) fn sources(&self) -> Vec<TimeWindow> {
        self.absorbed
            .iter()
            .copied()
            .filter(|s| *s != self.merged)
            .collect()
    }

    /// Whether `merged` was not in the set before (it needs its own timers).
    pub(crate) fn is_new(&self) -> bool {
        !self.absorbed.contains(&self.merged)
    }
}

/// Adds `w` to the current key's sessions, merging it with the sessions it overlaps or
/// touches, unless the merged session `is_late`. The set is updated in place: no copy of
/// it per element.
pub(crate) fn add_session<K: StateKey>(
    state: &SessionState<K>,
    w: TimeWindow,
    is_late: impl FnOnce(&TimeWindow) -> bool,
) -> Result<SessionMerge, StateError> {
    state.modify(|slot| {
        let set = slot.get_or_insert_with(Vec::new);
        let mut merged = w;
        let mut absorbed = Vec::new();
        set.retain(|s| {
            if s.intersects(&w) {
                merged = merged.cover(s);
                absorbed.push(*s);
                false
            } else {
                true
            }
        });
        let late = is_late(&merged);
        if late {
            set.extend(absorbed.iter().copied());
        } else {
            set.push(merged);
        }
        if set.is_empty() {
            *slot = None;
        }
        SessionMerge {
            merged,
            absorbed,
            late,
        }
    })
}

/// Removes the session `w` of the current key (its state was cleaned up).
pub(crate) fn retire_session<K: StateKey>(
    state: &SessionState<K>,
    w: &TimeWindow,
) -> Result<(), StateError> {
    state.modify(|slot| {
        if let Some(set) = slot {
            set.retain(|s| s != w);
            if set.is_empty() {
                *slot = None;
            }
        }
    })
}
