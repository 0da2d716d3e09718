//! The per-day statistics: q15 (bids per day), q16 (per channel and day) and q17 (per
//! auction and day), as Flink's Nexmark SQL defines them: unwindowed aggregations
//! grouped by the day of the bid (`DATE_FORMAT(dateTime, 'yyyy-MM-dd')`, UTC), updated
//! with every bid.
//!
//! Invariants:
//! - Each query keeps of a bid only the fields it needs before the exchange, as Flink's
//!   planner projects its source.
//! - Every bid updates its group and emits the group's new row (as Flink's group
//!   aggregation without mini-batches does), so a group's row with the most bids is its
//!   current result.
//! - Distinct counts keep, per bidder or auction of a group, the price ranks it was seen
//!   in (a bit each, in map state); a count rises when a bit is first set.

use serde::{Deserialize, Serialize};
use weir_api::functions::{FnResult, KeyedContext, KeyedProcessFunction, RuntimeContext};
use weir_api::{DataStream, MapState, StateKey, ValueState, VoidNamespace};

use crate::json_events::{sql_date, sql_minute};
use crate::model::Event;

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
fn count_distinct<K: StateKey>(
    seen: &MapState<K, VoidNamespace, u64, u8>,
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

/// What q15 and q16 need of a bid (projected before the exchange, as Flink's planner
/// projects its source): day, channel (empty for q15), price, bidder, auction, time.
type BidFacts = (i64, String, u64, u64, u64, i64);

/// The running counts of a group.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Counters {
    bids: Ranked,
    bidders: Ranked,
    auctions: Ranked,
    /// The latest bid time, ms (`None` before the first bid).
    latest: Option<i64>,
}

/// Keeps the statistics of a (day, channel) group (channel empty for q15).
#[derive(Clone)]
struct Distinct {
    with_minute: bool,
}

type DistinctState<K> = (
    ValueState<K, VoidNamespace, Counters>,
    MapState<K, VoidNamespace, u64, u8>,
    MapState<K, VoidNamespace, u64, u8>,
);

impl<K: StateKey> KeyedProcessFunction<K, BidFacts, (String, DailyStats)> for Distinct {
    type State = DistinctState<K>;
    fn open(&mut self, ctx: &RuntimeContext<K>) -> FnResult<DistinctState<K>> {
        Ok((
            ctx.value_state("stats")?,
            ctx.map_state("bidders")?,
            ctx.map_state("auctions")?,
        ))
    }
    fn process_element(
        &mut self,
        (day, channel, price, bidder, auction, date_time): BidFacts,
        (stats, bidders, auctions): &mut DistinctState<K>,
        ctx: &mut KeyedContext<'_, K, (String, DailyStats)>,
    ) -> FnResult {
        let rank = price_rank(price);
        let mut c = stats.value()?.unwrap_or_default();
        c.bids[0] += 1;
        c.bids[rank] += 1;
        count_distinct(bidders, bidder, rank, &mut c.bidders)?;
        count_distinct(auctions, auction, rank, &mut c.auctions)?;
        let latest = c.latest.map_or(date_time, |l| l.max(date_time));
        c.latest = Some(latest);
        stats.update(c)?;
        let minute = self.with_minute.then(|| sql_minute(latest));
        let row = DailyStats {
            day: sql_date(day * 86_400_000),
            bids: c.bids,
            bidders: c.bidders,
            auctions: c.auctions,
            minute,
        };
        ctx.collect((channel, row));
        Ok(())
    }
}

/// The facts of the bids of `events`, with `channel` of each.
fn facts(events: &DataStream<Event>, channel: fn(String) -> String) -> DataStream<BidFacts> {
    events.flat_map(move |e| {
        let b = e.bid()?;
        let day = day_of(b.date_time);
        Some((
            day,
            channel(b.channel),
            b.price,
            b.bidder,
            b.auction,
            b.date_time,
        ))
    })
}

/// q15: per day, bids, bidders and auctions in total and per price rank.
pub fn q15(events: &DataStream<Event>) -> DataStream<DailyStats> {
    facts(events, |_| String::new())
        .key_by(|f: &BidFacts| f.0)
        .process(Distinct { with_minute: false })
        .name("q15-stats")
        .uid("q15-stats")
        .map(|(_, s)| s)
}

/// q16: per channel and day, the statistics of q15 and the latest minute of a bid.
pub fn q16(events: &DataStream<Event>) -> DataStream<(String, DailyStats)> {
    facts(events, |c| c)
        .key_by(|f: &BidFacts| (f.0, f.1.clone()))
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

/// What q17 needs of a bid: auction, day, price, time.
type AuctionFacts = (u64, i64, u64, i64);

impl KeyedProcessFunction<(u64, i64), AuctionFacts, AuctionDay> for PerAuctionDay {
    type State = ValueState<(u64, i64), VoidNamespace, AuctionDay>;
    fn open(&mut self, ctx: &RuntimeContext<(u64, i64)>) -> FnResult<Self::State> {
        ctx.value_state("stats")
    }
    fn process_element(
        &mut self,
        (auction, _, price, date_time): AuctionFacts,
        stats: &mut Self::State,
        ctx: &mut KeyedContext<'_, (u64, i64), AuctionDay>,
    ) -> FnResult {
        let s = stats.modify(|s| {
            let s = s.get_or_insert_with(|| AuctionDay {
                auction,
                day: sql_date(date_time),
                min_price: u64::MAX,
                ..AuctionDay::default()
            });
            s.bids[0] += 1;
            s.bids[price_rank(price)] += 1;
            s.min_price = s.min_price.min(price);
            s.max_price = s.max_price.max(price);
            s.sum_price += price;
            s.avg_price = s.sum_price / s.bids[0];
            s.clone()
        })?;
        ctx.collect(s);
        Ok(())
    }
}

/// q17: per auction and day, bids in total and per rank, and price statistics.
pub fn q17(events: &DataStream<Event>) -> DataStream<AuctionDay> {
    events
        .flat_map(|e| {
            let b = e.bid()?;
            Some((b.auction, day_of(b.date_time), b.price, b.date_time))
        })
        .key_by(|f: &AuctionFacts| (f.0, f.1))
        .process(PerAuctionDay)
        .name("q17-stats")
        .uid("q17-stats")
}
