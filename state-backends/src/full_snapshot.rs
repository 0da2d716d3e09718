//! Full snapshots of the RocksDB backend streamed from a checkpoint of its database
//! (savepoints, and checkpoints when `state.backend.incremental` is off).
//!
//! The synchronous phase only writes the value caches back and takes a RocksDB
//! checkpoint (memtables flushed, SST files hard-linked) into `full-<id>` of the working
//! directory: a [`LocalFullSnapshot`]. The asynchronous phase opens that checkpoint read
//! only and serializes it ([`FullSnapshotReader`]) key group by key group in exactly the
//! backend-independent format of [`crate::snapshot`]: [`StreamedKeyedState`] encodes as
//! the [`KeyedStateSnapshot`](crate::KeyedStateSnapshot) of the same state would, and
//! [`StreamedTimers`] as its [`TimerSnapshot`](crate::TimerSnapshot). So any backend
//! restores it at any parallelism, and memory holds one key group at a time, not the
//! state.
//!
//! Invariants:
//! - States are serialized sorted by name; restored state not yet registered (held as
//!   snapshot bytes) is serialized from those bytes, as an in-memory snapshot would.
//! - A read error is kept ([`FullSnapshotReader::take_error`]) and ends the
//!   serialization; the caller reports it instead of the serializer's message.
//! - The checkpoint directory and the spool file beside it are deleted when the
//!   [`LocalFullSnapshot`] is dropped (after its upload, or when it is abandoned).

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::codec::CodecError;
use crate::error::StateError;
use crate::key_group::KeyGroupRange;
use crate::snapshot::StateSnapshot;
use crate::state_kind::StateKind;

/// How the rows of a column family become snapshot entries (see `rocksdb::rows`).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "rocksdb"), allow(dead_code))]
pub(crate) enum RowLayout {
    /// One entry per row, `key | namespace | value`: value, reducing and aggregating
    /// state.
    Single,
    /// One entry per row, `key | namespace | element count | elements`: list state; the
    /// function counts the elements of a stored list.
    Listed(fn(&[u8]) -> Result<u64, CodecError>),
    /// One entry per (key, namespace), `key | namespace | pair count | (user key |
    /// value)*`, from consecutive rows: map state; the function gives the length of
    /// `key | namespace` at the start of a stored key (after its key group).
    Mapped(fn(&[u8]) -> Result<usize, CodecError>),
    /// One entry per row, `key | namespace | timestamp`, from a timer's stored key
    /// `timestamp | key | namespace` (after its key group).
    Timer,
}

/// Where one state of a full snapshot comes from.
#[derive(Debug)]
#[cfg_attr(not(feature = "rocksdb"), allow(dead_code))]
pub(crate) enum StateSource {
    /// The column family named as the state, in the given layout.
    Stored(RowLayout),
    /// Restored state not registered yet: its snapshot bytes.
    Pending(StateSnapshot),
}

/// A full snapshot on local disk, waiting for its upload.
#[derive(Debug)]
#[cfg_attr(not(feature = "rocksdb"), allow(dead_code))]
pub struct LocalFullSnapshot {
    /// The RocksDB checkpoint.
    pub(crate) dir: PathBuf,
    spool: PathBuf,
    /// Every state with its kind and source, sorted by name.
    pub(crate) states: Vec<(String, StateKind, StateSource)>,
    /// The column families of the event-time and processing-time timers, if the
    /// snapshot carries its operator's timers.
    pub(crate) timers: Option<(&'static str, &'static str)>,
    range: KeyGroupRange,
    max_parallelism: u16,
    /// Names the database in errors.
    pub(crate) backend: String,
}

impl LocalFullSnapshot {
    /// A snapshot of `states` in the checkpoint `dir`, spooled (by its upload) to a file
    /// beside it.
    #[cfg_attr(not(feature = "rocksdb"), allow(dead_code))]
    pub(crate) fn new(
        dir: PathBuf,
        states: Vec<(String, StateKind, StateSource)>,
        (range, max_parallelism): (KeyGroupRange, u16),
        backend: String,
    ) -> Self {
        Self {
            spool: dir.with_extension("state"),
            dir,
            states,
            timers: None,
            range,
            max_parallelism,
            backend,
        }
    }

    /// The key groups of the snapshotted backend.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    /// A file beside the snapshot where its upload may write the encoding before
    /// sending it (deleted with the snapshot).
    pub fn spool_path(&self) -> &Path {
        &self.spool
    }

    /// Makes the snapshot carry the timers in column families `event_time` and
    /// `processing_time` of the same database.
    pub(crate) fn carry_timers(&mut self, event_time: &'static str, processing_time: &'static str) {
        self.timers = Some((event_time, processing_time));
    }

    /// Whether the snapshot carries its operator's timers.
    pub fn carries_timers(&self) -> bool {
        self.timers.is_some()
    }

    /// Opens the checkpoint for reading.
    pub fn open(&self) -> Result<FullSnapshotReader<'_>, StateError> {
        Ok(FullSnapshotReader {
            #[cfg(feature = "rocksdb")]
            db: crate::rocksdb::open_read_only(&self.dir, &self.backend)?,
            snapshot: self,
            error: RefCell::new(None),
        })
    }
}

impl Drop for LocalFullSnapshot {
    fn drop(&mut self) {
        let removed =
            std::fs::remove_dir_all(&self.dir).and(match std::fs::remove_file(&self.spool) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            });
        if let Err(e) = removed {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot delete a local full snapshot");
            }
        }
    }
}

/// An open [`LocalFullSnapshot`], serialized through [`Self::keyed`] and
/// [`Self::timers`].
pub struct FullSnapshotReader<'a> {
    #[cfg(feature = "rocksdb")]
    db: rocksdb::DB,
    snapshot: &'a LocalFullSnapshot,
    error: RefCell<Option<StateError>>,
}

impl FullSnapshotReader<'_> {
    /// The keyed state, which serializes as its `KeyedStateSnapshot` would.
    pub fn keyed(&self) -> StreamedKeyedState<'_> {
        StreamedKeyedState(self)
    }

    /// The timers, if the snapshot carries them, which serialize as their
    /// `TimerSnapshot` would.
    pub fn timers(&self) -> Option<StreamedTimers<'_>> {
        self.snapshot.timers.map(|cfs| StreamedTimers(self, cfs))
    }

    /// The read error that ended a serialization, if one did.
    pub fn take_error(&self) -> Option<StateError> {
        self.error.borrow_mut().take()
    }

    /// Keeps `e` for [`Self::take_error`] and returns the serializer's error for it.
    fn fail<E: serde::ser::Error>(&self, e: StateError) -> E {
        let message = e.to_string();
        self.error.borrow_mut().get_or_insert(e);
        E::custom(message)
    }

    /// Serializes the key groups of column family `cf` (`what` names it in errors).
    fn serialize_groups<S: Serializer>(
        &self,
        s: S,
        cf: &str,
        layout: RowLayout,
        what: &str,
    ) -> Result<S::Ok, S::Error> {
        #[cfg(feature = "rocksdb")]
        {
            let name = (self.snapshot.backend.as_str(), what);
            let range = self.snapshot.range;
            let (count, groups) = crate::rocksdb::stream_groups(&self.db, cf, layout, range, name)
                .map_err(|e| self.fail(e))?;
            let mut seq = s.serialize_seq(Some(count))?;
            let mut written = 0;
            for group in groups {
                seq.serialize_element(&group.map_err(|e| self.fail(e))?)?;
                written += 1;
            }
            if written != count {
                return Err(self.fail(StateError::Storage {
                    backend: self.snapshot.backend.clone(),
                    doing: format!("scanning {what}"),
                    message: format!("{written} key groups read, {count} counted"),
                }));
            }
            seq.end()
        }
        #[cfg(not(feature = "rocksdb"))]
        {
            let _ = (s, cf, layout, what);
            Err(self.fail(StateError::Unavailable("rocksdb")))
        }
    }
}

/// The keyed state of a [`FullSnapshotReader`].
pub struct StreamedKeyedState<'a>(&'a FullSnapshotReader<'a>);

/// One state of a [`FullSnapshotReader`], serialized as its `StateSnapshot`.
struct StreamedState<'a>(&'a FullSnapshotReader<'a>, &'a str, StateKind, RowLayout);

/// The states of a [`FullSnapshotReader`].
struct StreamedStates<'a>(&'a FullSnapshotReader<'a>);

/// The key groups of one column family.
struct StreamedGroups<'a>(&'a FullSnapshotReader<'a>, &'a str, RowLayout, String);

impl Serialize for StreamedKeyedState<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let snapshot = self.0.snapshot;
        let mut out = s.serialize_struct("KeyedStateSnapshot", 3)?;
        out.serialize_field("max_parallelism", &snapshot.max_parallelism)?;
        out.serialize_field("key_group_range", &snapshot.range)?;
        out.serialize_field("states", &StreamedStates(self.0))?;
        out.end()
    }
}

impl Serialize for StreamedStates<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let states = &self.0.snapshot.states;
        let mut seq = s.serialize_seq(Some(states.len()))?;
        for (name, kind, source) in states {
            match source {
                StateSource::Stored(layout) => {
                    seq.serialize_element(&StreamedState(self.0, name, *kind, *layout))?
                }
                StateSource::Pending(pending) => seq.serialize_element(pending)?,
            }
        }
        seq.end()
    }
}

impl Serialize for StreamedState<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self(reader, name, kind, layout) = *self;
        let mut out = s.serialize_struct("StateSnapshot", 3)?;
        out.serialize_field("name", name)?;
        out.serialize_field("kind", &kind)?;
        let what = format!("state '{name}'");
        out.serialize_field("key_groups", &StreamedGroups(reader, name, layout, what))?;
        out.end()
    }
}

impl Serialize for StreamedGroups<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_groups(s, self.1, self.2, &self.3)
    }
}

/// The timers of a [`FullSnapshotReader`]: the column families of event-time and
/// processing-time timers.
pub struct StreamedTimers<'a>(&'a FullSnapshotReader<'a>, (&'static str, &'static str));

impl Serialize for StreamedTimers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self(reader, (event_time, processing_time)) = *self;
        let snapshot = reader.snapshot;
        let timers = |cf: &'static str| StreamedGroups(reader, cf, RowLayout::Timer, cf.to_owned());
        let mut out = s.serialize_struct("TimerSnapshot", 4)?;
        out.serialize_field("max_parallelism", &snapshot.max_parallelism)?;
        out.serialize_field("key_group_range", &snapshot.range)?;
        out.serialize_field("event_time", &timers(event_time))?;
        out.serialize_field("processing_time", &timers(processing_time))?;
        out.end()
    }
}
