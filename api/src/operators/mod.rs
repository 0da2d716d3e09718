//! Built-in operators. Every operator is the [`weir_runtime::Output`] of its upstream and
//! names what follows it with [`weir_runtime::Lifecycle::downstream`], so the lifecycle
//! calls it does not override are forwarded there.

pub(crate) mod basic;
pub(crate) mod keyed_checkpointing;
pub(crate) mod keyed_process;
pub(crate) mod process;
pub(crate) mod rolling;
