//! The queries over each auction's bids while it is open: q4 (average closing price per
//! category) and q9 (winning bids), as Flink's Nexmark SQL defines them: a regular join
//! of auctions and bids on the auction's id, the bids between the auction's start and
//! its expiry, and the highest of them per auction.
//!
//! Invariants:
//! - Events are keyed by auction id; bids that come before their auction wait in list
//!   state and are judged when it comes, so the order of arrival does not change the
//!   results.
//! - The best bid of an auction (highest price, then earliest, then lowest bidder) only
//!   improves; every improvement is emitted, with the price it replaces, so the last
//!   emitted row per auction is the winner and q4 can retract what it replaces.

use serde::{Deserialize, Serialize};
use weir_api::functions::{FnResult, KeyedContext, KeyedProcessFunction, RuntimeContext};
use weir_api::{DataStream, ListState, ValueState, VoidNamespace};

use crate::model::{Auction, Bid, Event};

/// An improvement of an auction's best bid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestBid {
    /// The auction.
    pub auction: Auction,
    /// The price of the best bid it replaces, if any.
    pub replaces: Option<u64>,
    /// The new best bid.
    pub bid: Bid,
}

/// Whether `bid` counts for `auction`: between its start and its expiry.
fn in_time(auction: &Auction, bid: &Bid) -> bool {
    (auction.date_time..=auction.expires).contains(&bid.date_time)
}

/// Whether `bid` beats `best`.
fn beats(bid: &Bid, best: &Bid) -> bool {
    let rank = |b: &Bid| (b.price, std::cmp::Reverse((b.date_time, b.bidder)));
    rank(bid) > rank(best)
}

/// Keeps each auction's best bid and emits its improvements.
#[derive(Clone)]
struct BestBids;

type BestState = (
    ValueState<u64, VoidNamespace, Auction>,
    ListState<u64, VoidNamespace, Bid>,
    ValueState<u64, VoidNamespace, Bid>,
);

impl BestBids {
    /// Offers `bid` (of `auction`'s time) to the auction's best bid.
    fn offer(
        auction: &Auction,
        bid: Bid,
        best: &ValueState<u64, VoidNamespace, Bid>,
        ctx: &mut KeyedContext<'_, u64, BestBid>,
    ) -> FnResult {
        let current = best.value()?;
        if current.as_ref().is_some_and(|b| !beats(&bid, b)) {
            return Ok(());
        }
        best.update(bid.clone())?;
        ctx.collect(BestBid {
            auction: auction.clone(),
            replaces: current.map(|b| b.price),
            bid,
        });
        Ok(())
    }
}

impl KeyedProcessFunction<u64, Event, BestBid> for BestBids {
    type State = BestState;
    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<BestState> {
        Ok((
            ctx.value_state("auction")?,
            ctx.list_state("waiting-bids")?,
            ctx.value_state("best-bid")?,
        ))
    }
    fn process_element(
        &mut self,
        event: Event,
        (auction, waiting, best): &mut BestState,
        ctx: &mut KeyedContext<'_, u64, BestBid>,
    ) -> FnResult {
        match event {
            Event::Bid(b) => match auction.value()? {
                Some(a) if in_time(&a, &b) => Self::offer(&a, b, best, ctx)?,
                Some(_) => {}
                None => waiting.add(b)?,
            },
            Event::Auction(a) => {
                for b in waiting.take()? {
                    if in_time(&a, &b) {
                        Self::offer(&a, b, best, ctx)?;
                    }
                }
                auction.update(a)?;
            }
            Event::Person(_) => {}
        }
        Ok(())
    }
}

/// Every improvement of every auction's best bid.
pub fn best_bids(events: &DataStream<Event>) -> DataStream<BestBid> {
    events
        .filter(|e| !matches!(e, Event::Person(_)))
        .key_by(Event::auction_id)
        .process(BestBids)
        .name("best-bids")
        .uid("best-bids")
}

/// q9: each auction with its best bid so far; the last row of an auction is its winner.
pub fn q9(events: &DataStream<Event>) -> DataStream<(Auction, Bid)> {
    best_bids(events).map(|b| (b.auction, b.bid))
}

/// A row of q4: `(category, average closing price, version)`; the row with the highest
/// version of a category is its current average.
pub type CategoryAverage = (u64, u64, u64);

/// Averages the best prices of a category's auctions, retracting replaced ones.
#[derive(Clone)]
struct AverageOfBest;

impl KeyedProcessFunction<u64, BestBid, CategoryAverage> for AverageOfBest {
    /// `(sum, auctions, version)`.
    type State = ValueState<u64, VoidNamespace, (u64, u64, u64)>;
    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<Self::State> {
        ctx.value_state("category-average")
    }
    fn process_element(
        &mut self,
        best: BestBid,
        state: &mut Self::State,
        ctx: &mut KeyedContext<'_, u64, CategoryAverage>,
    ) -> FnResult {
        let (sum, auctions, version) = state.modify(|s| {
            let (sum, auctions, version) = s.get_or_insert((0, 0, 0));
            match best.replaces {
                Some(old) => *sum -= old,
                None => *auctions += 1,
            }
            *sum += best.bid.price;
            *version += 1;
            (*sum, *auctions, *version)
        })?;
        // Flink's AVG of a BIGINT column is a BIGINT: the quotient, truncated.
        ctx.collect((*ctx.current_key(), sum / auctions, version));
        Ok(())
    }
}

/// `event` without the text q4 does not read, so it crosses the exchange small (as
/// Flink's planner projects its source).
fn numbers_only(event: Event) -> Event {
    match event {
        Event::Auction(a) => Event::Auction(Auction {
            item_name: String::new(),
            description: String::new(),
            extra: String::new(),
            ..a
        }),
        Event::Bid(b) => Event::Bid(Bid {
            channel: String::new(),
            url: String::new(),
            extra: String::new(),
            ..b
        }),
        person => person,
    }
}

/// q4: per category, the average of its auctions' closing prices, updated as they change.
pub fn q4(events: &DataStream<Event>) -> DataStream<CategoryAverage> {
    best_bids(&events.map(numbers_only))
        .key_by(|b: &BestBid| b.auction.category)
        .process(AverageOfBest)
        .name("q4-average")
        .uid("q4-average")
}
