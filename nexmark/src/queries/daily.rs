//! The per-day statistics: q15 (bids per day), q16 (per channel and day) and q17 (per
//! auction and day), as Flink's Nexmark SQL defines them: unwindowed aggregations
//! grouped by the day of the bid (`DATE_FORMAT(dateTime, 'yyyy-MM-dd')`, UTC), updated
//! with every bid.
//!
//! Invariants:
//! - Every bid updates its group and emits the group's new row (as Flink's group
//!   aggregation without mini-batches does), so a group's row with the most bids is its
//!   current result.
//! - Distinct counts keep, per bidder or auction of a group, the price ranks it was seen
//!   in (a bit each, in map state); a count rises when a bit is first set.

use serde::{Deserialize, Serialize};
use weir_api::functions::{FnResult, KeyedContext, KeyedProcessFunction, RuntimeContext};
use weir_api::{DataStream, MapState, ValueState, VoidNamespace};

use super::stateless::bids;
use crate::json_events::sql_timestamp;
use crate::model::{Bid, Event};

/// Prices below this are rank 1 (below $100).
pub const RANK1_BELOW: u64 = 10_000;
/// Prices below this (and not rank 1) are rank 2 (below $10,000); the others rank 3.
pub const RANK2_BELOW: u64 = 1_000_000;

/// The price rank (1, 2 or 3) of a price.
pub fn price_rank(price: u64) -> usize {
    match price {
        p if p < RANK1_BELOW => 1,
        p if p < RANK2_BELOW => 2,
        _ => 3,
    }
}

/// Counts of a group: `[total, rank 1, rank 2, rank 3]`.
pub type Ranked = [u64; 4];

/// The statistics of q15 and q16.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyStats {
    /// `yyyy-MM-dd`.
    pub day: String,
    /// Bids.
    pub bids: Ranked,
    /// Distinct bidders.
    pub bidders: Ranked,
    /// Distinct auctions.
    pub auctions: Ranked,
    /// The latest `HH:mm` of a bid (q16 only).
    pub minute: Option<String>,
}

/// The day number (since the epoch, UTC) of a time in ms.
pub fn day_of(date_time: i64) -> i64 {
    date_time.div_euclid(86_400_000)
}

/// Sets rank `rank`'s bit of `id` in `seen`; counts it into `distinct` (the total too,
/// if `id` is new).
fn count_distinct(
    seen: &MapState<(i64, String), VoidNamespace, u64, u8>,
    id: u64,
    rank: usize,
    distinct: &mut Ranked,
) -> FnResult {
    let bits = seen.get(&id)?;
    let bit = 1u8 << rank;
    if bits.is_some_and(|b| b & bit != 0) {
        return Ok(());
    }
    if bits.is_none() {
        distinct[0] += 1;
    }
    distinct[rank] += 1;
    seen.put(id, bits.unwrap_or(0) | bit)?;
    Ok(())
}

/// Keeps the statistics of a (day, channel) group (channel empty for q15).
#[derive(Clone)]
struct Distinct {
    with_minute: bool,
}

type DistinctState = (
    ValueState<(i64, String), VoidNamespace, DailyStats>,
    MapState<(i64, String), VoidNamespace, u64, u8>,
    MapState<(i64, String), VoidNamespace, u64, u8>,
);

impl KeyedProcessFunction<(i64, String), Bid, (String, DailyStats)> for Distinct {
    type State = DistinctState;
    fn open(&mut self, ctx: &RuntimeContext<(i64, String)>) -> FnResult<DistinctState> {
        Ok((
            ctx.value_state("stats")?,
            ctx.map_state("bidders")?,
            ctx.map_state("auctions")?,
        ))
    }
    fn process_element(
        &mut self,
        b: Bid,
        (stats, bidders, auctions): &mut DistinctState,
        ctx: &mut KeyedContext<'_, (i64, String), (String, DailyStats)>,
    ) -> FnResult {
        let rank = price_rank(b.price);
        let mut s = stats.value()?.unwrap_or_default();
        if s.day.is_empty() {
            s.day = sql_timestamp(b.date_time)[..10].to_owned();
        }
        s.bids[0] += 1;
        s.bids[rank] += 1;
        count_distinct(bidders, b.bidder, rank, &mut s.bidders)?;
        count_distinct(auctions, b.auction, rank, &mut s.auctions)?;
        if self.with_minute {
            let minute = sql_timestamp(b.date_time)[11..16].to_owned();
            if s.minute.as_ref().is_none_or(|m| *m < minute) {
                s.minute = Some(minute);
            }
        }
        stats.update(s.clone())?;
        ctx.collect((ctx.current_key().1.clone(), s));
        Ok(())
    }
}

/// q15: per day, bids, bidders and auctions in total and per price rank.
pub fn q15(events: &DataStream<Event>) -> DataStream<DailyStats> {
    bids(events)
        .key_by(|b: &Bid| (day_of(b.date_time), String::new()))
        .process(Distinct { with_minute: false })
        .name("q15-stats")
        .uid("q15-stats")
        .map(|(_, s)| s)
}

/// q16: per channel and day, the statistics of q15 and the latest minute of a bid.
pub fn q16(events: &DataStream<Event>) -> DataStream<(String, DailyStats)> {
    bids(events)
        .key_by(|b: &Bid| (day_of(b.date_time), b.channel.clone()))
        .process(Distinct { with_minute: true })
        .name("q16-stats")
        .uid("q16-stats")
}

/// The statistics of q17.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionDay {
    /// The auction.
    pub auction: u64,
    /// `yyyy-MM-dd`.
    pub day: String,
    /// Bids, in total and per price rank.
    pub bids: Ranked,
    /// The lowest price.
    pub min_price: u64,
    /// The highest price.
    pub max_price: u64,
    /// The average price (truncated, as Flink's `AVG` of a `BIGINT`).
    pub avg_price: u64,
    /// The sum of the prices.
    pub sum_price: u64,
}

/// Keeps the statistics of an (auction, day) group.
#[derive(Clone)]
struct PerAuctionDay;

impl KeyedProcessFunction<(u64, i64), Bid, AuctionDay> for PerAuctionDay {
    type State = ValueState<(u64, i64), VoidNamespace, AuctionDay>;
    fn open(&mut self, ctx: &RuntimeContext<(u64, i64)>) -> FnResult<Self::State> {
        ctx.value_state("stats")
    }
    fn process_element(
        &mut self,
        b: Bid,
        stats: &mut Self::State,
        ctx: &mut KeyedContext<'_, (u64, i64), AuctionDay>,
    ) -> FnResult {
        let s = stats.modify(|s| {
            let s = s.get_or_insert_with(|| AuctionDay {
                auction: b.auction,
                day: sql_timestamp(b.date_time)[..10].to_owned(),
                min_price: u64::MAX,
                ..AuctionDay::default()
            });
            s.bids[0] += 1;
            s.bids[price_rank(b.price)] += 1;
            s.min_price = s.min_price.min(b.price);
            s.max_price = s.max_price.max(b.price);
            s.sum_price += b.price;
            s.avg_price = s.sum_price / s.bids[0];
            s.clone()
        })?;
        ctx.collect(s);
        Ok(())
    }
}

/// q17: per auction and day, bids in total and per rank, and price statistics.
pub fn q17(events: &DataStream<Event>) -> DataStream<AuctionDay> {
    bids(events)
        .key_by(|b: &Bid| (b.auction, day_of(b.date_time)))
        .process(PerAuctionDay)
        .name("q17-stats")
        .uid("q17-stats")
}
