//! The user's stream graph and its translation into a runtime job graph.

pub(crate) mod builder;
pub(crate) mod context;
pub(crate) mod heads;
pub(crate) mod stream_graph;
pub(crate) mod type_ops;

pub use context::OperatorContext;
pub use heads::TwoInputOperator;
