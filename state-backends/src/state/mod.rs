//! Typed state handles and the core they share.
//!
//! A handle is a cheap clone of: the state name, the backend's key context
//! and the state's table (behind the storage-independent traits of
//! [`crate::tables`]), plus the handle's own current namespace.
//!
//! Invariants:
//! - Every access reads or writes only the entry of (current key, namespace).
//! - Handles of `VoidNamespace` state start with `VoidNamespace` as their
//!   namespace; other handles have none until `set_namespace`, and the `*_in`
//!   methods take the namespace explicitly, avoiding any clone.
//! - Callbacks passed to handles run while the state's table is borrowed and
//!   must not access the same state or change the current key.

mod aggregating;
mod keyed_state;
mod list;
mod map;
mod reducing;
mod value;

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

pub use aggregating::AggregatingState;
pub use keyed_state::KeyedState;
pub use list::ListState;
pub use map::MapState;
pub use reducing::ReducingState;
pub use value::ValueState;

use crate::bounds::VoidNamespace;
use crate::error::StateError;
use crate::key_context::{CurrentKey, KeyContext};
use crate::tables::ValueTable;

/// The core of value, reducing and aggregating state handles.
pub(crate) type ValueCore<K, N, V> = StateCore<K, N, dyn ValueTable<K, N, V>>;

/// What every handle holds; `T` is the table trait object.
pub(crate) struct StateCore<K, N, T: ?Sized> {
    name: Rc<str>,
    ctx: Rc<KeyContext<K>>,
    table: Rc<RefCell<T>>,
    namespace: Option<N>,
}

impl<K, N: Clone, T: ?Sized> Clone for StateCore<K, N, T> {
    fn clone(&self) -> Self {
        Self {
            name: Rc::clone(&self.name),
            ctx: Rc::clone(&self.ctx),
            table: Rc::clone(&self.table),
            namespace: self.namespace.clone(),
        }
    }
}

impl<K: std::hash::Hash, N: Clone + 'static, T: ?Sized> StateCore<K, N, T> {
    pub(crate) fn new(name: Rc<str>, ctx: Rc<KeyContext<K>>, table: Rc<RefCell<T>>) -> Self {
        let namespace = (&VoidNamespace as &dyn Any).downcast_ref::<N>().cloned();
        Self {
            name,
            ctx,
            table,
            namespace,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The state's table.
    pub(crate) fn table(&self) -> &Rc<RefCell<T>> {
        &self.table
    }

    pub(crate) fn set_namespace(&mut self, namespace: N) {
        self.namespace = Some(namespace);
    }

    pub(crate) fn namespace(&self) -> Option<&N> {
        self.namespace.as_ref()
    }

    /// The handle's current namespace, or an error naming the state.
    #[inline]
    pub(crate) fn current_namespace(&self) -> Result<&N, StateError> {
        self.namespace
            .as_ref()
            .ok_or_else(|| StateError::NoNamespace {
                state: self.name.to_string(),
            })
    }

    /// Runs `f` on the table and the current key.
    #[inline]
    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&T, &CurrentKey<K>) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        self.ctx.with(|cur| match cur {
            Some(cur) => f(&self.table.borrow(), cur),
            None => Err(self.no_key()),
        })
    }

    /// Runs `f` on the mutably borrowed table and the current key.
    #[inline]
    pub(crate) fn write<R>(
        &self,
        f: impl FnOnce(&mut T, &CurrentKey<K>) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        self.ctx.with(|cur| match cur {
            Some(cur) => f(&mut self.table.borrow_mut(), cur),
            None => Err(self.no_key()),
        })
    }

    #[cold]
    fn no_key(&self) -> StateError {
        StateError::NoCurrentKey {
            state: self.name.to_string(),
        }
    }
}
