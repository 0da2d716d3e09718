//! The per-key namespace map of the memory backend.
//!
//! Keys usually have one namespace (plain keyed state) or a handful (open
//! windows), so the first namespace is stored inline and the rest in a `Vec`
//! scanned linearly: plain keyed state costs no allocation beyond the hash
//! map slot.
//!
//! Invariants:
//! - An entry holds at least one namespace and each namespace at most once.
//! - Slots are `Some` except transiently inside a `modify`; a slot left
//!   `None` is removed with [`KeyEntry::remove_at`].

/// The namespaces and values of one key.
pub(crate) struct KeyEntry<N, S> {
    head: (N, Option<S>),
    tail: Vec<(N, Option<S>)>,
}

impl<N: PartialEq, S> KeyEntry<N, S> {
    /// An entry holding one namespace.
    pub(crate) fn new(namespace: N, value: S) -> Self {
        Self {
            head: (namespace, Some(value)),
            tail: Vec::new(),
        }
    }

    /// Number of namespaces.
    pub(crate) fn len(&self) -> usize {
        1 + self.tail.len()
    }

    /// Position of `namespace`, if present.
    #[inline]
    pub(crate) fn position(&self, namespace: &N) -> Option<usize> {
        if self.head.0 == *namespace {
            return Some(0);
        }
        self.tail
            .iter()
            .position(|(n, _)| n == namespace)
            .map(|i| i + 1)
    }

    /// The value of `namespace`, if present.
    #[inline]
    pub(crate) fn get(&self, namespace: &N) -> Option<&S> {
        let pos = self.position(namespace)?;
        self.slot(pos).as_ref()
    }

    fn slot(&self, pos: usize) -> &Option<S> {
        if pos == 0 {
            &self.head.1
        } else {
            &self.tail[pos - 1].1
        }
    }

    /// The slot at `pos` (from [`KeyEntry::position`]).
    #[inline]
    pub(crate) fn slot_mut(&mut self, pos: usize) -> &mut Option<S> {
        if pos == 0 {
            &mut self.head.1
        } else {
            &mut self.tail[pos - 1].1
        }
    }

    /// Adds a namespace that is not yet present.
    pub(crate) fn push(&mut self, namespace: N, value: S) {
        debug_assert!(self.position(&namespace).is_none());
        self.tail.push((namespace, Some(value)));
    }

    /// Inserts or replaces the value of `namespace`.
    pub(crate) fn upsert(&mut self, namespace: N, value: S) {
        match self.position(&namespace) {
            Some(pos) => *self.slot_mut(pos) = Some(value),
            None => self.push(namespace, value),
        }
    }

    /// Removes the namespace at `pos`; returns `true` if the entry is now
    /// empty and must be dropped by the caller.
    pub(crate) fn remove_at(&mut self, pos: usize) -> bool {
        if pos == 0 {
            match self.tail.pop() {
                Some(last) => {
                    self.head = last;
                    false
                }
                None => {
                    self.head.1 = None;
                    true
                }
            }
        } else {
            self.tail.swap_remove(pos - 1);
            false
        }
    }

    /// Every (namespace, value) pair.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&N, &S)> {
        std::iter::once(&self.head)
            .chain(self.tail.iter())
            .filter_map(|(n, s)| s.as_ref().map(|s| (n, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_the_head_promotes_a_tail_namespace() {
        let mut e = KeyEntry::new(1u8, "a");
        e.push(2, "b");
        e.push(3, "c");
        assert_eq!(e.len(), 3);
        assert!(!e.remove_at(0));
        assert_eq!(e.get(&1), None);
        assert_eq!((e.get(&2), e.get(&3)), (Some(&"b"), Some(&"c")));
        let pos = e.position(&2).unwrap();
        assert!(!e.remove_at(pos));
        let pos = e.position(&3).unwrap();
        assert!(
            e.remove_at(pos),
            "last namespace removed leaves the entry empty"
        );
    }

    #[test]
    fn upsert_replaces_existing_namespace_in_place() {
        let mut e = KeyEntry::new(1u8, 10);
        e.upsert(1, 11);
        e.upsert(2, 20);
        let mut all: Vec<_> = e.iter().map(|(n, v)| (*n, *v)).collect();
        all.sort_unstable();
        assert_eq!(all, vec![(1, 11), (2, 20)]);
    }
}
