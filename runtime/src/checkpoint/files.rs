//! Files other than checkpoints kept in the same kind of storage: the high-availability
//! job graph store writes each submitted job there before the submission is acknowledged.
//!
//! Invariant: as for checkpoint files, every file is written in one `put` with the codec's
//! versioned, checksummed envelope, and every read checks it, so a corrupt, truncated or
//! foreign file is an error naming it.

use super::storage::{CheckpointStorage, StorageError};
use object_store::path::Path;
use serde::de::DeserializeOwned;
use serde::Serialize;

impl CheckpointStorage {
    /// Writes `value` as the file at `path` (relative to the root), replacing any.
    pub fn write_file<T: Serialize>(&self, path: &str, value: &T) -> Result<(), StorageError> {
        self.put_versioned(&Path::from(path), value).map(|_| ())
    }

    /// Reads the file at `path` (relative to the root) written by [`Self::write_file`].
    pub fn read_file<T: DeserializeOwned>(&self, path: &str) -> Result<T, StorageError> {
        self.get_versioned(&Path::from(path))
    }

    /// The URL of the file at `path` (relative to the root).
    pub fn file_url(&self, path: &str) -> String {
        self.name(&Path::from(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_and_a_corrupt_one_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let s = CheckpointStorage::open(&url).unwrap();
        s.write_file("jobs/a", &vec![1u32, 2, 3]).unwrap();
        assert_eq!(s.read_file::<Vec<u32>>("jobs/a").unwrap(), vec![1, 2, 3]);
        std::fs::write(dir.path().join("jobs/a"), b"garbage").unwrap();
        let e = s.read_file::<Vec<u32>>("jobs/a").unwrap_err().to_string();
        assert!(e.contains("jobs/a"), "{e}");
        s.delete_file("jobs/a").unwrap();
        s.delete_file("jobs/a").unwrap();
        let e = s.read_file::<Vec<u32>>("jobs/a").unwrap_err().to_string();
        assert!(e.contains("jobs/a"), "{e}");
    }
}
