//! The Nexmark queries whose results are updated as events come (q4, q9, q15 to q19):
//! on the mini-cluster over a fixed seed, each group's latest row against a reference
//! computed from the same events with plain collections.

mod common;
mod reference;

use std::collections::BTreeMap;
use std::fmt::Debug;

use common::{assert_rows as check, events, events_of, run_typed, run_typed_of, CONFIG};
use weir_nexmark::queries::{q15, q16, q17, q18, q19, q4, q9};
use weir_nexmark::{Bid, NexmarkConfig};

/// The sorted `Debug` strings of the rows that are latest per key, by `version`.
fn latest<R: Debug, K: Ord, V: Ord>(
    rows: Vec<R>,
    key: impl Fn(&R) -> K,
    version: impl Fn(&R) -> V,
) -> Vec<String> {
    let mut by_key: BTreeMap<K, R> = BTreeMap::new();
    for row in rows {
        let k = key(&row);
        match by_key.get(&k) {
            Some(kept) if version(kept) >= version(&row) => {}
            _ => {
                by_key.insert(k, row);
            }
        }
    }
    let mut out: Vec<String> = by_key.values().map(|r| format!("{r:?}")).collect();
    out.sort();
    out
}

#[test]
fn q4_averages_the_closing_prices_of_each_category() {
    let rows = latest(run_typed(q4), |r| r.0, |r| r.2);
    let rows = rows
        .into_iter()
        .map(|r| {
            // `(category, average, version)` -> `(category, average)`
            let fields: Vec<&str> = r.trim_matches(['(', ')']).split(", ").collect();
            format!("({}, {})", fields[0], fields[1])
        })
        .collect();
    check("q4", rows, reference::q4(&events()));
}

#[test]
fn q9_finds_the_winning_bid_of_each_auction_in_its_last_row() {
    // Rows of one auction come from one subtask, in the order it emitted them: the last
    // one must be the winner, and every earlier one a worse bid.
    let rank = |b: &Bid| (b.price, std::cmp::Reverse((b.date_time, b.bidder)));
    let mut last: BTreeMap<u64, (weir_nexmark::Auction, Bid)> = BTreeMap::new();
    for (a, b) in run_typed(q9) {
        if let Some((_, before)) = last.get(&a.id) {
            assert!(
                rank(&b) > rank(before),
                "auction {}: {b:?} after {before:?}",
                a.id
            );
        }
        last.insert(a.id, (a, b));
    }
    let mut rows: Vec<String> = last.values().map(|r| format!("{r:?}")).collect();
    rows.sort();
    check("q9", rows, reference::q9(&events()));
}

#[test]
fn q15_counts_bids_bidders_and_auctions_per_day_and_price_rank() {
    let rows = latest(run_typed(q15), |s| s.day.clone(), |s| s.bids[0]);
    check("q15", rows, reference::q15(&events()));
}

#[test]
fn q16_counts_per_channel_and_day_with_the_latest_minute() {
    // Also for days before 1970, whose bid times are negative.
    let before_1970 = NexmarkConfig {
        base_time: -3 * 86_400_000 + 3_600_000,
        ..CONFIG
    };
    for config in [CONFIG, before_1970] {
        let rows = latest(
            run_typed_of(config, q16),
            |(c, s)| (c.clone(), s.day.clone()),
            |(_, s)| s.bids[0],
        );
        check("q16", rows, reference::q16(&events_of(config)));
    }
}

#[test]
fn q17_keeps_price_statistics_per_auction_and_day() {
    let rows = latest(
        run_typed(q17),
        |s| (s.auction, s.day.clone()),
        |s| s.bids[0],
    );
    check("q17", rows, reference::q17(&events()));
}

#[test]
fn q18_keeps_each_bidders_latest_bid_per_auction() {
    let rows = latest(run_typed(q18), |b| (b.bidder, b.auction), |b| b.date_time);
    check("q18", rows, reference::q18(&events()));
}

#[test]
fn q19_keeps_the_ten_highest_bids_of_each_auction() {
    let mut top: BTreeMap<u64, (u64, Vec<u64>)> = BTreeMap::new();
    for (auction, version, bids) in run_typed(q19) {
        let prices = bids.iter().map(|b| b.price).collect();
        let slot = top.entry(auction).or_insert((0, Vec::new()));
        if version > slot.0 {
            *slot = (version, prices);
        }
    }
    let top: BTreeMap<u64, Vec<u64>> = top.into_iter().map(|(a, (_, p))| (a, p)).collect();
    let expected = reference::q19_prices(&events());
    assert!(!expected.is_empty());
    assert_eq!(top, expected);
}
