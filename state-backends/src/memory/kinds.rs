//! The state-kind interfaces implemented by the memory table.
//!
//! Invariant: values are stored as plain Rust values — value state as `V`,
//! list state as `Vec<V>`, map state as an `FxHashMap<UK, UV>` — and every
//! write that empties a list or map removes the entry.

use rustc_hash::FxHashMap;

use super::table::MemoryTable;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::key_context::CurrentKey;
use crate::tables::{ListTable, MapTable, StateResult, ValueTable};

/// Map state's per-(key, namespace) value.
pub(crate) type UserMap<UK, UV> = FxHashMap<UK, UV>;

impl<K: StateKey, N: Namespace, V: StateValue> ValueTable<K, N, V> for MemoryTable<K, N, V> {
    #[inline]
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(Option<&V>)) -> StateResult<()> {
        f(self.get(cur, ns));
        Ok(())
    }

    #[inline]
    fn modify(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: &mut dyn FnMut(&mut Option<V>),
    ) -> StateResult<()> {
        MemoryTable::modify(self, cur, ns, f);
        Ok(())
    }

    #[inline]
    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> StateResult<()> {
        MemoryTable::modify(self, cur, ns, |slot| *slot = Some(value));
        Ok(())
    }

    #[inline]
    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<Option<V>> {
        Ok(MemoryTable::take(self, cur, ns))
    }

    #[inline]
    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()> {
        MemoryTable::take(self, cur, ns);
        Ok(())
    }

    fn retain(&mut self, keep: &mut dyn FnMut(&V) -> bool) -> StateResult<usize> {
        let mut removed = 0;
        self.retain_all(|v| {
            let kept = keep(v);
            removed += usize::from(!kept);
            kept
        });
        Ok(removed)
    }

    fn keys(&self, ns: &N) -> StateResult<Vec<K>> {
        Ok(self.keys_in(ns))
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> ListTable<K, N, V> for MemoryTable<K, N, Vec<V>> {
    #[inline]
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&[V])) -> StateResult<()> {
        f(self.get(cur, ns).map_or(&[], Vec::as_slice));
        Ok(())
    }

    #[inline]
    fn add(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> StateResult<()> {
        self.modify(cur, ns, |slot| {
            slot.get_or_insert_with(Vec::new).push(value)
        });
        Ok(())
    }

    fn add_all(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        values: &mut dyn Iterator<Item = V>,
    ) -> StateResult<()> {
        let Some(first) = values.next() else {
            return Ok(());
        };
        self.modify(cur, ns, |slot| {
            let list = slot.get_or_insert_with(Vec::new);
            list.push(first);
            list.extend(values);
        });
        Ok(())
    }

    fn update(&mut self, cur: &CurrentKey<K>, ns: &N, values: Vec<V>) -> StateResult<()> {
        self.modify(cur, ns, |slot| {
            *slot = if values.is_empty() {
                None
            } else {
                Some(values)
            };
        });
        Ok(())
    }

    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<Vec<V>> {
        Ok(MemoryTable::take(self, cur, ns).unwrap_or_default())
    }

    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()> {
        MemoryTable::take(self, cur, ns);
        Ok(())
    }

    fn retain_elements(&mut self, keep: &mut dyn FnMut(&V) -> bool) -> StateResult<usize> {
        let mut removed = 0;
        self.retain_all(|list| {
            let before = list.len();
            list.retain(|v| keep(v));
            removed += before - list.len();
            !list.is_empty()
        });
        Ok(removed)
    }

    fn keys(&self, ns: &N) -> StateResult<Vec<K>> {
        Ok(self.keys_in(ns))
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
    fn get(&self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> StateResult<Option<UV>> {
        Ok(MemoryTable::get(self, cur, ns).and_then(|map| map.get(key).cloned()))
    }

    #[inline]
    fn contains(&self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> StateResult<bool> {
        Ok(MemoryTable::get(self, cur, ns).is_some_and(|map| map.contains_key(key)))
    }

    #[inline]
    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, key: UK, value: UV) -> StateResult<()> {
        self.modify(cur, ns, |slot| {
            slot.get_or_insert_with(UserMap::default).insert(key, value);
        });
        Ok(())
    }

    fn remove(&mut self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> StateResult<()> {
        self.modify(cur, ns, |slot| {
            if let Some(map) = slot {
                map.remove(key);
                if map.is_empty() {
                    *slot = None;
                }
            }
        });
        Ok(())
    }

    fn for_each(
        &self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: &mut dyn FnMut(&UK, &UV),
    ) -> StateResult<()> {
        if let Some(map) = MemoryTable::get(self, cur, ns) {
            map.iter().for_each(|(k, v)| f(k, v));
        }
        Ok(())
    }

    fn len(&self, cur: &CurrentKey<K>, ns: &N) -> StateResult<usize> {
        Ok(MemoryTable::get(self, cur, ns).map_or(0, UserMap::len))
    }

    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()> {
        MemoryTable::take(self, cur, ns);
        Ok(())
    }

    fn retain_entries(&mut self, keep: &mut dyn FnMut(&UK, &UV) -> bool) -> StateResult<usize> {
        let mut removed = 0;
        self.retain_all(|map| {
            let before = map.len();
            map.retain(|k, v| keep(k, v));
            removed += before - map.len();
            !map.is_empty()
        });
        Ok(removed)
    }

    fn keys(&self, ns: &N) -> StateResult<Vec<K>> {
        Ok(self.keys_in(ns))
    }
}
