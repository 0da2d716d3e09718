//! The memory budget of the RocksDB instances of one slot: one block cache, and a
//! write-buffer manager that charges memtables to that cache, shared by every
//! instance of the slot (`state.backend.rocksdb.memory.managed-size`).
//!
//! Invariant: instances of the same (job, slot) share one budget for as long as any
//! of them is open; the budget is released with the last one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rocksdb::{Cache, WriteBufferManager};

/// The shared cache and write-buffer manager of one slot.
pub(crate) struct SlotMemory {
    pub(crate) cache: Cache,
    pub(crate) write_buffers: WriteBufferManager,
    /// The budget in bytes.
    pub(crate) bytes: u64,
}

type Slots = Mutex<HashMap<(u64, u16), Weak<SlotMemory>>>;

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(Slots::default)
}

impl SlotMemory {
    /// The budget of `slot` of `job`, created with `bytes` if no instance of the slot is
    /// open.
    pub(crate) fn for_slot(job: u64, slot: u16, bytes: u64) -> Arc<SlotMemory> {
        let mut slots = slots().lock().expect("slot memory registry poisoned");
        slots.retain(|_, m| m.strong_count() > 0);
        if let Some(memory) = slots.get(&(job, slot)).and_then(Weak::upgrade) {
            return memory;
        }
        // Half the budget for memtables (charged to the cache), as Flink's
        // `state.backend.rocksdb.memory.write-buffer-ratio` default.
        let bytes = bytes.max(crate::backend_config::MIN_ROCKSDB_MANAGED_MEMORY);
        let cache = Cache::new_lru_cache(bytes as usize);
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            bytes as usize / 2,
            false,
            cache.clone(),
        );
        let memory = Arc::new(SlotMemory {
            cache,
            write_buffers,
            bytes,
        });
        slots.insert((job, slot), Arc::downgrade(&memory));
        memory
    }
}
