//! Window joins and co-groups of two streams, as Flink's `JoinedStreams` and
//! `CoGroupedStreams`:
//!
//! ```text
//! a.join(&b).r#where(ka).equal_to(kb).window(assigner).apply(f)
//! a.co_group(&b).r#where(ka).equal_to(kb).window(assigner).apply(f)
//! ```
//!
//! (`where` is a Rust keyword, so the method is spelt `r#where`.)
//!
//! Both run as Flink runs them: each input's records are tagged ([`TaggedUnion`]), the two
//! tagged streams are unioned and keyed by the key of their side, and one keyed window
//! operator keeps every record of a window in list state until the window fires, then hands
//! the two sides to the function. So a join or co-group has the windows' semantics
//! (tumbling, sliding, session; event or processing time; allowed lateness), is
//! checkpointed and restored as any window, also at another parallelism, and works on both
//! state backends.
//!
//! Invariants: a record of the first input reaches the function on the first side and one
//! of the second input on the second; a window fires for a key once it holds a record of
//! either side; a join emits nothing for a window where one side is empty.

mod clauses;
mod co_group_function;
mod interval_join;
mod interval_join_operator;
mod tagged_union;

pub use clauses::{CoGrouping, EqualTo, Joining, Where, WithWindow};
pub use co_group_function::{CoGroupFunction, FlatJoinFunction, JoinFunction};
pub use interval_join::{IntervalJoin, IntervalJoinContext, IntervalJoined, ProcessJoinFunction};
pub use tagged_union::TaggedUnion;

use crate::datastream::DataStream;
use crate::record::Record;
use std::marker::PhantomData;
use weir_state_backends::{StateKey, StateValue};

/// Two streams to co-group, waiting for their keys and window.
pub struct CoGroupedStreams<T1, T2> {
    first: DataStream<T1>,
    second: DataStream<T2>,
}

/// Two streams to join, waiting for their keys and window.
pub struct JoinedStreams<T1, T2> {
    first: DataStream<T1>,
    second: DataStream<T2>,
}

impl<T1: Record + StateValue> DataStream<T1> {
    /// Starts a window co-group of this stream (the first input) with `other`.
    pub fn co_group<T2: Record + StateValue>(
        &self,
        other: &DataStream<T2>,
    ) -> CoGroupedStreams<T1, T2> {
        CoGroupedStreams {
            first: self.clone(),
            second: other.clone(),
        }
    }

    /// Starts a window join (an inner join) of this stream (the first input) with `other`.
    pub fn join<T2: Record + StateValue>(&self, other: &DataStream<T2>) -> JoinedStreams<T1, T2> {
        JoinedStreams {
            first: self.clone(),
            second: other.clone(),
        }
    }
}

impl<T1: Record + StateValue, T2: Record + StateValue> CoGroupedStreams<T1, T2> {
    /// Keys the first input with `key`.
    pub fn r#where<K, F>(self, key: F) -> Where<K, T1, T2, CoGrouping>
    where
        K: StateKey + Send + Sync,
        F: Fn(&T1) -> K + Send + Sync + 'static,
    {
        Where::new(self.first, self.second, key)
    }
}

impl<T1: Record + StateValue, T2: Record + StateValue> JoinedStreams<T1, T2> {
    /// Keys the first input with `key`.
    pub fn r#where<K, F>(self, key: F) -> Where<K, T1, T2, Joining>
    where
        K: StateKey + Send + Sync,
        F: Fn(&T1) -> K + Send + Sync + 'static,
    {
        Where::new(self.first, self.second, key)
    }
}

/// Keeps the marker of what the clauses build in their types.
pub(crate) type Mode<M> = PhantomData<fn() -> M>;
