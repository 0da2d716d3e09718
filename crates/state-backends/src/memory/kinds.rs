//! The state-kind interfaces implemented by the memory table.
//!
//! Invariant: values are stored as plain Rust values — value state as `V`,
//! list state as `Vec<V>`, map state as an `FxHashMap<UK, UV>` — and every
//! write that empties a list or map removes the entry.

use rustc_hash::FxHashMap;

use super::table::MemoryTable;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::key_context::CurrentKey;
use crate::tables::{ListTable, MapTable, ValueTable};

/// Map state's per-(key, namespace) value.
pub(crate) type UserMap<UK, UV> = FxHashMap<UK, UV>;

impl<K: StateKey, N: Namespace, V: StateValue> ValueTable<K, N, V> for MemoryTable<K, N, V> {
    #[inline]
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(Option<&V>)) {
        f(self.get(cur, ns));
    }

    #[inline]
    fn modify(&mut self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&mut Option<V>)) {
        MemoryTable::modify(self, cur, ns, f);
    }

    #[inline]
    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) {
        MemoryTable::modify(self, cur, ns, |slot| *slot = Some(value));
    }

    #[inline]
    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> Option<V> {
        MemoryTable::take(self, cur, ns)
    }

    #[inline]
    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) {
        MemoryTable::take(self, cur, ns);
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> ListTable<K, N, V> for MemoryTable<K, N, Vec<V>> {
    #[inline]
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&[V])) {
        f(self.get(cur, ns).map_or(&[], Vec::as_slice));
    }

    #[inline]
    fn add(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> bool {
        self.modify(cur, ns, |slot| {
            let started = slot.is_none();
            slot.get_or_insert_with(Vec::new).push(value);
            started
        })
    }

    fn add_all(&mut self, cur: &CurrentKey<K>, ns: &N, values: &mut dyn Iterator<Item = V>) {
        let Some(first) = values.next() else {
            return;
        };
        self.modify(cur, ns, |slot| {
            let list = slot.get_or_insert_with(Vec::new);
            list.push(first);
            list.extend(values);
        });
    }

    fn update(&mut self, cur: &CurrentKey<K>, ns: &N, values: Vec<V>) {
        self.modify(cur, ns, |slot| {
            *slot = if values.is_empty() {
                None
            } else {
                Some(values)
            };
        });
    }

    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> Vec<V> {
        MemoryTable::take(self, cur, ns).unwrap_or_default()
    }

    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) {
        MemoryTable::take(self, cur, ns);
    }
}

impl<K, N, UK, UV> MapTable<K, N, UK, UV> for MemoryTable<K, N, UserMap<UK, UV>>
where
    K: StateKey,
    N: Namespace,
    UK: StateKey,
    UV: StateValue,
{
    #[inline]
    fn get(&self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> Option<UV> {
        MemoryTable::get(self, cur, ns)?.get(key).cloned()
    }

    #[inline]
    fn contains(&self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> bool {
        MemoryTable::get(self, cur, ns).is_some_and(|map| map.contains_key(key))
    }

    #[inline]
    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, key: UK, value: UV) {
        self.modify(cur, ns, |slot| {
            slot.get_or_insert_with(UserMap::default).insert(key, value);
        });
    }

    fn remove(&mut self, cur: &CurrentKey<K>, ns: &N, key: &UK) {
        self.modify(cur, ns, |slot| {
            if let Some(map) = slot {
                map.remove(key);
                if map.is_empty() {
                    *slot = None;
                }
            }
        });
    }

    fn for_each(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&UK, &UV)) {
        if let Some(map) = MemoryTable::get(self, cur, ns) {
            map.iter().for_each(|(k, v)| f(k, v));
        }
    }

    fn len(&self, cur: &CurrentKey<K>, ns: &N) -> usize {
        MemoryTable::get(self, cur, ns).map_or(0, UserMap::len)
    }

    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) {
        MemoryTable::take(self, cur, ns);
    }
}
