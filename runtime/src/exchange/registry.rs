//! The TaskManager-wide directory of input gates that producers deliver to.
//!
//! A producer may look a gate up before its consumer registered it (tasks start in any
//! order), so lookups wait, bounded by a timeout, instead of failing at once.

use super::buffer::BufferPool;
use super::gate::GateSender;
use crate::error::ExchangeError;
use crate::types::GateAddress;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often a waiting lookup looks at its cancellation flag.
pub const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// What producers need to feed one input gate.
#[derive(Clone, Debug)]
pub struct GateEntry {
    /// The queue of the task that owns the gate.
    pub sender: GateSender,
    /// The gate's number of channels.
    pub channels: u32,
    /// The gate's buffers, which remote channels are read into.
    pub pool: BufferPool,
}

/// Maps gate addresses to the queues of the tasks that own them.
#[derive(Default)]
pub struct GateRegistry {
    gates: Mutex<HashMap<GateAddress, GateEntry>>,
    changed: Condvar,
}

impl GateRegistry {
    /// Creates an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a gate.
    pub fn register(&self, gate: GateAddress, entry: GateEntry) {
        self.gates
            .lock()
            .expect("gate registry poisoned")
            .insert(gate, entry);
        self.changed.notify_all();
    }

    /// Removes a gate (its task ended).
    pub fn unregister(&self, gate: &GateAddress) {
        self.gates
            .lock()
            .expect("gate registry poisoned")
            .remove(gate);
    }

    /// Returns the gate if it is registered now.
    pub fn get(&self, gate: &GateAddress) -> Option<GateEntry> {
        self.gates
            .lock()
            .expect("gate registry poisoned")
            .get(gate)
            .cloned()
    }

    /// Returns the entry of `gate`, waiting up to `timeout` for it to be registered; a set
    /// `cancel` flag ends the wait within [`CANCEL_CHECK`] with [`ExchangeError::Cancelled`].
    pub fn lookup(
        &self,
        gate: &GateAddress,
        timeout: Duration,
        cancel: Option<&AtomicBool>,
    ) -> Result<GateEntry, ExchangeError> {
        let deadline = Instant::now() + timeout;
        let mut gates = self.gates.lock().expect("gate registry poisoned");
        loop {
            if let Some(e) = gates.get(gate) {
                return Ok(e.clone());
            }
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(ExchangeError::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ExchangeError::GateNotFound {
                    target: format!("{gate:?}"),
                    waited_ms: timeout.as_millis() as u64,
                });
            }
            gates = self
                .changed
                .wait_timeout(gates, (deadline - now).min(CANCEL_CHECK))
                .expect("gate registry poisoned")
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn addr() -> GateAddress {
        crate::exchange::test_gate_address()
    }

    #[test]
    fn lookup_waits_for_a_late_registration() {
        let reg = Arc::new(GateRegistry::new());
        let r2 = reg.clone();
        let input = crate::exchange::InputGate::new();
        let t =
            std::thread::spawn(move || r2.lookup(&addr(), Duration::from_secs(10), None).is_ok());
        let net = crate::exchange::NetworkBufferPool::new(1);
        let pool = BufferPool::new(&net, 1, 64, "test").unwrap();
        reg.register(
            addr(),
            GateEntry {
                sender: input.sender(),
                channels: 1,
                pool,
            },
        );
        assert!(t.join().unwrap());
    }

    #[test]
    fn lookup_of_a_missing_gate_times_out_with_its_address() {
        let reg = GateRegistry::new();
        let err = reg
            .lookup(&addr(), Duration::from_millis(10), None)
            .unwrap_err();
        assert!(err.to_string().contains("vertex: 2"), "{err}");
    }

    #[test]
    fn a_cancelled_lookup_stops_waiting() {
        let reg = GateRegistry::new();
        let cancel = AtomicBool::new(true);
        let started = Instant::now();
        let err = reg
            .lookup(&addr(), Duration::from_secs(30), Some(&cancel))
            .unwrap_err();
        assert!(matches!(err, ExchangeError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
