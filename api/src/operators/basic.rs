//! Stateless record-at-a-time operators: map, filter, flat_map, and the identity used by
//! `union`.

use std::sync::Arc;
use weir_runtime::task::enter_operator;
use weir_runtime::{Lifecycle, Output, TaskError, Timestamp};

/// Applies `f` to every record.
pub struct Map<F, O> {
    pub(crate) f: Arc<F>,
    pub(crate) out: Box<dyn Output<O>>,
    pub(crate) index: usize,
}

impl<I, O, F: Fn(I) -> O> Output<I> for Map<F, O> {
    #[inline]
    fn emit(&mut self, value: I, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let v = (self.f)(value);
        self.out.emit(v, ts)
    }
}
impl<F, O> Lifecycle for Map<F, O> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.out)
    }
}

/// Keeps the records for which `f` holds.
pub struct Filter<F, T> {
    pub(crate) f: Arc<F>,
    pub(crate) out: Box<dyn Output<T>>,
    pub(crate) index: usize,
}

impl<T, F: Fn(&T) -> bool> Output<T> for Filter<F, T> {
    #[inline]
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        if (self.f)(&value) {
            self.out.emit(value, ts)
        } else {
            Ok(())
        }
    }
}
impl<F, T> Lifecycle for Filter<F, T> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.out)
    }
}

/// Emits every item of the iterator `f` returns.
pub struct FlatMap<F, O> {
    pub(crate) f: Arc<F>,
    pub(crate) out: Box<dyn Output<O>>,
    pub(crate) index: usize,
}

impl<I, O, It: IntoIterator<Item = O>, F: Fn(I) -> It> Output<I> for FlatMap<F, O> {
    #[inline]
    fn emit(&mut self, value: I, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        for v in (self.f)(value) {
            self.out.emit(v, ts)?;
        }
        Ok(())
    }
}
impl<F, O> Lifecycle for FlatMap<F, O> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.out)
    }
}

/// Passes records through (the operator of `union`).
pub struct Identity<T> {
    pub(crate) out: Box<dyn Output<T>>,
}

impl<T> Output<T> for Identity<T> {
    #[inline]
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        self.out.emit(value, ts)
    }
}
impl<T> Lifecycle for Identity<T> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.out)
    }
}
