//! Each query's results computed from the events with plain collections, independently
//! of the jobs: what a SQL engine would compute for Flink's query text, one row per
//! `Debug` string.

use std::collections::{BTreeMap, HashMap, HashSet};

use weir_nexmark::queries::{ClassifiedBid, ConvertedBid};
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
