//! Each query's results computed from the events with plain collections, independently
//! of the jobs: what a SQL engine would compute for Flink's query text, one row per
//! `Debug` string.

// Each test crate uses only some of these.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};

use weir_nexmark::queries::{AuctionDay, ClassifiedBid, ConvertedBid, DailyStats};
use weir_nexmark::{Auction, Bid, Event, Person};

const WINDOW: i64 = 10_000;
const SLIDE: i64 = 2_000;

fn bids(events: &[Event]) -> impl Iterator<Item = &Bid> {
    events.iter().filter_map(|e| match e {
        Event::Bid(b) => Some(b),
        _ => None,
    })
}

fn persons(events: &[Event]) -> impl Iterator<Item = &Person> {
    events.iter().filter_map(|e| match e {
        Event::Person(p) => Some(p),
        _ => None,
    })
}

fn auctions(events: &[Event]) -> impl Iterator<Item = &Auction> {
    events.iter().filter_map(|e| match e {
        Event::Auction(a) => Some(a),
        _ => None,
    })
}

fn rows<T: std::fmt::Debug>(rows: impl IntoIterator<Item = T>) -> Vec<String> {
    let mut out: Vec<String> = rows.into_iter().map(|r| format!("{r:?}")).collect();
    out.sort();
    out
}

pub fn q0(events: &[Event]) -> Vec<String> {
    rows(bids(events))
}

pub fn q1(events: &[Event]) -> Vec<String> {
    rows(bids(events).map(|b| ConvertedBid {
        auction: b.auction,
        bidder: b.bidder,
        price: 0.908 * b.price as f64,
        date_time: b.date_time,
        extra: b.extra.clone(),
    }))
}

pub fn q2(events: &[Event]) -> Vec<String> {
    rows(
        bids(events)
            .filter(|b| b.auction % 123 == 0)
            .map(|b| (b.auction, b.price)),
    )
}

pub fn q3(events: &[Event]) -> Vec<String> {
    let sellers: HashMap<u64, &Person> = persons(events)
        .filter(|p| matches!(p.state.as_str(), "OR" | "ID" | "CA"))
        .map(|p| (p.id, p))
        .collect();
    rows(
        auctions(events)
            .filter(|a| a.category == 10)
            .filter_map(|a| {
                let p = sellers.get(&a.seller)?;
                Some((p.name.clone(), p.city.clone(), p.state.clone(), a.id))
            }),
    )
}

/// Per window end, items with the value they are ranked by.
type ByWindow<T> = BTreeMap<i64, Vec<(u64, T)>>;

/// The (end, item) rows of each window end's items with the largest value.
fn maxima<T: Clone>(by_window: ByWindow<T>) -> Vec<(i64, T)> {
    let mut out = Vec::new();
    for (end, items) in by_window {
        let max = items.iter().map(|(v, _)| *v).max().unwrap_or(0);
        out.extend(
            items
                .into_iter()
                .filter(|(v, _)| *v == max)
                .map(|(_, t)| (end, t)),
        );
    }
    out
}

pub fn q5(events: &[Event]) -> Vec<String> {
    let mut counts: HashMap<(i64, u64), u64> = HashMap::new();
    for b in bids(events) {
        let mut start = b.date_time - b.date_time.rem_euclid(SLIDE);
        while start > b.date_time - WINDOW {
            *counts.entry((start + WINDOW, b.auction)).or_default() += 1;
            start -= SLIDE;
        }
    }
    let mut by_window: ByWindow<(u64, u64)> = BTreeMap::new();
    for ((end, auction), n) in counts {
        by_window.entry(end).or_default().push((n, (auction, n)));
    }
    rows(
        maxima(by_window)
            .into_iter()
            .map(|(end, (a, n))| (end, a, n)),
    )
}

pub fn q7(events: &[Event]) -> Vec<String> {
    let mut by_window: ByWindow<Bid> = BTreeMap::new();
    for b in bids(events) {
        let end = b.date_time - b.date_time.rem_euclid(WINDOW) + WINDOW;
        by_window.entry(end).or_default().push((b.price, b.clone()));
    }
    rows(maxima(by_window))
}

pub fn q8(events: &[Event]) -> Vec<String> {
    let window = |t: i64| t - t.rem_euclid(WINDOW);
    let opened: HashSet<(u64, i64)> = auctions(events)
        .map(|a| (a.seller, window(a.date_time)))
        .collect();
    rows(persons(events).filter_map(|p| {
        let start = window(p.date_time);
        opened
            .contains(&(p.id, start))
            .then(|| (p.id, p.name.clone(), start))
    }))
}

pub fn q11(events: &[Event]) -> Vec<String> {
    let mut times: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for b in bids(events) {
        times.entry(b.bidder).or_default().push(b.date_time);
    }
    let mut out = Vec::new();
    for (bidder, mut ts) in times {
        ts.sort_unstable();
        let (mut start, mut last, mut n) = (ts[0], ts[0], 0u64);
        for t in ts {
            if t > last + WINDOW {
                out.push((bidder, n, start, last + WINDOW));
                (start, n) = (t, 0);
            }
            last = t;
            n += 1;
        }
        out.push((bidder, n, start, last + WINDOW));
    }
    rows(out)
}

/// Bids per bidder (q12's windows are in processing time, so only totals are fixed).
pub fn q12_totals(events: &[Event]) -> BTreeMap<u64, u64> {
    let mut totals = BTreeMap::new();
    for b in bids(events) {
        *totals.entry(b.bidder).or_default() += 1;
    }
    totals
}

pub fn q13(events: &[Event]) -> Vec<String> {
    rows(bids(events).map(|b| {
        let value = (b.auction % 10_000).to_string();
        (b.auction, b.bidder, b.price, b.date_time, value)
    }))
}

pub fn q14(events: &[Event]) -> Vec<String> {
    rows(bids(events).filter_map(|b| {
        let price = 0.908 * b.price as f64;
        if !(price > 1_000_000.0 && price < 50_000_000.0) {
            return None;
        }
        let hour = (b.date_time / 1000 / 3600) % 24;
        let kind = if (8..=18).contains(&hour) {
            "dayTime"
        } else if hour <= 6 || hour >= 20 {
            "nightTime"
        } else {
            "otherTime"
        };
        Some(ClassifiedBid {
            auction: b.auction,
            bidder: b.bidder,
            price,
            bid_time_type: kind.to_owned(),
            date_time: b.date_time,
            extra: b.extra.clone(),
            c_counts: b.extra.matches('c').count(),
        })
    }))
}

pub fn q20(events: &[Event]) -> Vec<String> {
    let tens: HashMap<u64, &Auction> = auctions(events)
        .filter(|a| a.category == 10)
        .map(|a| (a.id, a))
        .collect();
    rows(bids(events).filter_map(|b| Some((b.clone(), (*tens.get(&b.auction)?).clone()))))
}

pub fn q21(events: &[Event]) -> Vec<String> {
    rows(bids(events).filter_map(|b| {
        let id = match b.channel.to_lowercase().as_str() {
            "apple" => "0".to_owned(),
            "google" => "1".to_owned(),
            "facebook" => "2".to_owned(),
            "baidu" => "3".to_owned(),
            _ => {
                let query = b.url.split_once('?').map_or("", |(_, q)| q);
                let param = query.split('&').find(|p| p.starts_with("channel_id="))?;
                param["channel_id=".len()..].to_owned()
            }
        };
        Some((b.auction, b.bidder, b.price, b.channel.clone(), id))
    }))
}

pub fn q22(events: &[Event]) -> Vec<String> {
    rows(bids(events).map(|b| {
        let parts: Vec<&str> = b.url.split('/').collect();
        let dir = |i: usize| parts.get(i).map(|s| s.to_string());
        (
            b.auction,
            b.bidder,
            b.price,
            b.channel.clone(),
            dir(3),
            dir(4),
            dir(5),
        )
    }))
}

/// Whether `b` is in the time of `a` (between its start and expiry).
fn in_time(a: &Auction, b: &Bid) -> bool {
    a.date_time <= b.date_time && b.date_time <= a.expires
}

/// Each auction's best bid in its time: highest price, then earliest, then lowest bidder.
pub fn winners(events: &[Event]) -> Vec<(Auction, Bid)> {
    let all: HashMap<u64, &Auction> = auctions(events).map(|a| (a.id, a)).collect();
    let mut best: BTreeMap<u64, &Bid> = BTreeMap::new();
    for b in bids(events) {
        let Some(a) = all.get(&b.auction) else {
            continue;
        };
        if !in_time(a, b) {
            continue;
        }
        let rank = |x: &Bid| (x.price, std::cmp::Reverse((x.date_time, x.bidder)));
        let slot = best.entry(a.id).or_insert(b);
        if rank(b) > rank(slot) {
            *slot = b;
        }
    }
    best.into_iter()
        .map(|(id, b)| ((*all[&id]).clone(), b.clone()))
        .collect()
}

pub fn q4(events: &[Event]) -> Vec<String> {
    let mut per_category: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (a, b) in winners(events) {
        let (sum, n) = per_category.entry(a.category).or_default();
        *sum += b.price;
        *n += 1;
    }
    rows(per_category.into_iter().map(|(c, (sum, n))| (c, sum / n)))
}

pub fn q9(events: &[Event]) -> Vec<String> {
    rows(winners(events))
}

/// `[total, rank 1, rank 2, rank 3]` index of a price.
fn rank(price: u64) -> usize {
    if price < 10_000 {
        1
    } else if price < 1_000_000 {
        2
    } else {
        3
    }
}

fn day(t: i64) -> String {
    weir_nexmark::sql_timestamp(t)[..10].to_owned()
}

/// q15's or q16's statistics of some bids.
fn daily(day: String, group: &[&Bid], with_minute: bool) -> DailyStats {
    let mut s = DailyStats {
        day,
        ..DailyStats::default()
    };
    let mut bidders: [HashSet<u64>; 4] = Default::default();
    let mut auctions: [HashSet<u64>; 4] = Default::default();
    for b in group {
        for i in [0, rank(b.price)] {
            s.bids[i] += 1;
            bidders[i].insert(b.bidder);
            auctions[i].insert(b.auction);
        }
    }
    s.bidders = bidders.map(|set| set.len() as u64);
    s.auctions = auctions.map(|set| set.len() as u64);
    if with_minute {
        s.minute = group
            .iter()
            .map(|b| weir_nexmark::sql_timestamp(b.date_time)[11..16].to_owned())
            .max();
    }
    s
}

pub fn q15(events: &[Event]) -> Vec<String> {
    let mut days: BTreeMap<String, Vec<&Bid>> = BTreeMap::new();
    for b in bids(events) {
        days.entry(day(b.date_time)).or_default().push(b);
    }
    rows(days.into_iter().map(|(d, group)| daily(d, &group, false)))
}

pub fn q16(events: &[Event]) -> Vec<String> {
    let mut groups: BTreeMap<(String, String), Vec<&Bid>> = BTreeMap::new();
    for b in bids(events) {
        let key = (b.channel.clone(), day(b.date_time));
        groups.entry(key).or_default().push(b);
    }
    rows(
        groups
            .into_iter()
            .map(|((c, d), group)| (c, daily(d, &group, true))),
    )
}

pub fn q17(events: &[Event]) -> Vec<String> {
    let mut groups: BTreeMap<(u64, String), Vec<u64>> = BTreeMap::new();
    for b in bids(events) {
        groups
            .entry((b.auction, day(b.date_time)))
            .or_default()
            .push(b.price);
    }
    rows(groups.into_iter().map(|((auction, day), prices)| {
        let mut bids = [prices.len() as u64, 0, 0, 0];
        prices.iter().for_each(|p| bids[rank(*p)] += 1);
        let sum: u64 = prices.iter().sum();
        AuctionDay {
            auction,
            day,
            bids,
            min_price: *prices.iter().min().unwrap(),
            max_price: *prices.iter().max().unwrap(),
            avg_price: sum / prices.len() as u64,
            sum_price: sum,
        }
    }))
}

pub fn q18(events: &[Event]) -> Vec<String> {
    let mut last: HashMap<(u64, u64), &Bid> = HashMap::new();
    for b in bids(events) {
        let slot = last.entry((b.bidder, b.auction)).or_insert(b);
        if b.date_time >= slot.date_time {
            *slot = b;
        }
    }
    rows(last.into_values())
}

/// Each auction's ten highest prices, highest first.
pub fn q19_prices(events: &[Event]) -> BTreeMap<u64, Vec<u64>> {
    let mut prices: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for b in bids(events) {
        prices.entry(b.auction).or_default().push(b.price);
    }
    for p in prices.values_mut() {
        p.sort_unstable_by(|a, b| b.cmp(a));
        p.truncate(10);
    }
    prices
}
