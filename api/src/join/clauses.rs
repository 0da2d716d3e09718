//! The clauses of a window join or co-group after its two inputs: the first input's key
//! (`where`), the second input's (`equal_to`), the window, and the function (`apply`).
//!
//! One set of clause types serves both operations; a marker type parameter ([`Joining`],
//! [`CoGrouping`]) says which one `apply` builds, so each takes its own kind of function.
//!
//! Invariant: the first input is tagged `One` and keyed by the `where` key, the second
//! tagged `Two` and keyed by the `equal_to` key, so records of both sides with equal keys
//! meet in the same window operator subtask.

use super::co_group_function::{
    CoGroupFunction, CoGroupWindow, FlatJoinAsCoGroup, FlatJoinFunction, JoinFunction, OneResult,
};
use super::tagged_union::TaggedUnion;
use super::Mode;
use crate::datastream::DataStream;
use crate::operators::keyed_process::KeyFn;
use crate::record::Record;
use crate::window::WindowAssigner;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;
use weir_state_backends::{StateKey, StateValue};

/// Marks the clauses of a window join.
pub struct Joining;

/// Marks the clauses of a window co-group.
pub struct CoGrouping;

/// A join or co-group with its first input keyed, waiting for the second input's key.
pub struct Where<K, T1, T2, M> {
    first: DataStream<T1>,
    second: DataStream<T2>,
    key1: KeyFn<T1, K>,
    _mode: Mode<M>,
}

/// A join or co-group with both inputs keyed, waiting for its window.
pub struct EqualTo<K, T1, T2, M> {
    first: DataStream<T1>,
    second: DataStream<T2>,
    key1: KeyFn<T1, K>,
    key2: KeyFn<T2, K>,
    _mode: Mode<M>,
}

/// A join or co-group with its keys and window, waiting for its function.
pub struct WithWindow<K, T1, T2, M> {
    keyed: EqualTo<K, T1, T2, M>,
    assigner: WindowAssigner,
    lateness: Option<Duration>,
}

impl<K, T1, T2, M> Where<K, T1, T2, M>
where
    K: StateKey + Send + Sync,
    T1: Record + StateValue,
    T2: Record + StateValue,
{
    pub(crate) fn new(
        first: DataStream<T1>,
        second: DataStream<T2>,
        key: impl Fn(&T1) -> K + Send + Sync + 'static,
    ) -> Self {
        Self {
            first,
            second,
            key1: Arc::new(key),
            _mode: PhantomData,
        }
    }

    /// Keys the second input with `key`; records join where the two keys are equal.
    pub fn equal_to<F>(self, key: F) -> EqualTo<K, T1, T2, M>
    where
        F: Fn(&T2) -> K + Send + Sync + 'static,
    {
        EqualTo {
            first: self.first,
            second: self.second,
            key1: self.key1,
            key2: Arc::new(key),
            _mode: PhantomData,
        }
    }
}

impl<K, T1, T2, M> EqualTo<K, T1, T2, M>
where
    K: StateKey + Send + Sync,
    T1: Record + StateValue,
    T2: Record + StateValue,
{
    /// Groups both inputs' records of each key into the windows `assigner` gives them.
    pub fn window(self, assigner: WindowAssigner) -> WithWindow<K, T1, T2, M> {
        WithWindow {
            keyed: self,
            assigner,
            lateness: None,
        }
    }
}

impl<K, T1, T2, M> WithWindow<K, T1, T2, M>
where
    K: StateKey + Send + Sync,
    T1: Record + StateValue,
    T2: Record + StateValue,
{
    /// Keeps window state for `lateness` after a window fired; late records within it fire
    /// the window again with all of its records.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness = Some(lateness);
        self
    }

    /// Tags, unions, keys and windows both inputs, and runs `f` on each fired window.
    fn build<O: Record, F: CoGroupFunction<T1, T2, O>>(self, name: &str, f: F) -> DataStream<O> {
        let EqualTo {
            first,
            second,
            key1,
            key2,
            ..
        } = self.keyed;
        let first = first
            .map(TaggedUnion::<T1, T2>::One)
            .name("Tag (first input)");
        let second = second
            .map(TaggedUnion::<T1, T2>::Two)
            .name("Tag (second input)");
        let mut windowed = first
            .union(&[&second])
            .key_by(move |t: &TaggedUnion<T1, T2>| match t {
                TaggedUnion::One(a) => key1(a),
                TaggedUnion::Two(b) => key2(b),
            })
            .window(self.assigner);
        if let Some(lateness) = self.lateness {
            windowed = windowed.allowed_lateness(lateness);
        }
        windowed.process(CoGroupWindow(f)).name(name)
    }
}

impl<K, T1, T2> WithWindow<K, T1, T2, CoGrouping>
where
    K: StateKey + Send + Sync,
    T1: Record + StateValue,
    T2: Record + StateValue,
{
    /// Calls `f` with all records of both inputs in each fired window of each key.
    pub fn apply<O: Record, F: CoGroupFunction<T1, T2, O>>(self, f: F) -> DataStream<O> {
        self.build("Window(CoGroup)", f)
    }
}

impl<K, T1, T2> WithWindow<K, T1, T2, Joining>
where
    K: StateKey + Send + Sync,
    T1: Record + StateValue,
    T2: Record + StateValue,
{
    /// Emits `f(a, b)` for every pair of records, one of each input, in each fired window of
    /// each key.
    pub fn apply<O: Record, F: JoinFunction<T1, T2, O>>(self, f: F) -> DataStream<O> {
        self.build("Window(Join)", FlatJoinAsCoGroup(OneResult(f)))
    }

    /// Emits what `f` appends for every pair of records, one of each input, in each fired
    /// window of each key; an error from `f` fails the task.
    pub fn flat_apply<O: Record, F: FlatJoinFunction<T1, T2, O>>(self, f: F) -> DataStream<O> {
        self.build("Window(Join)", FlatJoinAsCoGroup(f))
    }
}
