//! The windowed queries: q5 (hot items), q7 (highest bid), q8 (monitor new users), q11
//! (user sessions) and q12 (processing-time windows), as Flink's Nexmark SQL defines
//! them.
//!
//! Invariant: a per-window maximum (q5, q7) is computed in two steps, as Flink's
//! local-global aggregation does: partial results per key and window, then one keyed
//! step per window that emits when the watermark passes the window's end (a timer at its
//! last millisecond), so it has seen every partial result of the window.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_api::functions::{FnResult, KeyedContext, KeyedProcessFunction, RuntimeContext};
use weir_api::window::{
    EventTimeSessionWindows, SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
};
use weir_api::{AggregateFunction, DataStream, ValueState, VoidNamespace};

use super::stateless::bids;
use crate::model::{Bid, Event};

/// The windows of q7, q8 and q12, and the session gap of q11.
pub const WINDOW: Duration = Duration::from_secs(10);

/// The slide of q5's windows (of [`WINDOW`]).
pub const SLIDE: Duration = Duration::from_secs(2);

/// Counts bids (of any projection).
#[derive(Clone, Copy)]
struct CountBids;

impl<T> AggregateFunction<T, u64, u64> for CountBids {
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, _: T, acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// One field of each bid of `events`: what a query that counts bids needs of them, kept
/// before the exchange (as Flink's planner projects its source).
fn bid_field(events: &DataStream<Event>, field: fn(&Bid) -> u64) -> DataStream<u64> {
    events.flat_map(move |e| match e {
        Event::Bid(b) => Some(field(&b)),
        _ => None,
    })
}

/// The largest value seen and the items that have it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Maxima<T> {
    /// The largest value.
    pub value: u64,
    /// The items with it.
    pub items: Vec<T>,
}

impl<T> Default for Maxima<T> {
    fn default() -> Self {
        Self {
            value: 0,
            items: Vec::new(),
        }
    }
}

impl<T> Maxima<T> {
    fn offer(&mut self, value: u64, item: T) {
        if value > self.value || self.items.is_empty() {
            self.value = value;
            self.items.clear();
        }
        if value == self.value {
            self.items.push(item);
        }
    }

    fn absorb(&mut self, other: Maxima<T>) {
        for item in other.items {
            self.offer(other.value, item);
        }
    }
}

/// Emits, per window end, the items with the largest value once the window is complete.
#[derive(Clone)]
struct MaximaPerWindow;

impl<T: Clone + Serialize + serde::de::DeserializeOwned + Send + 'static>
    KeyedProcessFunction<i64, (i64, Maxima<T>), (i64, T)> for MaximaPerWindow
{
    type State = ValueState<i64, VoidNamespace, Maxima<T>>;
    fn open(&mut self, ctx: &RuntimeContext<i64>) -> FnResult<Self::State> {
        ctx.value_state("maxima")
    }
    fn process_element(
        &mut self,
        (end, partial): (i64, Maxima<T>),
        state: &mut Self::State,
        ctx: &mut KeyedContext<'_, i64, (i64, T)>,
    ) -> FnResult {
        let fresh = state.modify(|m| {
            let fresh = m.is_none();
            m.get_or_insert_with(Maxima::default).absorb(partial);
            fresh
        })?;
        if fresh {
            ctx.register_event_time_timer(end - 1);
        }
        Ok(())
    }
    fn on_timer(
        &mut self,
        _: i64,
        state: &mut Self::State,
        ctx: &mut KeyedContext<'_, i64, (i64, T)>,
    ) -> FnResult {
        let end = *ctx.current_key();
        let maxima = state.value()?.unwrap_or_default();
        state.clear()?;
        for item in maxima.items {
            ctx.collect((end, item));
        }
        Ok(())
    }
}

/// A result of q5: `(window end, auction, bids)`.
pub type HotItem = (i64, u64, u64);

/// q5: per 10 s window sliding by 2 s, the auctions with the most bids.
pub fn q5(events: &DataStream<Event>) -> DataStream<HotItem> {
    bid_field(events, |b| b.auction)
        .key_by(|a: &u64| *a)
        .window(SlidingEventTimeWindows::of(WINDOW, SLIDE))
        .aggregate_with_window(CountBids, |a: &u64, w: &TimeWindow, n: u64| {
            let mut m = Maxima::default();
            m.offer(n, (*a, n));
            (w.end, m)
        })
        .key_by(|r: &(i64, Maxima<(u64, u64)>)| r.0)
        .process(MaximaPerWindow)
        .map(|(end, (auction, n)): (i64, (u64, u64))| (end, auction, n))
}

/// Keeps the highest bids.
#[derive(Clone, Copy)]
struct HighestBids;

impl AggregateFunction<Bid, Maxima<Bid>, Maxima<Bid>> for HighestBids {
    fn create_accumulator(&self) -> Maxima<Bid> {
        Maxima::default()
    }
    fn add(&self, b: Bid, acc: &mut Maxima<Bid>) {
        acc.offer(b.price, b);
    }
    fn get_result(&self, acc: &Maxima<Bid>) -> Maxima<Bid> {
        acc.clone()
    }
    fn take_result(&self, acc: Maxima<Bid>) -> Maxima<Bid> {
        acc
    }
    fn merge(&self, mut a: Maxima<Bid>, b: Maxima<Bid>) -> Maxima<Bid> {
        a.absorb(b);
        a
    }
}

/// Partitions of q7's first step.
const PARTITIONS: u64 = 256;

/// q7: per 10 s tumbling window, the bids with the highest price, with the window's end.
///
/// A window's bids are those of `[start, end)`. Flink's SQL joins the maximum back to the
/// bids with `dateTime BETWEEN end - 10 s AND end`, so a bid at exactly `end` with the
/// previous window's highest price would be emitted for that window too; prices are
/// log-uniform over a hundred million cents, so such a tie is rare.
pub fn q7(events: &DataStream<Event>) -> DataStream<(i64, Bid)> {
    bids(events)
        .key_by(|b: &Bid| (b.auction ^ b.bidder) % PARTITIONS)
        .window(TumblingEventTimeWindows::of(WINDOW))
        .aggregate_with_window(HighestBids, |_: &u64, w: &TimeWindow, m| (w.end, m))
        .key_by(|r: &(i64, Maxima<Bid>)| r.0)
        .process(MaximaPerWindow)
}

/// The start of the 10 s tumbling window of a time.
pub fn window_start(date_time: i64) -> i64 {
    let size = WINDOW.as_millis() as i64;
    date_time - date_time.rem_euclid(size)
}

/// A result of q8: `(person id, name, window start)`.
pub type NewUser = (u64, String, i64);

/// q8: the persons who opened an auction in the 10 s tumbling window they joined in. As
/// Flink's plan, each side keeps only what the join needs: a person's result row, an
/// auction's seller. One projection, chained with the source, makes both (a chain is a
/// path, so a second operator on the events would receive every event over the network).
pub fn q8(events: &DataStream<Event>) -> DataStream<NewUser> {
    let projected = events.flat_map(|e: Event| match e {
        Event::Person(p) => Some(Ok((p.id, p.name, window_start(p.date_time)))),
        Event::Auction(a) => Some(Err(a.seller)),
        Event::Bid(_) => None,
    });
    let persons = projected.flat_map(|r: Result<NewUser, u64>| r.ok());
    let sellers = projected.flat_map(|r: Result<NewUser, u64>| r.err());
    persons
        .co_group(&sellers)
        .r#where(|p: &NewUser| p.0)
        .equal_to(|seller: &u64| *seller)
        .window(TumblingEventTimeWindows::of(WINDOW))
        .apply(
            |ps: Vec<NewUser>, sellers: Vec<u64>, out: &mut Vec<NewUser>| -> FnResult {
                if !sellers.is_empty() {
                    out.extend(ps);
                }
                Ok(())
            },
        )
}

/// A result of q11 and q12: `(bidder, bids, window start, window end)`.
pub type BidderWindow = (u64, u64, i64, i64);

/// q11: each bidder's bids per session (10 s gap).
pub fn q11(events: &DataStream<Event>) -> DataStream<BidderWindow> {
    bid_field(events, |b| b.bidder)
        .key_by(|b: &u64| *b)
        .window(EventTimeSessionWindows::with_gap(WINDOW))
        .aggregate_with_window(CountBids, |b: &u64, w: &TimeWindow, n| {
            (*b, n, w.start, w.end)
        })
}

/// q12: each bidder's bids per 10 s tumbling processing-time window.
pub fn q12(events: &DataStream<Event>) -> DataStream<BidderWindow> {
    bid_field(events, |b| b.bidder)
        .key_by(|b: &u64| *b)
        .window(TumblingProcessingTimeWindows::of(WINDOW))
        .aggregate_with_window(CountBids, |b: &u64, w: &TimeWindow, n| {
            (*b, n, w.start, w.end)
        })
}
