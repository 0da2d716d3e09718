//! `BroadcastState<UK, UV>`: the map a broadcast process function keeps in every subtask,
//! written by the broadcast side and read by the data side (Flink's `BroadcastState` and
//! `ReadOnlyBroadcastState`: here the data side gets a shared reference, which only reads).
//!
//! It lives on the heap, as in Flink. Each subtask's checkpoint stores its copy as one
//! versioned entry; a restore gives each subtask its own copy, or at another parallelism
//! the copy of old subtask `i mod p_old` (see `weir_runtime::checkpoint::broadcast_state`).

use crate::record::Record;
use std::collections::HashMap;
use std::hash::Hash;
use weir_runtime::TaskError;

/// The broadcast state of one broadcast process operator subtask.
pub struct BroadcastState<UK, UV> {
    map: HashMap<UK, UV>,
}

impl<UK: Hash + Eq, UV> Default for BroadcastState<UK, UV> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
        }
    }
}

impl<UK: Hash + Eq, UV> BroadcastState<UK, UV> {
    /// The value of `key`, if any.
    pub fn get(&self, key: &UK) -> Option<&UV> {
        self.map.get(key)
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: &UK) -> bool {
        self.map.contains_key(key)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&UK, &UV)> {
        self.map.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Sets the value of `key` (broadcast side only).
    pub fn put(&mut self, key: UK, value: UV) {
        self.map.insert(key, value);
    }

    /// Removes `key` and returns its value (broadcast side only).
    pub fn remove(&mut self, key: &UK) -> Option<UV> {
        self.map.remove(key)
    }

    /// Removes every entry (broadcast side only).
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

impl<UK: Record + Hash + Eq, UV: Record> BroadcastState<UK, UV> {
    /// The list-state entries of a snapshot: the whole map as one versioned entry.
    pub(crate) fn snapshot(&self, operator: &str) -> Result<Vec<Vec<u8>>, TaskError> {
        let entries: Vec<(&UK, &UV)> = self.map.iter().collect();
        let bytes = weir_state_backends::encode_versioned(&entries).map_err(|e| {
            TaskError::Checkpoint(format!(
                "cannot encode the broadcast state of '{operator}': {e}"
            ))
        })?;
        Ok(vec![bytes])
    }

    /// Appends this subtask's copy of the state of operator (`name`, `uid`) to `out`.
    pub(crate) fn snapshot_into(
        &self,
        (name, uid): (&str, &str),
        out: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        let entries = self.snapshot(name)?;
        let state_uid = weir_runtime::checkpoint::broadcast_state::broadcast_uid(uid);
        out.push(weir_runtime::checkpoint::OperatorSnapshot::operator_list(
            &state_uid, &entries,
        )?);
        Ok(())
    }

    /// The state a restarted subtask of operator (`name`, `uid`) starts from: the restored
    /// copy, or an empty state.
    pub(crate) fn open(ctx: &crate::graph::OperatorContext) -> Result<Self, TaskError> {
        match &ctx.restored {
            Some(restored) => match restored.broadcast(&ctx.uid, ctx.subtask)? {
                Some(stored) => Self::restore(&stored, &ctx.name),
                None => Ok(Self::default()),
            },
            None => Ok(Self::default()),
        }
    }

    /// The state the snapshot entries `stored` hold.
    pub(crate) fn restore(stored: &[Vec<u8>], operator: &str) -> Result<Self, TaskError> {
        let what = format!("broadcast state of '{operator}'");
        let mut map = HashMap::new();
        for bytes in stored {
            let entries: Vec<(UK, UV)> = weir_state_backends::decode_versioned(bytes, &what)
                .map_err(|e| TaskError::RestoredState(e.to_string()))?;
            map.extend(entries);
        }
        Ok(Self { map })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_restores_every_entry() {
        let mut state = BroadcastState::default();
        state.put("a".to_string(), 1u32);
        state.put("b".to_string(), 2);
        state.remove(&"b".to_string());
        state.put("c".to_string(), 3);
        let stored = state.snapshot("rules").unwrap();
        let back = BroadcastState::<String, u32>::restore(&stored, "rules").unwrap();
        let mut entries: Vec<_> = back.iter().map(|(k, v)| (k.clone(), *v)).collect();
        entries.sort();
        assert_eq!(entries, vec![("a".to_string(), 1), ("c".to_string(), 3)]);
    }

    #[test]
    fn corrupt_broadcast_state_is_refused_naming_the_operator() {
        let mut stored = BroadcastState::<String, u32>::default()
            .snapshot("rules")
            .unwrap();
        let last = stored[0].len() - 1;
        stored[0][last] ^= 0xff;
        stored[0].push(7);
        let err = BroadcastState::<String, u32>::restore(&stored, "rules")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("broadcast state of 'rules'"), "{err}");
    }
}
