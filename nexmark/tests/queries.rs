//! Every Nexmark query on the mini-cluster (parallelism 2, two TaskManagers) over a fixed
//! seed, against a reference computed from the same events with plain collections; the
//! stateful queries also exactly-once through a failure, on both state backends.

mod common;
mod reference;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{env, events, CONFIG, EVENTS};
use weir_api::sink::{CollectSink, FileSink};
use weir_api::{DataStream, Record, RestartStrategy, StateBackendKind};
use weir_nexmark::{build, nexmark_events, nexmark_events_at, Event, Query, ResultSink};

/// Collects a query's rows as `Debug` strings.
#[derive(Default)]
struct Collect(Option<CollectSink<String>>);

impl ResultSink for Collect {
    fn sink<R: Record + Debug>(&mut self, _: Query, results: DataStream<R>) {
        self.0 = Some(results.map(|r| format!("{r:?}")).collect());
    }
}

/// The sorted rows of `query` over the test events.
fn run(query: Query) -> Vec<String> {
    let env = env(StateBackendKind::Memory);
    let mut sink = Collect::default();
    build(query, &nexmark_events(&env, CONFIG, EVENTS), &mut sink);
    env.execute(query.name()).unwrap();
    let mut rows = sink.0.unwrap().take();
    rows.sort();
    rows
}

fn check(query: Query, expected: Vec<String>) {
    common::assert_rows(query.name(), run(query), expected);
}

#[test]
fn q0_passes_every_bid_through() {
    check(Query::Q0, reference::q0(&events()));
}

#[test]
fn q1_converts_every_price_to_euros() {
    check(Query::Q1, reference::q1(&events()));
}

#[test]
fn q2_selects_the_bids_of_every_123rd_auction() {
    check(Query::Q2, reference::q2(&events()));
}

#[test]
fn q3_joins_category_10_auctions_with_sellers_in_or_id_ca() {
    check(Query::Q3, reference::q3(&events()));
}

#[test]
fn q5_finds_the_auctions_with_most_bids_per_sliding_window() {
    check(Query::Q5, reference::q5(&events()));
}

#[test]
fn q7_finds_the_highest_bids_per_window() {
    check(Query::Q7, reference::q7(&events()));
}

#[test]
fn q8_finds_persons_opening_an_auction_in_the_window_they_joined() {
    check(Query::Q8, reference::q8(&events()));
}

#[test]
fn q11_counts_each_bidders_bids_per_session() {
    check(Query::Q11, reference::q11(&events()));
}

#[test]
fn q12_counts_every_bid_once_in_processing_time_windows_of_ten_seconds() {
    let mut totals: BTreeMap<u64, u64> = BTreeMap::new();
    for row in run(Query::Q12) {
        // `(bidder, bids, start, end)`
        let fields: Vec<i64> = row
            .trim_matches(|c| c == '(' || c == ')')
            .split(", ")
            .map(|f| f.parse().unwrap())
            .collect();
        assert_eq!(fields[3] - fields[2], 10_000, "{row}");
        assert_eq!(fields[2].rem_euclid(10_000), 0, "{row}");
        *totals.entry(fields[0] as u64).or_default() += fields[1] as u64;
    }
    assert_eq!(totals, reference::q12_totals(&events()));
}

#[test]
fn q13_joins_every_bid_with_the_side_input() {
    check(Query::Q13, reference::q13(&events()));
}

#[test]
fn q14_classifies_the_bids_in_a_price_range() {
    check(Query::Q14, reference::q14(&events()));
}

#[test]
fn q20_expands_bids_on_category_10_auctions_with_the_auction() {
    check(Query::Q20, reference::q20(&events()));
}

#[test]
fn q21_extracts_channel_ids() {
    check(Query::Q21, reference::q21(&events()));
}

#[test]
fn q22_splits_urls_into_directories() {
    check(Query::Q22, reference::q22(&events()));
}

#[test]
fn query_names_parse_and_unknown_ones_are_refused_naming_them() {
    for q in Query::ALL {
        assert_eq!(q.name().parse::<Query>().unwrap(), q);
    }
    assert_eq!("Q5".parse::<Query>().unwrap(), Query::Q5);
    let err = "q6".parse::<Query>().unwrap_err().to_string();
    assert!(err.contains("'q6'") && err.contains("q22"), "{err}");
}

/// Writes a query's rows into committed files.
struct Files(std::path::PathBuf);

impl ResultSink for Files {
    fn sink<R: Record + Debug>(&mut self, query: Query, results: DataStream<R>) {
        results
            .map(|r| format!("{r:?}"))
            .sink_to_files(FileSink::with_formatter(&self.0, |l: &String| l.clone()))
            .uid(&format!("{query}-files"));
    }
}

fn committed_rows(dir: &std::path::Path) -> Vec<String> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{name} is not committed");
        rows.extend(
            std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    rows.sort();
    rows
}

fn backends() -> Vec<StateBackendKind> {
    let mut kinds = vec![StateBackendKind::Memory];
    if cfg!(feature = "rocksdb") {
        kinds.push(StateBackendKind::RocksDb);
    }
    kinds
}

#[test]
fn stateful_queries_are_exactly_once_through_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    let events = events();
    let cases = [
        (Query::Q3, reference::q3(&events)),
        (Query::Q5, reference::q5(&events)),
        (Query::Q20, reference::q20(&events)),
    ];
    for backend in backends() {
        for (query, expected) in &cases {
            SEEN.store(0, Ordering::SeqCst);
            FAILED.store(false, Ordering::SeqCst);
            let (checkpoints, out) = (tempfile(), tempfile());
            let env = env(backend);
            env.configure(|s| {
                s.job.restart_strategy = Some(RestartStrategy::FixedDelay {
                    attempts: 2,
                    delay: Duration::from_millis(100),
                });
            });
            env.enable_checkpointing(
                Duration::from_millis(50),
                &format!("file://{}", checkpoints.path().display()),
            );
            let stream = nexmark_events_at(&env, CONFIG, EVENTS, 20_000).map(|e: Event| {
                if SEEN.fetch_add(1, Ordering::SeqCst) == EVENTS / 2
                    && !FAILED.swap(true, Ordering::SeqCst)
                {
                    panic!("injected failure");
                }
                e
            });
            build(*query, &stream, &mut Files(out.path().to_owned()));
            let result = env.execute(query.name()).unwrap();
            assert!(FAILED.load(Ordering::SeqCst), "{query} {backend:?}: failed");
            assert!(
                matches!(result.restored_from.as_slice(), [Some(_)]),
                "{query} {backend:?}: one restart from a checkpoint"
            );
            let rows = committed_rows(out.path());
            assert!(
                &rows == expected,
                "{query} {backend:?}: {} rows against {}",
                rows.len(),
                expected.len()
            );
        }
    }
}

fn tempfile() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
