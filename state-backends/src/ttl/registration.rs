//! Registration of TTL states on a [`KeyedStateBackend`], with their cleanups: before
//! full snapshots (if configured) and in RocksDB compactions (unless turned off).
//!
//! Invariant: a TTL state is registered under its name like any state of its kind,
//! with the stored type wrapped in [`TtlValue`], so registering the same name without
//! TTL (or with another value type) is a type mismatch naming the state.

use std::cell::RefCell;
use std::rc::Rc;

use super::value::Stamped;
use super::{StateTtlConfig, Ttl, TtlAggregatingState, TtlListState, TtlMapState};
use super::{TtlReducingState, TtlValue, TtlValueState};
use crate::bounds::{StateKey, StateValue, VoidNamespace};
use crate::error::StateError;
use crate::functions::{AggregateFunction, ReduceFunction};
use crate::keyed_backend::KeyedStateBackend;
use crate::registry::Cleanup;
use crate::state::ValueState;
use crate::state_kind::StateKind;
use crate::tables::{ListTable, MapTable, ValueTable};

type Table<T> = Rc<RefCell<T>>;

/// Removes the expired entries of a value-like state.
fn value_cleanup<K: 'static, V: 'static>(
    table: Table<dyn ValueTable<K, VoidNamespace, TtlValue<V>>>,
    ttl: Rc<Ttl>,
) -> Cleanup {
    Box::new(move || {
        let now = ttl.now();
        table
            .borrow_mut()
            .retain(&mut |v| !ttl.is_expired(v.last_access, now))
    })
}

impl<K: StateKey> KeyedStateBackend<K> {
    /// A value-like state `name` of `kind` storing `TtlValue<V>`, with its cleanups.
    fn stamped_value<V: StateValue>(
        &self,
        name: &str,
        kind: StateKind,
        config: &StateTtlConfig,
    ) -> Result<(Stamped<K, V>, Rc<Ttl>), StateError> {
        let ttl = Rc::new(Ttl::new(name, config)?);
        let inner = ValueState::new(self.value_table(name, kind)?);
        let cleanup = value_cleanup(Rc::clone(inner.table()), Rc::clone(&ttl));
        self.clean_up_expired(
            name,
            config.cleanup_full_snapshot.then_some(cleanup),
            config.cleanup_in_background.then(|| ttl.expired_row()),
        );
        Ok((inner, ttl))
    }

    /// Registers (or looks up) a value state whose values expire per `config`.
    pub fn ttl_value_state<V: StateValue>(
        &self,
        name: &str,
        config: &StateTtlConfig,
    ) -> Result<TtlValueState<K, V>, StateError> {
        let (inner, ttl) = self.stamped_value(name, StateKind::Value, config)?;
        Ok(TtlValueState::new(inner, ttl))
    }

    /// Registers (or looks up) a reducing state whose reduction expires per `config`.
    pub fn ttl_reducing_state<V: StateValue>(
        &self,
        name: &str,
        reduce: impl ReduceFunction<V>,
        config: &StateTtlConfig,
    ) -> Result<TtlReducingState<K, V>, StateError> {
        let (inner, ttl) = self.stamped_value(name, StateKind::Reducing, config)?;
        Ok(TtlReducingState::new(inner, Rc::new(reduce), ttl))
    }

    /// Registers (or looks up) an aggregating state whose accumulator expires per
    /// `config`.
    pub fn ttl_aggregating_state<IN: 'static, ACC: StateValue, OUT: 'static>(
        &self,
        name: &str,
        function: impl AggregateFunction<IN, ACC, OUT>,
        config: &StateTtlConfig,
    ) -> Result<TtlAggregatingState<K, IN, ACC, OUT>, StateError> {
        let (inner, ttl) = self.stamped_value(name, StateKind::Aggregating, config)?;
        Ok(TtlAggregatingState::new(inner, Rc::new(function), ttl))
    }

    /// Registers (or looks up) a list state whose elements expire per `config`.
    pub fn ttl_list_state<V: StateValue>(
        &self,
        name: &str,
        config: &StateTtlConfig,
    ) -> Result<TtlListState<K, V>, StateError> {
        let ttl = Rc::new(Ttl::new(name, config)?);
        let inner = self.list_state::<VoidNamespace, TtlValue<V>>(name)?;
        let table: Table<dyn ListTable<K, VoidNamespace, TtlValue<V>>> = Rc::clone(inner.table());
        let cleanup_ttl = Rc::clone(&ttl);
        let cleanup: Cleanup = Box::new(move || {
            let now = cleanup_ttl.now();
            table
                .borrow_mut()
                .retain_elements(&mut |v| !cleanup_ttl.is_expired(v.last_access, now))
        });
        self.clean_up_expired(
            name,
            config.cleanup_full_snapshot.then_some(cleanup),
            config
                .cleanup_in_background
                .then(|| ttl.expired_list::<V>()),
        );
        Ok(TtlListState::new(inner, ttl))
    }

    /// Registers (or looks up) a map state whose user entries expire per `config`.
    pub fn ttl_map_state<UK: StateKey, UV: StateValue>(
        &self,
        name: &str,
        config: &StateTtlConfig,
    ) -> Result<TtlMapState<K, UK, UV>, StateError> {
        let ttl = Rc::new(Ttl::new(name, config)?);
        let inner = self.map_state::<VoidNamespace, UK, TtlValue<UV>>(name)?;
        let table: Table<dyn MapTable<K, VoidNamespace, UK, TtlValue<UV>>> =
            Rc::clone(inner.table());
        let cleanup_ttl = Rc::clone(&ttl);
        let cleanup: Cleanup = Box::new(move || {
            let now = cleanup_ttl.now();
            table
                .borrow_mut()
                .retain_entries(&mut |_, v| !cleanup_ttl.is_expired(v.last_access, now))
        });
        self.clean_up_expired(
            name,
            config.cleanup_full_snapshot.then_some(cleanup),
            config.cleanup_in_background.then(|| ttl.expired_row()),
        );
        Ok(TtlMapState::new(inner, ttl))
    }
}
