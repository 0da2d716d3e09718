//! The kinds of keyed state a backend can hold.
//!
//! Invariant: a state name is bound to exactly one kind for the lifetime of a
//! backend and of its snapshots; the kind travels with every snapshot so a
//! restore can reject a state re-registered under a different kind.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Kind of a registered keyed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateKind {
    /// A single value per key and namespace.
    Value,
    /// A list of values per key and namespace.
    List,
    /// A map per key and namespace.
    Map,
    /// A value folded with a reduce function.
    Reducing,
    /// An accumulator driven by an aggregate function.
    Aggregating,
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateKind::Value => "value",
            StateKind::List => "list",
            StateKind::Map => "map",
            StateKind::Reducing => "reducing",
            StateKind::Aggregating => "aggregating",
        })
    }
}
