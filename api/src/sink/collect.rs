//! A sink that gathers every record in memory, for tests in the local mini-cluster.
//!
//! Each subtask buffers its records and appends them to the shared vector once, when its
//! input ends, so the hot path takes no lock.

use super::{SinkContext, SinkFunction, SinkWriter};
use std::sync::{Arc, Mutex};
use weir_runtime::{TaskError, Timestamp};

/// Collects records into a shared vector; read them with [`CollectSink::take`] after `execute`.
pub struct CollectSink<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for CollectSink<T> {
    fn clone(&self) -> Self {
        Self {
            items: self.items.clone(),
        }
    }
}

impl<T> Default for CollectSink<T> {
    fn default() -> Self {
        Self {
            items: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T> CollectSink<T> {
    /// Creates an empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes and returns everything collected so far.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock().expect("collect sink poisoned"))
    }
}

impl<T: Send + 'static> SinkFunction<T> for CollectSink<T> {
    fn create_writer(&self, _ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError> {
        Ok(Box::new(CollectWriter {
            items: self.items.clone(),
            local: Vec::new(),
        }))
    }
}

struct CollectWriter<T> {
    items: Arc<Mutex<Vec<T>>>,
    local: Vec<T>,
}

impl<T> SinkWriter<T> for CollectWriter<T> {
    fn write(&mut self, value: T, _ts: Timestamp) -> Result<(), TaskError> {
        self.local.push(value);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        if !self.local.is_empty() {
            self.items
                .lock()
                .map_err(|_| TaskError::Io("collect sink poisoned".into()))?
                .append(&mut self.local);
        }
        Ok(())
    }
}
