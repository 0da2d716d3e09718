//! Compaction filters that drop expired state (state time-to-live) from RocksDB.
//!
//! Every state's column family is opened with a compaction filter reading that state's
//! slot. The slot is empty until a state with a time to live registers: from then on
//! compactions remove each row its predicate calls expired. A column family opened
//! before registration (a restored database) is covered the same way, because its slot
//! exists from the moment the column family is opened.
//!
//! Invariants:
//! - A filter lives as long as the database that uses it: options passed to
//!   `create_cf` are kept here, and the instance drops this after its database.
//! - A slot is set at most once; the first registration of a state decides its filter.
//! - RocksDB filters stored values, never merge operands nor the value a compaction
//!   merges them into: a list appended to since its last compaction is filtered by
//!   the compaction after the one that merged its appends.
//! - The predicate only ever sees one row's stored value (or one merge operand of a list)
//!   and runs on RocksDB's background threads, so it shares nothing mutable.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use rocksdb::{CompactionDecision, Options};
use rustc_hash::FxHashMap;

use crate::ttl::ExpiredFn;

type Slot = Arc<OnceLock<ExpiredFn>>;

/// The expiry predicates of one database's column families, by state name.
#[derive(Default)]
pub(crate) struct ExpiryFilters {
    slots: RefCell<FxHashMap<String, Slot>>,
    /// The options of column families created with `create_cf`, which does not keep
    /// them: their filters must outlive the database (dropped after it).
    created: RefCell<Vec<Options>>,
}

impl ExpiryFilters {
    fn slot(&self, name: &str) -> Slot {
        Arc::clone(self.slots.borrow_mut().entry(name.to_owned()).or_default())
    }

    /// The options of the column family of state `name`: `base` with the state's
    /// compaction filter.
    pub(crate) fn options_for(&self, base: &Options, name: &str) -> Options {
        let slot = self.slot(name);
        let mut options = base.clone();
        options.set_compaction_filter(
            "weir-state-ttl",
            move |_level: u32, _key: &[u8], value: &[u8]| match slot.get() {
                Some(expired) if expired(value) => CompactionDecision::Remove,
                _ => CompactionDecision::Keep,
            },
        );
        options
    }

    /// Keeps `options`, which a column family was created with, while the database is
    /// open.
    pub(crate) fn keep(&self, options: Options) {
        self.created.borrow_mut().push(options);
    }

    /// From now on compactions of state `name` drop the rows `expired` accepts.
    pub(crate) fn set(&self, name: &str, expired: ExpiredFn) {
        // A second registration of the same state keeps the first predicate.
        let _ = self.slot(name).set(expired);
    }
}
