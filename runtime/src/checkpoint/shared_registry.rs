//! The shared-state registry of one job: which retained checkpoints reference which
//! shared files (the SST files of incremental checkpoints).
//!
//! The checkpoint coordinator registers a checkpoint when it completes and unregisters it
//! when it is subsumed and deleted; a shared file is deleted exactly when the last
//! registered checkpoint referencing it is unregistered. Files an aborted checkpoint
//! uploaded are referenced by no registered checkpoint and deleted at once; tasks only
//! reuse files of completed checkpoints, so no later checkpoint references them.
//!
//! A task may upload one local file twice, for two checkpoints, when it took the second
//! snapshot before it learnt that the first completed; and it may keep referencing the
//! first upload after a later checkpoint completed with the second. So each local file
//! has one canonical upload (the first registered, found by [`shared_file_key`]): the
//! coordinator writes completed checkpoints' metadata with it and deletes the duplicate,
//! and the canonical upload stays while any registered checkpoint holds the local file,
//! whichever upload a task names.
//!
//! Invariants:
//! - a path's count is the number of registered checkpoints that reference it, and a
//!   path with count zero is not kept;
//! - registering a checkpoint twice counts it once;
//! - a key's canonical path is a registered path.

use super::metadata::CheckpointMetadata;
use super::uploader::shared_file_key;
use crate::types::CheckpointId;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use weir_state_backends::SharedStateFile;

/// Reference counts of the shared files of a job's retained checkpoints.
#[derive(Debug, Default)]
pub struct SharedStateRegistry {
    counts: FxHashMap<String, u32>,
    by_checkpoint: BTreeMap<CheckpointId, Vec<String>>,
    /// The canonical path of each local file's key.
    canonical: FxHashMap<String, String>,
    /// The key of each canonical path.
    key_of: FxHashMap<String, String>,
}

impl SharedStateRegistry {
    /// Registers completed checkpoint `metadata`; returns the bytes of the shared files
    /// no registered checkpoint referenced before (what the checkpoint newly uploaded).
    pub fn register(&mut self, metadata: &CheckpointMetadata) -> u64 {
        if self.by_checkpoint.contains_key(&metadata.checkpoint) {
            return 0;
        }
        let mut paths = BTreeSet::new();
        let mut new_bytes = 0;
        for file in metadata.shared_files() {
            if !paths.insert(file.path.clone()) {
                continue;
            }
            let count = self.counts.entry(file.path.clone()).or_insert(0);
            if *count == 0 {
                new_bytes += file.size;
            }
            *count += 1;
            if let Some(key) = shared_file_key(file) {
                if !self.canonical.contains_key(&key) {
                    self.key_of.insert(file.path.clone(), key.clone());
                    self.canonical.insert(key, file.path.clone());
                }
            }
        }
        self.by_checkpoint
            .insert(metadata.checkpoint, paths.into_iter().collect());
        new_bytes
    }

    /// Unregisters `checkpoint` (subsumed and deleted); returns the shared files no
    /// registered checkpoint references any more, which the caller deletes.
    pub fn unregister(&mut self, checkpoint: CheckpointId) -> Vec<String> {
        let mut unused = Vec::new();
        for path in self.by_checkpoint.remove(&checkpoint).unwrap_or_default() {
            let count = self
                .counts
                .get_mut(&path)
                .expect("a registered path is counted");
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&path);
                if let Some(key) = self.key_of.remove(&path) {
                    self.canonical.remove(&key);
                }
                unused.push(path);
            }
        }
        unused
    }

    /// Returns the paths of `files` that no registered checkpoint references (those an
    /// aborted checkpoint uploaded), each once.
    pub fn unreferenced<'a>(
        &self,
        files: impl IntoIterator<Item = &'a SharedStateFile>,
    ) -> Vec<String> {
        let unused: BTreeSet<&str> = files
            .into_iter()
            .map(|f| f.path.as_str())
            .filter(|p| !self.counts.contains_key(*p))
            .collect();
        unused.into_iter().map(str::to_owned).collect()
    }

    /// The canonical upload of the local file `file` holds, if a registered checkpoint
    /// references one (`None`: `file` is the first upload of its local file).
    pub fn canonical(&self, file: &SharedStateFile) -> Option<&str> {
        self.canonical
            .get(&shared_file_key(file)?)
            .map(String::as_str)
    }

    /// Returns how many registered checkpoints reference `path`.
    pub fn references(&self, path: &str) -> u32 {
        self.counts.get(path).copied().unwrap_or(0)
    }

    /// Returns the registered checkpoints, ascending.
    pub fn checkpoints(&self) -> impl Iterator<Item = CheckpointId> + '_ {
        self.by_checkpoint.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{OperatorStateHandles, SubtaskStateHandle};
    use crate::types::JobId;

    fn file(path: &str, size: u64) -> SharedStateFile {
        SharedStateFile {
            local: path.to_owned(),
            path: path.to_owned(),
            size,
            checksum: 0,
        }
    }

    fn checkpoint(id: CheckpointId, files: &[(&str, u64)]) -> CheckpointMetadata {
        CheckpointMetadata {
            job: JobId(1),
            job_name: "j".into(),
            checkpoint: id,
            timestamp_ms: 0,
            savepoint: false,
            operators: vec![OperatorStateHandles {
                uid: "op".into(),
                parallelism: 1,
                max_parallelism: 128,
                subtasks: vec![SubtaskStateHandle {
                    subtask: 0,
                    file: "op-0".into(),
                    size: 10,
                    key_group_start: 0,
                    key_group_end: 128,
                    shared: files.iter().map(|(p, s)| file(p, *s)).collect(),
                }],
            }],
        }
    }

    #[test]
    fn a_file_is_released_when_the_last_checkpoint_referencing_it_is_unregistered() {
        let mut r = SharedStateRegistry::default();
        assert_eq!(r.register(&checkpoint(1, &[("a", 100), ("b", 50)])), 150);
        assert_eq!(r.register(&checkpoint(2, &[("a", 100), ("c", 7)])), 7);
        assert_eq!(r.references("a"), 2);
        assert_eq!(r.unregister(1), ["b"]);
        assert_eq!(r.references("a"), 1);
        assert_eq!(r.register(&checkpoint(3, &[("c", 7)])), 0);
        assert_eq!(r.unregister(2), ["a"]);
        assert_eq!(r.unregister(3), ["c"]);
        assert_eq!(r.checkpoints().count(), 0);
        assert!(
            r.unregister(3).is_empty(),
            "unregistering twice releases nothing"
        );
    }

    #[test]
    fn registering_a_checkpoint_twice_counts_it_once() {
        let mut r = SharedStateRegistry::default();
        let c = checkpoint(4, &[("a", 1)]);
        assert_eq!(r.register(&c), 1);
        assert_eq!(r.register(&c), 0);
        assert_eq!(r.references("a"), 1);
        assert_eq!(r.unregister(4), ["a"]);
    }

    #[test]
    fn only_files_no_registered_checkpoint_references_are_unreferenced() {
        let mut r = SharedStateRegistry::default();
        r.register(&checkpoint(1, &[("a", 1)]));
        let acked = [file("a", 1), file("new", 2), file("new", 2)];
        assert_eq!(r.unreferenced(&acked), ["new"]);
    }
}
