//! One RocksDB database: the working copy of one keyed operator subtask's state.
//!
//! Invariants:
//! - The working directory is `<localdir>/weir-rocksdb/pid-<process>/job-<job>-<uid>-<n>`,
//!   unique in the process; it is deleted when the instance is dropped (the subtask
//!   ended, failed or was cancelled; a restart opens a new one), and directories of
//!   processes that no longer run are deleted when a process opens its first instance.
//!   It holds the database (`db`, or the directory a restore downloaded), local
//!   snapshots (`chk-<id>`) until uploaded, and downloads being restored.
//! - Column families are created on registration of their state (or come with a
//!   restored database) and never dropped.
//! - The database is used from the subtask's thread only (`RefCell`).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor,
    DBCompressionType, MergeOperands, Options, WriteOptions, DB,
};

use super::expiry::ExpiryFilters;
use super::memory::SlotMemory;
use super::native::Uploads;
use crate::backend_config::{BackendOwner, RocksDbOptions};
use crate::error::StateError;
use crate::ttl::ExpiredFn;

/// A working directory, deleted on drop.
struct WorkingDir(PathBuf);

impl Drop for WorkingDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.0.display(), error = %e, "cannot delete a RocksDB working directory");
            }
        }
    }
}

/// An open database and what its tables share.
pub(crate) struct RocksDbInstance {
    // Dropped in this order: the database closes before its directory is deleted.
    pub(super) db: RefCell<DB>,
    /// Where the open database lives, inside the working directory.
    pub(super) db_dir: RefCell<PathBuf>,
    pub(crate) write: WriteOptions,
    pub(super) db_options: Options,
    pub(super) cf_options: Options,
    /// A random number naming this instance in the names of uploaded files.
    pub(super) nonce: u64,
    /// Files uploaded for checkpoints of this database.
    pub(super) uploads: RefCell<Uploads>,
    /// Entries of each value table's write-back cache.
    pub(super) value_cache_entries: usize,
    /// The compaction filters of the column families (state time-to-live).
    expiry: ExpiryFilters,
    _memory: Arc<SlotMemory>,
    dir: WorkingDir,
}

/// Concatenates list elements: RocksDB's merge of appended list elements.
fn append(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let len = existing.map_or(0, <[u8]>::len) + operands.iter().map(<[u8]>::len).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(existing.unwrap_or_default());
    for op in operands {
        out.extend_from_slice(op);
    }
    Some(out)
}

/// Opens the checkpoint in `dir` (a full snapshot's) read only, with every column family
/// it has; `backend` names it in errors. It shares nothing with the database it was taken
/// of: its own small block cache, and reads that bypass it.
pub(crate) fn open_read_only(dir: &Path, backend: &str) -> Result<DB, StateError> {
    let failed = |doing: &str, e: rocksdb::Error| StateError::Storage {
        backend: backend.to_owned(),
        doing: format!("{doing} the snapshot in {}", dir.display()),
        message: e.into_string(),
    };
    let mut options = Options::default();
    // Lists not yet merged are merged on read, as in the database.
    options.set_merge_operator_associative("weir-list-append", append);
    let names = DB::list_cf(&options, dir).map_err(|e| failed("listing the states of", e))?;
    let families = names
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(name, options.clone()));
    DB::open_cf_descriptors_read_only(&options, dir, families, false)
        .map_err(|e| failed("opening", e))
}

/// Deletes the working directories of processes that no longer run (Linux: a
/// process runs while `/proc/<pid>` exists; elsewhere nothing is deleted).
fn delete_stale(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("pid-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            tracing::info!(dir = %entry.path().display(), "deleting the RocksDB working directory of a process that ended");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A random number (from the standard library's randomly keyed hasher).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// A directory-name-safe form of an operator uid (with a hash, so different uids stay
/// apart).
fn dir_name(uid: &str) -> String {
    let safe: String = uid
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{:08x}", crate::key_group::key_hash(&uid) as u32)
}

impl RocksDbInstance {
    /// Opens a new, empty database for `owner` under `options.local_dir`.
    pub(crate) fn open(options: &RocksDbOptions, owner: &BackendOwner) -> Result<Self, StateError> {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        static CLEANUP: Once = Once::new();
        let base = options
            .local_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join("weir-rocksdb");
        CLEANUP.call_once(|| delete_stale(&base));
        let dir = base
            .join(format!("pid-{}", std::process::id()))
            .join(format!(
                "job-{}-{}-{}",
                owner.job,
                dir_name(&owner.operator),
                SEQUENCE.fetch_add(1, Ordering::Relaxed)
            ));
        let backend = format!("rocksdb at {}", dir.display());
        let failed = |doing: &str, message: String| StateError::Storage {
            backend: backend.clone(),
            doing: doing.to_owned(),
            message,
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| failed("deleting a stale working directory", e.to_string()))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| failed("creating its working directory", e.to_string()))?;
        let dir = WorkingDir(dir);
        let memory = SlotMemory::for_slot(owner.job, owner.slot, options.managed_memory_bytes);

        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&memory.cache);
        table.set_cache_index_and_filter_blocks(true);
        table.set_bloom_filter(10.0, false);
        // Partitioned filters and a two-level index, as Flink's
        // `state.backend.rocksdb.memory.partitioned-index-filters`: a large file's filter
        // and index are 4 KiB blocks loaded as lookups need them. Whole, they are blocks of
        // megabytes, larger than a shard of the slot's block cache can hold, so every lookup
        // would read and checksum them from the file again.
        table.set_partition_filters(true);
        table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
        table.set_metadata_block_size(4096);
        table.set_pin_top_level_index_and_filter(true);
        table.set_cache_index_and_filter_blocks_with_high_priority(true);
        let mut cf_options = Options::default();
        cf_options.set_block_based_table_factory(&table);
        cf_options.set_compression_type(DBCompressionType::Lz4);
        cf_options.set_merge_operator_associative("weir-list-append", append);
        // Memtables small enough that several states fit the slot's write buffers.
        cf_options.set_write_buffer_size((memory.bytes as usize / 8).clamp(1 << 20, 64 << 20));
        // A bloom filter over the memtable's whole keys: a point lookup of a key not in it
        // (a new map entry, a first value) skips the skip-list search.
        cf_options.set_memtable_whole_key_filtering(true);
        cf_options.set_memtable_prefix_bloom_ratio(0.1);
        let mut db_options = cf_options.clone();
        db_options.create_if_missing(true);
        db_options.set_write_buffer_manager(&memory.write_buffers);
        db_options.set_keep_log_file_num(1);
        db_options.set_max_background_jobs(2);
        let db_dir = dir.0.join("db");
        let db = DB::open(&db_options, &db_dir).map_err(|e| failed("opening", e.into_string()))?;
        let mut write = WriteOptions::default();
        write.disable_wal(true);
        tracing::debug!(dir = %dir.0.display(), job = owner.job, slot = owner.slot, operator = %owner.operator, "opened RocksDB state backend");
        Ok(Self {
            db: RefCell::new(db),
            db_dir: RefCell::new(db_dir),
            write,
            db_options,
            cf_options,
            nonce: random_u64(),
            uploads: RefCell::new(Uploads::default()),
            value_cache_entries: options.value_cache_entries,
            expiry: ExpiryFilters::default(),
            _memory: memory,
            dir,
        })
    }

    /// Opens the database in `path` with every column family it has; returns it with
    /// the names of its column families other than `default`.
    pub(super) fn open_existing(&self, path: &Path) -> Result<(DB, Vec<String>), StateError> {
        let mut names = DB::list_cf(&self.db_options, path)
            .map_err(|e| self.error(format!("listing the states of {}", path.display()), e))?;
        let families = names.iter().map(|name| {
            ColumnFamilyDescriptor::new(name, self.expiry.options_for(&self.cf_options, name))
        });
        let db = DB::open_cf_descriptors(&self.db_options, path, families)
            .map_err(|e| self.error(format!("opening {}", path.display()), e))?;
        names.retain(|n| n != rocksdb::DEFAULT_COLUMN_FAMILY_NAME);
        Ok((db, names))
    }

    /// The working directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Names the instance in errors.
    pub(crate) fn describe(&self) -> String {
        format!("rocksdb at {}", self.dir.0.display())
    }

    /// An error of this instance while `doing`.
    pub(crate) fn error(&self, doing: impl Into<String>, e: rocksdb::Error) -> StateError {
        StateError::Storage {
            backend: self.describe(),
            doing: doing.into(),
            message: e.into_string(),
        }
    }

    /// Creates the column family `name` if it does not exist.
    pub(crate) fn create_column_family(&self, name: &str) -> Result<(), StateError> {
        let mut db = self.db.borrow_mut();
        if db.cf_handle(name).is_none() {
            let options = self.expiry.options_for(&self.cf_options, name);
            db.create_cf(name, &options).map_err(|e| {
                self.error(format!("creating the column family of state '{name}'"), e)
            })?;
            self.expiry.keep(options);
        }
        Ok(())
    }

    /// From now on compactions of state `name` drop the rows `expired` accepts.
    pub(crate) fn set_expiry(&self, name: &str, expired: ExpiredFn) {
        self.expiry.set(name, expired);
    }

    /// Flushes and fully compacts the column family of state `name` (if it exists), so
    /// its compaction filter has seen every row.
    pub(crate) fn compact(&self, name: &str) -> Result<(), StateError> {
        let db = self.db.borrow();
        let Some(cf) = db.cf_handle(name) else {
            return Ok(());
        };
        db.flush_cf(cf)
            .map_err(|e| self.error(format!("flushing state '{name}'"), e))?;
        // Twice: compactions never filter the value a merge makes, so the first one merges
        // the appends of a list into one value and the second filters it.
        db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    /// Runs `f` on the database and the column family of state `name` (which must
    /// exist).
    pub(crate) fn with_cf<R>(
        &self,
        name: &str,
        f: impl FnOnce(&DB, &ColumnFamily) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        let db = self.db.borrow();
        let cf = db.cf_handle(name).ok_or_else(|| StateError::Storage {
            backend: self.describe(),
            doing: format!("accessing state '{name}'"),
            message: "its column family is missing".to_owned(),
        })?;
        f(&db, cf)
    }
}
