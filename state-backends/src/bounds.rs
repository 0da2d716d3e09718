//! Trait bounds for keys, values and namespaces of keyed state.
//!
//! Invariant: all three are blanket-implemented, so any type with the listed
//! capabilities qualifies; `Serialize + DeserializeOwned` is required because
//! every entry must be snapshottable.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A key of keyed state (the partitioning key, or the user key of map state).
pub trait StateKey: Hash + Eq + Clone + Serialize + DeserializeOwned + 'static {}

impl<T> StateKey for T where T: Hash + Eq + Clone + Serialize + DeserializeOwned + 'static {}

/// A value stored in keyed state.
pub trait StateValue: Clone + Serialize + DeserializeOwned + 'static {}

impl<T> StateValue for T where T: Clone + Serialize + DeserializeOwned + 'static {}

/// A namespace that subdivides the state of one key (e.g. a window).
pub trait Namespace: Hash + Eq + Clone + Serialize + DeserializeOwned + 'static {}

impl<T> Namespace for T where T: Hash + Eq + Clone + Serialize + DeserializeOwned + 'static {}

/// The namespace of plain (non-windowed) keyed state.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct VoidNamespace;
