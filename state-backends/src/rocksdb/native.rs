//! Native snapshots and restores of one RocksDB instance (see [`crate::native`]).
//!
//! A snapshot is a RocksDB checkpoint (memtables flushed, SST files hard-linked) in
//! `chk-<id>` of the working directory, taken on the subtask's thread; the upload runs
//! elsewhere and the directory goes with the [`LocalSnapshot`].
//!
//! A restore opens a downloaded snapshot as the database. With one snapshot covering
//! exactly the backend's key groups (same parallelism) that is all, and the snapshot's
//! shared files stay reusable, so the next checkpoint is incremental at once. Otherwise
//! (rescaling) the snapshot overlapping the most key groups becomes the database and is
//! clipped to the backend's key groups (range deletions), and the entries of the others
//! inside them are written into SST files, one per state and snapshot, which the database
//! ingests.
//!
//! Invariant: only files of a checkpoint the backend heard completed are ever offered
//! for reuse.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rocksdb::checkpoint::Checkpoint;
use rocksdb::{IngestExternalFileOptions, ReadOptions, SstFileWriter, DB};

use super::instance::RocksDbInstance;
use super::keys::{group_key, PAST_ALL_KEYS};
use crate::error::StateError;
use crate::full_snapshot::{LocalFullSnapshot, StateSource};
use crate::key_group::KeyGroupRange;
use crate::native::{LocalFile, LocalSnapshot, NativeRestore, SharedStateFile, UploadReceipt};
use crate::state_kind::StateKind;

/// Checkpoints whose upload receipts are kept until they complete or are forgotten.
const MAX_PENDING_RECEIPTS: usize = 16;

/// The uploads of one database's checkpoints.
#[derive(Default)]
pub(crate) struct Uploads {
    /// The shared files of the newest completed checkpoint, by local name.
    confirmed: HashMap<String, SharedStateFile>,
    /// Receipts of checkpoints not known to be complete, by checkpoint.
    pending: BTreeMap<u64, UploadReceipt>,
    /// The newest checkpoint known to be complete.
    completed: u64,
}

fn overlap(a: KeyGroupRange, b: KeyGroupRange) -> usize {
    usize::from(a.end.min(b.end)).saturating_sub(usize::from(a.start.max(b.start)))
}

impl RocksDbInstance {
    /// Takes a native snapshot for `checkpoint` of a backend with `states`, owning
    /// `range` of `max_parallelism` key groups.
    pub(crate) fn native_snapshot(
        &self,
        checkpoint: u64,
        states: Vec<(String, StateKind)>,
        range: KeyGroupRange,
        max_parallelism: u16,
    ) -> Result<LocalSnapshot, StateError> {
        let dir = self.dir().join(format!("chk-{checkpoint}"));
        self.take_checkpoint(&dir)?;
        let failed = |doing: &str, e: std::io::Error| StateError::Storage {
            backend: self.describe(),
            doing: format!("{doing} {}", dir.display()),
            message: e.to_string(),
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| failed("listing", e))? {
            let entry = entry.map_err(|e| failed("listing", e))?;
            let size = entry.metadata().map_err(|e| failed("reading", e))?.len();
            files.push(LocalFile {
                name: entry.file_name().to_string_lossy().into_owned(),
                size,
            });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut uploads = self.uploads.borrow_mut();
        let reusable = files
            .iter()
            .filter_map(|f| {
                let shared = uploads.confirmed.get(&f.name)?;
                (shared.size == f.size).then(|| (f.name.clone(), shared.clone()))
            })
            .collect();
        let receipt: UploadReceipt = Arc::new(OnceLock::new());
        uploads.pending.insert(checkpoint, Arc::clone(&receipt));
        while uploads.pending.len() > MAX_PENDING_RECEIPTS {
            uploads.pending.pop_first();
        }
        tracing::debug!(dir = %dir.display(), checkpoint, files = files.len(), "took a native RocksDB snapshot");
        Ok(LocalSnapshot {
            dir,
            files,
            states,
            key_group_range: range,
            max_parallelism,
            instance: self.nonce,
            reusable,
            receipt,
        })
    }

    /// Takes a RocksDB checkpoint of the database into `dir` (replacing a stale one):
    /// memtables flushed, SST files hard-linked.
    fn take_checkpoint(&self, dir: &Path) -> Result<(), StateError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| StateError::Storage {
                backend: self.describe(),
                doing: format!("deleting the stale snapshot {}", dir.display()),
                message: e.to_string(),
            })?;
        }
        let db = self.db.borrow();
        Checkpoint::new(&*db)
            .and_then(|c| c.create_checkpoint(dir))
            .map_err(|e| self.error(format!("taking snapshot {}", dir.display()), e))
    }

    /// Takes the full snapshot for `checkpoint` of a backend with `states` (sorted by
    /// name), owning `range` of `max_parallelism` key groups: a checkpoint of the
    /// database, streamed by the upload (see [`crate::full_snapshot`]).
    pub(crate) fn full_snapshot(
        &self,
        checkpoint: u64,
        states: Vec<(String, StateKind, StateSource)>,
        layout: (KeyGroupRange, u16),
    ) -> Result<LocalFullSnapshot, StateError> {
        let dir = self.dir().join(format!("full-{checkpoint}"));
        // A spool file an abandoned upload left.
        let _ = std::fs::remove_file(dir.with_extension("state"));
        self.take_checkpoint(&dir)?;
        tracing::debug!(dir = %dir.display(), checkpoint, "took a RocksDB checkpoint for a full snapshot");
        Ok(LocalFullSnapshot::new(dir, states, layout, self.describe()))
    }

    /// Checkpoint `checkpoint` completed: the files its upload stored become the ones
    /// later snapshots reuse. A completed checkpoint without a receipt (a full snapshot,
    /// such as a savepoint, or a receipt dropped as too old) may have subsumed the
    /// checkpoint whose files were reusable, and so their deletion: nothing is reused then
    /// until the next incremental checkpoint completes.
    pub(crate) fn checkpoint_complete(&self, checkpoint: u64) {
        let mut uploads = self.uploads.borrow_mut();
        if checkpoint <= uploads.completed {
            return;
        }
        uploads.completed = checkpoint;
        match uploads
            .pending
            .remove(&checkpoint)
            .and_then(|r| r.get().cloned())
        {
            Some(files) => {
                uploads.confirmed = files.into_iter().map(|f| (f.local.clone(), f)).collect();
            }
            None => uploads.confirmed.clear(),
        }
        uploads.pending.retain(|id, _| *id > checkpoint);
    }

    /// Replaces the database (which must hold no entries yet) with the native snapshots
    /// `parts`, keeping the key groups of `range`. Returns every restored state with its
    /// kind.
    pub(crate) fn restore_native(
        &self,
        mut parts: Vec<NativeRestore>,
        range: KeyGroupRange,
    ) -> Result<Vec<(String, StateKind)>, StateError> {
        let mut states: BTreeMap<String, StateKind> = BTreeMap::new();
        for part in &parts {
            for (name, kind) in &part.state.states {
                let known = *states.entry(name.clone()).or_insert(*kind);
                if known != *kind {
                    return Err(StateError::SnapshotKindMismatch {
                        name: name.clone(),
                        snapshot_kind: *kind,
                        registered_kind: known,
                    });
                }
            }
        }
        let Some(best) =
            (0..parts.len()).max_by_key(|&i| overlap(parts[i].state.key_group_range, range))
        else {
            return Ok(Vec::new());
        };
        let base = parts.swap_remove(best);
        let exact = parts.is_empty() && base.state.key_group_range == range;
        let (db, families) = self.open_existing(&base.dir)?;
        let old = std::mem::replace(&mut *self.db.borrow_mut(), db);
        drop(old);
        let old_dir = std::mem::replace(&mut *self.db_dir.borrow_mut(), base.dir.clone());
        if let Err(e) = std::fs::remove_dir_all(&old_dir) {
            tracing::warn!(dir = %old_dir.display(), error = %e, "cannot delete the replaced RocksDB database");
        }
        if base.state.key_group_range != range {
            self.clip(&families, range)?;
        }
        if exact {
            self.uploads.borrow_mut().confirmed = base
                .shared
                .iter()
                .map(|f| (f.local.clone(), f.clone()))
                .collect();
        }
        for part in parts {
            self.copy_in(&part, range)?;
            if let Err(e) = std::fs::remove_dir_all(&part.dir) {
                tracing::warn!(dir = %part.dir.display(), error = %e, "cannot delete a restored RocksDB snapshot");
            }
        }
        tracing::debug!(dir = %base.dir.display(), %range, exact, states = states.len(), "restored native RocksDB snapshots");
        Ok(states.into_iter().collect())
    }

    /// Deletes every entry outside `range` from the column families `families`.
    fn clip(&self, families: &[String], range: KeyGroupRange) -> Result<(), StateError> {
        for name in families {
            self.with_cf(name, |db, cf| {
                let below: (&[u8], &[u8]) = (&[0, 0], &group_key(range.start));
                let above: (&[u8], &[u8]) = (&group_key(range.end), &PAST_ALL_KEYS);
                db.delete_range_cf_opt(cf, below.0, below.1, &self.write)
                    .and_then(|()| db.delete_range_cf_opt(cf, above.0, above.1, &self.write))
                    .map_err(|e| self.error(format!("clipping state '{name}' to {range}"), e))
            })?;
        }
        Ok(())
    }

    /// Copies the entries of `part` inside `range` into the database.
    fn copy_in(&self, part: &NativeRestore, range: KeyGroupRange) -> Result<(), StateError> {
        let from = part.state.key_group_range;
        let (start, end) = (from.start.max(range.start), from.end.min(range.end));
        if start >= end {
            return Ok(());
        }
        let (source, families) = self.open_existing(&part.dir)?;
        for name in &families {
            self.create_column_family(name)?;
            self.copy_family(&source, &part.dir, name, start, end)?;
        }
        Ok(())
    }

    /// Brings the entries of column family `name` in key groups `[start, end)` from
    /// `source` (opened from `dir`) into this database: written in key order into an SST
    /// file of the working directory, which the column family then ingests (moved, not
    /// copied), instead of going through the memtable entry by entry.
    fn copy_family(
        &self,
        source: &DB,
        dir: &Path,
        name: &str,
        start: u16,
        end: u16,
    ) -> Result<(), StateError> {
        static FILES: AtomicU64 = AtomicU64::new(0);
        let from = source.cf_handle(name).ok_or_else(|| StateError::Storage {
            backend: self.describe(),
            doing: format!("restoring state '{name}' from {}", dir.display()),
            message: "its column family is missing".to_owned(),
        })?;
        let sst = self.dir().join(format!(
            "ingest-{}.sst",
            FILES.fetch_add(1, Ordering::Relaxed)
        ));
        let ingested = self.write_and_ingest(source, from, name, &sst, (start, end));
        // Moved files are linked into the database; the name in the working directory goes,
        // as does a partly written file.
        if let Err(e) = std::fs::remove_file(&sst) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %sst.display(), error = %e, "cannot delete an SST file written for a restore");
            }
        }
        ingested
    }

    /// Writes the entries of `from` in key groups `[start, end)` into the SST file `sst`
    /// and ingests it into column family `name`; nothing when there are none.
    fn write_and_ingest(
        &self,
        source: &DB,
        from: &rocksdb::ColumnFamily,
        name: &str,
        sst: &Path,
        (start, end): (u16, u16),
    ) -> Result<(), StateError> {
        let writing = |e| self.error(format!("writing state '{name}' into {}", sst.display()), e);
        let mut writer = SstFileWriter::create(&self.cf_options);
        writer.open(sst).map_err(writing)?;
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(group_key(end).to_vec());
        let mut it = source.raw_iterator_cf_opt(from, options);
        it.seek(group_key(start));
        let mut entries = 0u64;
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            writer.put(key, value).map_err(writing)?;
            entries += 1;
            it.next();
        }
        it.status()
            .map_err(|e| self.error(format!("reading state '{name}' of a restored snapshot"), e))?;
        if entries == 0 {
            return Ok(());
        }
        writer.finish().map_err(writing)?;
        self.with_cf(name, |db, cf| {
            let mut ingest = IngestExternalFileOptions::default();
            ingest.set_move_files(true);
            db.ingest_external_file_cf_opts(cf, &ingest, vec![sst])
                .map_err(|e| self.error(format!("ingesting state '{name}'"), e))
        })
    }
}
