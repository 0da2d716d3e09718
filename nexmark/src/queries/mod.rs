//! The Nexmark queries as Weir jobs, named and numbered as in Flink's Nexmark suite.
//!
//! Each query is a function from the event stream to its result stream;
//! [`build`] picks one by [`Query`] and hands its results to a [`ResultSink`] (the
//! benchmark discards them, tests collect them).
//!
//! Invariant: each query's results are those of Flink's SQL query over the same events,
//! up to the form of a row (the window bounds are part of windowed results).

mod auctions;
mod daily;
mod joins;
mod ranks;
mod stateless;
mod windows;

use std::fmt;
use std::str::FromStr;

use weir_api::{DataStream, Record};

pub use auctions::{best_bids, q4, q9, BestBid, CategoryAverage};
pub use daily::{
    day_of, price_rank, q15, q16, q17, AuctionDay, DailyStats, Ranked, RANK1_BELOW, RANK2_BELOW,
};
pub use joins::{q20, q3, LocalItem, CATEGORY, Q3_STATES};
pub use ranks::{q18, q19, TopBids, TOP};
pub use stateless::{
    bids, channel_id, hour_of, q0, q1, q13, q14, q2, q21, q22, side_input, split_index,
    BidDirectories, ClassifiedBid, ConvertedBid, EURO_PER_DOLLAR,
};
pub use windows::{
    q11, q12, q5, q7, q8, window_start, BidderWindow, HotItem, Maxima, NewUser, SLIDE, WINDOW,
};

use crate::model::Event;

/// A Nexmark query this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Query {
    /// Pass-through.
    Q0,
    /// Currency conversion.
    Q1,
    /// Selection.
    Q2,
    /// Local item suggestion (join).
    Q3,
    /// Average price for a category (join, aggregation with retraction).
    Q4,
    /// Hot items (sliding windows).
    Q5,
    /// Highest bid (tumbling windows).
    Q7,
    /// Monitor new users (window join).
    Q8,
    /// Winning bids (join, top 1).
    Q9,
    /// User sessions (session windows).
    Q11,
    /// Processing-time windows.
    Q12,
    /// Bounded side input join.
    Q13,
    /// Calculation.
    Q14,
    /// Bidding statistics per day.
    Q15,
    /// Channel statistics per day.
    Q16,
    /// Auction statistics per day.
    Q17,
    /// Find last bid (deduplication).
    Q18,
    /// Auction top-10 price (top N).
    Q19,
    /// Expand bid with auction (join).
    Q20,
    /// Add channel id.
    Q21,
    /// Get URL directories.
    Q22,
}

impl Query {
    /// Every query, in number order.
    pub const ALL: [Query; 21] = [
        Query::Q0,
        Query::Q1,
        Query::Q2,
        Query::Q3,
        Query::Q4,
        Query::Q5,
        Query::Q7,
        Query::Q8,
        Query::Q9,
        Query::Q11,
        Query::Q12,
        Query::Q13,
        Query::Q14,
        Query::Q15,
        Query::Q16,
        Query::Q17,
        Query::Q18,
        Query::Q19,
        Query::Q20,
        Query::Q21,
        Query::Q22,
    ];

    /// The query's name, `q0` to `q22`.
    pub fn name(self) -> &'static str {
        match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q3 => "q3",
            Query::Q4 => "q4",
            Query::Q5 => "q5",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
            Query::Q9 => "q9",
            Query::Q11 => "q11",
            Query::Q12 => "q12",
            Query::Q13 => "q13",
            Query::Q14 => "q14",
            Query::Q15 => "q15",
            Query::Q16 => "q16",
            Query::Q17 => "q17",
            Query::Q18 => "q18",
            Query::Q19 => "q19",
            Query::Q20 => "q20",
            Query::Q21 => "q21",
            Query::Q22 => "q22",
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A query name that names no implemented query.
#[derive(Debug, thiserror::Error)]
#[error("unknown Nexmark query '{given}': expected one of {}", supported())]
pub struct UnknownQuery {
    /// What was given.
    pub given: String,
}

fn supported() -> String {
    let names: Vec<&str> = Query::ALL.iter().map(|q| q.name()).collect();
    names.join(", ")
}

impl FromStr for Query {
    type Err = UnknownQuery;
    fn from_str(s: &str) -> Result<Self, UnknownQuery> {
        let lower = s.trim().to_ascii_lowercase();
        Query::ALL
            .into_iter()
            .find(|q| q.name() == lower)
            .ok_or_else(|| UnknownQuery {
                given: s.to_owned(),
            })
    }
}

/// Where [`build`] sends a query's results.
pub trait ResultSink {
    /// Takes the results of `query`.
    fn sink<R: Record + fmt::Debug>(&mut self, query: Query, results: DataStream<R>);
}

/// Adds `query` over `events` to their job, its results into `sink`.
pub fn build(query: Query, events: &DataStream<Event>, sink: &mut impl ResultSink) {
    match query {
        Query::Q0 => sink.sink(query, q0(events)),
        Query::Q1 => sink.sink(query, q1(events)),
        Query::Q2 => sink.sink(query, q2(events)),
        Query::Q3 => sink.sink(query, q3(events)),
        Query::Q4 => sink.sink(query, q4(events)),
        Query::Q5 => sink.sink(query, q5(events)),
        Query::Q7 => sink.sink(query, q7(events)),
        Query::Q8 => sink.sink(query, q8(events)),
        Query::Q9 => sink.sink(query, q9(events)),
        Query::Q11 => sink.sink(query, q11(events)),
        Query::Q12 => sink.sink(query, q12(events)),
        Query::Q13 => sink.sink(query, q13(events)),
        Query::Q14 => sink.sink(query, q14(events)),
        Query::Q15 => sink.sink(query, q15(events)),
        Query::Q16 => sink.sink(query, q16(events)),
        Query::Q17 => sink.sink(query, q17(events)),
        Query::Q18 => sink.sink(query, q18(events)),
        Query::Q19 => sink.sink(query, q19(events)),
        Query::Q20 => sink.sink(query, q20(events)),
        Query::Q21 => sink.sink(query, q21(events)),
        Query::Q22 => sink.sink(query, q22(events)),
    }
}
