//! The keyed state backend of one keyed operator subtask.
//!
//! The backend owns the current key (shared with every state handle), the
//! registry of named states, and snapshot/restore. It is a cheap-to-clone
//! handle over `Rc<RefCell<..>>` and is used from the subtask's thread only.
//!
//! Invariants:
//! - The current key always lies in the backend's key-group range;
//!   `set_current_key` rejects other keys and keeps the previous one.
//! - Registering a name twice returns handles to the same state; a different
//!   kind or type for an existing name is a [`StateError::StateTypeMismatch`].
//! - `restore` keeps exactly the key groups of this backend's range, so state
//!   can be rescaled between any parallelisms with the same max parallelism.
//! - Handles never depend on the storage kind: tables are created here, by
//!   [`StateBackendKind`], behind the traits of [`crate::tables`].

use std::any::type_name;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::backend_config::{BackendOwner, StateBackendConfig};
use crate::backend_kind::StateBackendKind;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::error::StateError;
use crate::functions::{AggregateFunction, ReduceFunction};
use crate::key_context::KeyContext;
use crate::key_group::{KeyGroup, KeyGroupRange};
use crate::memory::{MemoryTable, UserMap};
use crate::native::{BackendSnapshot, NativeRestore};
use crate::registry::{Cleanup, NewTable, Registry};
#[cfg(feature = "rocksdb")]
use crate::rocksdb::{Listed, Mapped, RocksTable, Single};
use crate::snapshot::{check_restore_layout, KeyedStateSnapshot};
use crate::state::{
    AggregatingState, ListState, MapState, ReducingState, StateCore, ValueCore, ValueState,
};
use crate::state_kind::StateKind;
use crate::tables::{ListTable, MapTable, SnapshotTable, TableMeta, ValueTable};
use crate::timers::TimerService;
use crate::ttl::ExpiredFn;

/// Keyed state of one operator subtask: current key, named states,
/// snapshots. Cloning yields another handle to the same backend.
pub struct KeyedStateBackend<K> {
    storage: Storage,
    /// Whether checkpoints are native snapshots (`state.backend.incremental`, RocksDB).
    incremental: bool,
    ctx: Rc<KeyContext<K>>,
    registry: Rc<RefCell<Registry>>,
}

impl<K> Clone for KeyedStateBackend<K> {
    fn clone(&self) -> Self {
        Self {
            storage: self.storage.clone(),
            incremental: self.incremental,
            ctx: Rc::clone(&self.ctx),
            registry: Rc::clone(&self.registry),
        }
    }
}

impl<K: StateKey> fmt::Debug for KeyedStateBackend<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedStateBackend")
            .field("kind", &self.kind())
            .field("key_group_range", &self.ctx.range())
            .field("max_parallelism", &self.ctx.max_parallelism())
            .field("states", &self.registry.borrow().names())
            .finish()
    }
}

/// Where the tables of a backend keep their entries.
#[derive(Clone)]
enum Storage {
    /// On the heap ([`MemoryTable`]).
    Memory,
    /// In the subtask's RocksDB.
    #[cfg(feature = "rocksdb")]
    RocksDb(Rc<crate::rocksdb::RocksDbInstance>),
}

/// Splits a new table into its typed and snapshot views.
fn split<T: SnapshotTable + 'static>(table: T) -> (Rc<RefCell<T>>, Rc<RefCell<dyn SnapshotTable>>) {
    let table = Rc::new(RefCell::new(table));
    (Rc::clone(&table), table)
}

impl<K: StateKey> KeyedStateBackend<K> {
    /// A backend of `kind` with default settings (see [`Self::open`]) owning
    /// `key_group_range` out of `max_parallelism` key groups.
    ///
    /// # Panics
    /// Panics if `max_parallelism` is zero or the range ends beyond it.
    pub fn new(
        kind: StateBackendKind,
        key_group_range: KeyGroupRange,
        max_parallelism: u16,
    ) -> Result<Self, StateError> {
        Self::open(
            &kind.into(),
            &BackendOwner::default(),
            key_group_range,
            max_parallelism,
        )
    }

    /// A backend configured by `config` for `owner` (RocksDB: its working directory
    /// and the slot whose memory it shares), owning `key_group_range` out of
    /// `max_parallelism` key groups. Fails if the storage cannot be opened or is not
    /// compiled in.
    ///
    /// # Panics
    /// Panics if `max_parallelism` is zero or the range ends beyond it.
    pub fn open(
        config: &StateBackendConfig,
        owner: &BackendOwner,
        key_group_range: KeyGroupRange,
        max_parallelism: u16,
    ) -> Result<Self, StateError> {
        assert!(
            key_group_range.end <= max_parallelism,
            "key-group range {key_group_range} exceeds max parallelism {max_parallelism}"
        );
        let storage = match config.kind {
            StateBackendKind::Memory => Storage::Memory,
            #[cfg(feature = "rocksdb")]
            StateBackendKind::RocksDb => Storage::RocksDb(Rc::new(
                crate::rocksdb::RocksDbInstance::open(&config.rocksdb, owner)?,
            )),
            #[cfg(not(feature = "rocksdb"))]
            StateBackendKind::RocksDb => {
                let _ = owner;
                return Err(StateError::Unavailable(config.kind.name()));
            }
        };
        Ok(Self {
            incremental: config.incremental && config.kind == StateBackendKind::RocksDb,
            storage,
            ctx: Rc::new(KeyContext::new(key_group_range, max_parallelism)),
            registry: Rc::new(RefCell::new(Registry::default())),
        })
    }

    /// The local working directory of a RocksDB backend (`None` for memory).
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        match &self.storage {
            Storage::Memory => None,
            #[cfg(feature = "rocksdb")]
            Storage::RocksDb(db) => Some(db.dir().to_path_buf()),
        }
    }

    /// The storage kind.
    pub fn kind(&self) -> StateBackendKind {
        match &self.storage {
            Storage::Memory => StateBackendKind::Memory,
            #[cfg(feature = "rocksdb")]
            Storage::RocksDb(_) => StateBackendKind::RocksDb,
        }
    }

    /// Key groups owned by this backend.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.ctx.range()
    }

    /// Total number of key groups.
    pub fn max_parallelism(&self) -> u16 {
        self.ctx.max_parallelism()
    }

    /// Makes `key` the current key of every state handle. Fails, keeping the
    /// previous key, if the key's group is outside this backend's range.
    pub fn set_current_key(&self, key: K) -> Result<(), StateError> {
        self.ctx.set(key)
    }

    /// The current key (cloned).
    pub fn current_key(&self) -> Option<K> {
        self.ctx.with(|cur| cur.map(|c| c.key.clone()))
    }

    /// Calls `f` with the current key, without cloning it.
    pub fn with_current_key<R>(&self, f: impl FnOnce(Option<&K>) -> R) -> R {
        self.ctx.with(|cur| f(cur.map(|c| &c.key)))
    }

    /// Key group of the current key.
    pub fn current_key_group(&self) -> Option<KeyGroup> {
        self.ctx.with(|cur| cur.map(|c| c.key_group))
    }

    fn register<T: ?Sized + 'static>(
        &self,
        name: &str,
        kind: StateKind,
        types: &'static str,
        create: impl FnOnce(TableMeta) -> Result<NewTable<T>, StateError>,
    ) -> Result<(Rc<str>, Rc<RefCell<T>>), StateError> {
        let (range, max_parallelism) = (self.ctx.range(), self.ctx.max_parallelism());
        self.registry
            .borrow_mut()
            .get_or_register(name, kind, types, |name| {
                create(TableMeta {
                    name,
                    range,
                    max_parallelism,
                })
            })
    }

    pub(crate) fn value_table<N: Namespace, V: StateValue>(
        &self,
        name: &str,
        kind: StateKind,
    ) -> Result<ValueCore<K, N, V>, StateError> {
        let storage = &self.storage;
        let (name, table) =
            self.register(name, kind, type_name::<(N, V)>(), |meta| match storage {
                Storage::Memory => {
                    let (typed, snap) = split(MemoryTable::<K, N, V>::new(meta));
                    Ok((typed as Rc<RefCell<dyn ValueTable<K, N, V>>>, snap))
                }
                #[cfg(feature = "rocksdb")]
                Storage::RocksDb(db) => {
                    let table = RocksTable::<K, N, Single<V>>::new(meta, Rc::clone(db))?;
                    let (typed, snap) = split(table);
                    Ok((typed as Rc<RefCell<dyn ValueTable<K, N, V>>>, snap))
                }
            })?;
        Ok(StateCore::new(name, Rc::clone(&self.ctx), table))
    }

    /// Registers (or looks up) a value state.
    pub fn value_state<N: Namespace, V: StateValue>(
        &self,
        name: &str,
    ) -> Result<ValueState<K, N, V>, StateError> {
        Ok(ValueState::new(self.value_table(name, StateKind::Value)?))
    }

    /// Registers (or looks up) a list state.
    pub fn list_state<N: Namespace, V: StateValue>(
        &self,
        name: &str,
    ) -> Result<ListState<K, N, V>, StateError> {
        let storage = &self.storage;
        let (name, table) = self.register(
            name,
            StateKind::List,
            type_name::<(N, V)>(),
            |meta| match storage {
                Storage::Memory => {
                    let (typed, snap) = split(MemoryTable::<K, N, Vec<V>>::new(meta));
                    Ok((typed as Rc<RefCell<dyn ListTable<K, N, V>>>, snap))
                }
                #[cfg(feature = "rocksdb")]
                Storage::RocksDb(db) => {
                    let table = RocksTable::<K, N, Listed<V>>::new(meta, Rc::clone(db))?;
                    let (typed, snap) = split(table);
                    Ok((typed as Rc<RefCell<dyn ListTable<K, N, V>>>, snap))
                }
            },
        )?;
        Ok(ListState::new(StateCore::new(
            name,
            Rc::clone(&self.ctx),
            table,
        )))
    }

    /// Registers (or looks up) a map state.
    pub fn map_state<N: Namespace, UK: StateKey, UV: StateValue>(
        &self,
        name: &str,
    ) -> Result<MapState<K, N, UK, UV>, StateError> {
        let storage = &self.storage;
        let types = type_name::<(N, UK, UV)>();
        let (name, table) = self.register(name, StateKind::Map, types, |meta| match storage {
            Storage::Memory => {
                let (typed, snap) = split(MemoryTable::<K, N, UserMap<UK, UV>>::new(meta));
                Ok((typed as Rc<RefCell<dyn MapTable<K, N, UK, UV>>>, snap))
            }
            #[cfg(feature = "rocksdb")]
            Storage::RocksDb(db) => {
                let table = RocksTable::<K, N, Mapped<UK, UV>>::new(meta, Rc::clone(db))?;
                let (typed, snap) = split(table);
                Ok((typed as Rc<RefCell<dyn MapTable<K, N, UK, UV>>>, snap))
            }
        })?;
        Ok(MapState::new(StateCore::new(
            name,
            Rc::clone(&self.ctx),
            table,
        )))
    }

    /// Registers (or looks up) a reducing state; the returned handle reduces
    /// with `reduce`.
    pub fn reducing_state<N: Namespace, V: StateValue>(
        &self,
        name: &str,
        reduce: impl ReduceFunction<V>,
    ) -> Result<ReducingState<K, N, V>, StateError> {
        let core = self.value_table(name, StateKind::Reducing)?;
        Ok(ReducingState::new(core, Rc::new(reduce)))
    }

    /// Registers (or looks up) an aggregating state; the returned handle
    /// aggregates with `function`.
    pub fn aggregating_state<N, IN, ACC, OUT>(
        &self,
        name: &str,
        function: impl AggregateFunction<IN, ACC, OUT>,
    ) -> Result<AggregatingState<K, N, IN, ACC, OUT>, StateError>
    where
        N: Namespace,
        ACC: StateValue,
        IN: 'static,
        OUT: 'static,
    {
        let core = self.value_table(name, StateKind::Aggregating)?;
        Ok(AggregatingState::new(core, Rc::new(function)))
    }

    /// Registers what removes the expired entries of TTL state `name`: `full_snapshot`
    /// runs before every full snapshot, `compaction` filters RocksDB compactions.
    pub(crate) fn clean_up_expired(
        &self,
        name: &str,
        full_snapshot: Option<Cleanup>,
        compaction: Option<ExpiredFn>,
    ) {
        if let Some(cleanup) = full_snapshot {
            let mut registry = self.registry.borrow_mut();
            registry.clean_before_full_snapshot(name, cleanup);
        }
        #[cfg(feature = "rocksdb")]
        if let (Storage::RocksDb(db), Some(expired)) = (&self.storage, compaction) {
            db.set_expiry(name, expired);
        }
        #[cfg(not(feature = "rocksdb"))]
        let _ = compaction;
    }

    /// Flushes and fully compacts the storage of every state now: RocksDB drops the
    /// expired entries of states with a time to live; the memory backend has nothing
    /// to compact.
    pub fn compact(&self) -> Result<(), StateError> {
        #[cfg(feature = "rocksdb")]
        if let Storage::RocksDb(db) = &self.storage {
            let registry = self.registry.borrow();
            registry.flush()?;
            for name in registry.names() {
                db.compact(&name)?;
            }
        }
        Ok(())
    }

    /// Names of all registered or restored states, sorted.
    pub fn state_names(&self) -> Vec<String> {
        self.registry.borrow().names()
    }

    /// Number of (key, namespace) entries of a registered state; `None` if
    /// no state of that name is registered.
    pub fn entry_count(&self, state: &str) -> Option<usize> {
        self.registry.borrow().entry_count(state)
    }

    /// An owned snapshot of all state, grouped per key group (expired entries of states
    /// with a time to live that asked for it removed first).
    pub fn snapshot(&self) -> Result<KeyedStateSnapshot, StateError> {
        self.registry.borrow().clean_expired()?;
        Ok(KeyedStateSnapshot {
            max_parallelism: self.ctx.max_parallelism(),
            key_group_range: self.ctx.range(),
            states: self.registry.borrow().snapshot()?,
        })
    }

    /// The timer service of the operator owning this backend: in the database for
    /// RocksDB (column families `weir:timers/event-time` and
    /// `weir:timers/processing-time`), on the heap for memory.
    pub fn timer_service<N: Namespace>(&self) -> Result<TimerService<K, N>, StateError> {
        let (range, max) = (self.ctx.range(), self.ctx.max_parallelism());
        match &self.storage {
            Storage::Memory => Ok(TimerService::new(range, max)),
            #[cfg(feature = "rocksdb")]
            Storage::RocksDb(db) => TimerService::in_rocksdb(
                Rc::clone(db),
                "weir:timers/event-time",
                "weir:timers/processing-time",
                range,
                max,
            ),
        }
    }

    /// The snapshot for checkpoint `checkpoint`: native (uploaded incrementally) for
    /// RocksDB with `state.backend.incremental`, unless it is a savepoint or restored
    /// state still waits for registration; otherwise full, in the backend-independent
    /// format: for RocksDB a checkpoint of the database that the upload streams in that
    /// format, for memory every entry encoded now.
    pub fn snapshot_for_checkpoint(
        &self,
        checkpoint: u64,
        savepoint: bool,
    ) -> Result<BackendSnapshot, StateError> {
        match &self.storage {
            #[cfg(feature = "rocksdb")]
            Storage::RocksDb(db)
                if self.incremental && !savepoint && !self.registry.borrow().has_pending() =>
            {
                self.registry.borrow().flush()?;
                let states = self.registry.borrow().kinds();
                db.native_snapshot(
                    checkpoint,
                    states,
                    self.ctx.range(),
                    self.ctx.max_parallelism(),
                )
                .map(BackendSnapshot::Native)
            }
            #[cfg(feature = "rocksdb")]
            Storage::RocksDb(db) => {
                let registry = self.registry.borrow();
                registry.clean_expired()?;
                registry.flush()?;
                let layout = (self.ctx.range(), self.ctx.max_parallelism());
                db.full_snapshot(checkpoint, registry.streamed()?, layout)
                    .map(BackendSnapshot::Streamed)
            }
            Storage::Memory => {
                let _ = (checkpoint, savepoint);
                self.snapshot().map(BackendSnapshot::Full)
            }
        }
    }

    /// Checkpoint `checkpoint` completed: the files uploaded for it may be referenced by
    /// later (incremental) checkpoints.
    pub fn checkpoint_complete(&self, checkpoint: u64) {
        #[cfg(feature = "rocksdb")]
        if let Storage::RocksDb(db) = &self.storage {
            db.checkpoint_complete(checkpoint);
        }
        let _ = checkpoint;
    }

    /// Restores native snapshots (downloaded RocksDB checkpoints) into this backend,
    /// which must be new: the database becomes the snapshot overlapping most key groups,
    /// clipped to this backend's key groups, with the others' entries of these key groups
    /// copied in. Only the RocksDB backend can.
    pub fn restore_native(&self, parts: Vec<NativeRestore>) -> Result<(), StateError> {
        if parts.is_empty() {
            return Ok(());
        }
        let layout = parts
            .iter()
            .map(|p| (p.state.max_parallelism, p.state.key_group_range, Vec::new()));
        check_restore_layout("native snapshot", self.ctx.max_parallelism(), layout)?;
        match &self.storage {
            Storage::Memory => Err(StateError::NativeSnapshotUnsupported(
                StateBackendKind::Memory.name(),
            )),
            #[cfg(feature = "rocksdb")]
            Storage::RocksDb(db) => {
                let states = db.restore_native(parts, self.ctx.range())?;
                let mut registry = self.registry.borrow_mut();
                registry.forget_cached();
                registry.restored_natively(states);
                // States registered before the restore keep a column family.
                for (name, _) in registry.kinds() {
                    db.create_column_family(&name)?;
                }
                Ok(())
            }
        }
    }

    /// Replaces all state with the entries of `snapshots` whose key groups
    /// lie in this backend's range (the snapshots may come from any
    /// parallelism with the same max parallelism). On a decode error the
    /// backend's contents are unspecified and the task should fail.
    pub fn restore(&self, snapshots: &[KeyedStateSnapshot]) -> Result<(), StateError> {
        let layout = snapshots.iter().map(|s| {
            let groups = s
                .states
                .iter()
                .flat_map(|st| {
                    st.key_groups
                        .iter()
                        .map(|g| (st.name.as_str(), g.key_group))
                })
                .collect();
            (s.max_parallelism, s.key_group_range, groups)
        });
        check_restore_layout("keyed state snapshot", self.ctx.max_parallelism(), layout)?;
        self.registry
            .borrow_mut()
            .restore(self.ctx.range(), snapshots)?;
        tracing::debug!(
            range = %self.ctx.range(),
            snapshots = snapshots.len(),
            "restored keyed state"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_group::{assign_to_key_group, key_hash};
    use crate::VoidNamespace;

    fn backend(range: KeyGroupRange) -> KeyedStateBackend<u64> {
        KeyedStateBackend::new(StateBackendKind::Memory, range, 16).unwrap()
    }

    #[test]
    fn registering_a_name_twice_shares_the_state() {
        let b = backend(KeyGroupRange::all(16));
        let first = b.value_state::<VoidNamespace, u32>("s").unwrap();
        let second = b.value_state::<VoidNamespace, u32>("s").unwrap();
        b.set_current_key(9).unwrap();
        first.update(4).unwrap();
        assert_eq!(second.value().unwrap(), Some(4));
        assert_eq!(first.clone().value().unwrap(), Some(4));
        assert_eq!(b.clone().state_names(), ["s"]);
    }

    #[test]
    fn a_name_cannot_change_kind_or_types() {
        let b = backend(KeyGroupRange::all(16));
        b.value_state::<VoidNamespace, u32>("s").unwrap();
        let err = b.value_state::<VoidNamespace, String>("s").unwrap_err();
        assert!(matches!(
            &err,
            StateError::StateTypeMismatch { name, existing_kind: StateKind::Value, .. } if name == "s"
        ));
        assert!(err.to_string().contains("u32"), "{err}");
        let err = b.list_state::<VoidNamespace, u32>("s").unwrap_err();
        assert!(matches!(
            err,
            StateError::StateTypeMismatch {
                requested_kind: StateKind::List,
                ..
            }
        ));
        let err = b
            .reducing_state::<VoidNamespace, u32>("s", |a, b| a + b)
            .unwrap_err();
        assert!(matches!(
            err,
            StateError::StateTypeMismatch {
                requested_kind: StateKind::Reducing,
                ..
            }
        ));
    }

    #[test]
    fn set_current_key_rejects_keys_outside_the_range_and_keeps_the_previous_key() {
        let range = KeyGroupRange::new(0, 8);
        let b = backend(range);
        let inside = (0u64..).find(|k| range.contains(assign_to_key_group(key_hash(k), 16)));
        let outside = (0u64..).find(|k| !range.contains(assign_to_key_group(key_hash(k), 16)));
        let (inside, outside) = (inside.unwrap(), outside.unwrap());
        b.set_current_key(inside).unwrap();
        let err = b.set_current_key(outside).unwrap_err();
        let expected = assign_to_key_group(key_hash(&outside), 16);
        assert!(matches!(
            err,
            StateError::KeyGroupOutOfRange { key_group, range: r } if key_group == expected && r == range
        ));
        assert!(err.to_string().contains("[0, 8)"), "{err}");
        assert_eq!(b.current_key(), Some(inside));
        assert_eq!(
            b.current_key_group(),
            Some(assign_to_key_group(key_hash(&inside), 16))
        );
        assert_eq!(b.with_current_key(|k| k.copied()), Some(inside));
    }

    #[test]
    #[should_panic(expected = "exceeds max parallelism")]
    fn a_range_beyond_max_parallelism_is_a_programming_error() {
        backend(KeyGroupRange::new(0, 17));
    }
}
