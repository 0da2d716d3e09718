//! The queries without state: q0 (pass-through), q1 (currency conversion), q2
//! (selection), q13 (bounded side input join), q14 (calculation), q21 (channel id) and q22
//! (URL directories), as Flink's Nexmark SQL defines them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_api::DataStream;

use crate::model::{Bid, Event};

/// Dollars to euros, as q1 and q14 convert.
pub const EURO_PER_DOLLAR: f64 = 0.908;

/// The bids of `events`.
pub fn bids(events: &DataStream<Event>) -> DataStream<Bid> {
    events.flat_map(Event::bid)
}

/// q0: every bid, unchanged.
pub fn q0(events: &DataStream<Event>) -> DataStream<Bid> {
    bids(events)
}

/// A bid with its price converted (q1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvertedBid {
    /// The auction.
    pub auction: u64,
    /// The bidder.
    pub bidder: u64,
    /// The price in euro cents.
    pub price: f64,
    /// Event time, ms.
    pub date_time: i64,
    /// The bid's padding.
    pub extra: String,
}

/// q1: every bid with its price in euros.
pub fn q1(events: &DataStream<Event>) -> DataStream<ConvertedBid> {
    bids(events).map(|b| ConvertedBid {
        auction: b.auction,
        bidder: b.bidder,
        price: EURO_PER_DOLLAR * b.price as f64,
        date_time: b.date_time,
        extra: b.extra,
    })
}

/// q2: `(auction, price)` of the bids on every 123rd auction.
pub fn q2(events: &DataStream<Event>) -> DataStream<(u64, u64)> {
    events.flat_map(|e| match e {
        Event::Bid(b) if b.auction % 123 == 0 => Some((b.auction, b.price)),
        _ => None,
    })
}

/// The side input of q13: the value of each key in `0..10_000` (its decimal digits).
pub fn side_input() -> Arc<Vec<String>> {
    Arc::new((0..10_000u64).map(|k| k.to_string()).collect())
}

/// q13: every bid joined with the side input's value of `auction % 10_000`:
/// `(auction, bidder, price, date_time, value)`.
pub fn q13(events: &DataStream<Event>) -> DataStream<(u64, u64, u64, i64, String)> {
    let side = side_input();
    bids(events).map(move |b| {
        let value = side[(b.auction % side.len() as u64) as usize].clone();
        (b.auction, b.bidder, b.price, b.date_time, value)
    })
}

/// A bid of q14.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifiedBid {
    /// The auction.
    pub auction: u64,
    /// The bidder.
    pub bidder: u64,
    /// The price in euro cents.
    pub price: f64,
    /// `dayTime` (8:00 to 18:59), `nightTime` (to 6:59 and from 20:00) or `otherTime`.
    pub bid_time_type: String,
    /// Event time, ms.
    pub date_time: i64,
    /// The bid's padding.
    pub extra: String,
    /// How many `c`s `extra` has.
    pub c_counts: usize,
}

/// The hour of the day (UTC) of a time in ms.
pub fn hour_of(date_time: i64) -> i64 {
    date_time.div_euclid(3_600_000).rem_euclid(24)
}

/// q14: bids between €10,000 and €500,000, classified by the hour they came in.
pub fn q14(events: &DataStream<Event>) -> DataStream<ClassifiedBid> {
    events.flat_map(|e| {
        let b = e.bid()?;
        let price = EURO_PER_DOLLAR * b.price as f64;
        if price <= 1_000_000.0 || price >= 50_000_000.0 {
            return None;
        }
        let bid_time_type = match hour_of(b.date_time) {
            8..=18 => "dayTime",
            h if h <= 6 || h >= 20 => "nightTime",
            _ => "otherTime",
        };
        Some(ClassifiedBid {
            auction: b.auction,
            bidder: b.bidder,
            price,
            bid_time_type: bid_time_type.to_owned(),
            date_time: b.date_time,
            c_counts: b.extra.bytes().filter(|&c| c == b'c').count(),
            extra: b.extra,
        })
    })
}

/// The channel id of a bid (q21): fixed for the four hot channels, else the URL's
/// `channel_id` parameter; `None` if it has none.
pub fn channel_id(channel: &str, url: &str) -> Option<String> {
    let fixed = match channel.to_ascii_lowercase().as_str() {
        "apple" => Some("0"),
        "google" => Some("1"),
        "facebook" => Some("2"),
        "baidu" => Some("3"),
        _ => None,
    };
    if let Some(id) = fixed {
        return Some(id.to_owned());
    }
    let mut from = 0;
    while let Some(at) = url[from..].find("channel_id=") {
        let start = from + at;
        if start == 0 || url.as_bytes()[start - 1] == b'&' {
            let value = &url[start + "channel_id=".len()..];
            return Some(value.split('&').next().unwrap_or("").to_owned());
        }
        from = start + 1;
    }
    None
}

/// q21: `(auction, bidder, price, channel, channel_id)` of every bid with a channel id.
pub fn q21(events: &DataStream<Event>) -> DataStream<(u64, u64, u64, String, String)> {
    events.flat_map(|e| {
        let b = e.bid()?;
        let id = channel_id(&b.channel, &b.url)?;
        Some((b.auction, b.bidder, b.price, b.channel, id))
    })
}

/// The `index`-th part of `url` split at `/` (q22's `SPLIT_INDEX`).
pub fn split_index(url: &str, index: usize) -> Option<String> {
    url.split('/').nth(index).map(str::to_owned)
}

/// A bid with its URL's directories (q22).
pub type BidDirectories = (
    u64,
    u64,
    u64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// q22: `(auction, bidder, price, channel, dir1, dir2, dir3)` of every bid.
pub fn q22(events: &DataStream<Event>) -> DataStream<BidDirectories> {
    bids(events).map(|b| {
        let dirs = [3, 4, 5].map(|i| split_index(&b.url, i));
        let [d1, d2, d3] = dirs;
        (b.auction, b.bidder, b.price, b.channel, d1, d2, d3)
    })
}
