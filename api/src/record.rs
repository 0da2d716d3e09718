//! The bounds every stream record type meets.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value that can flow through a stream: serializable, sendable, owned.
///
/// Implemented for every `T: Serialize + DeserializeOwned + Send + 'static`.
pub trait Record: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Record for T {}
