//! The top-N queries: q18 (each bidder's last bid per auction) and q19 (each auction's
//! ten highest bids), as Flink's Nexmark SQL defines them with `ROW_NUMBER()`.
//!
//! Invariant: a group emits a row whenever its result changes, so its last row (q18: the
//! latest bid; q19: the highest version) is its current result.

use weir_api::functions::{FnResult, KeyedContext, KeyedProcessFunction, RuntimeContext};
use weir_api::{DataStream, ValueState, VoidNamespace};

use super::stateless::bids;
use crate::model::{Bid, Event};

/// Keeps each (bidder, auction) pair's latest bid.
#[derive(Clone)]
struct LastBid;

impl KeyedProcessFunction<(u64, u64), Bid, Bid> for LastBid {
    type State = ValueState<(u64, u64), VoidNamespace, i64>;
    fn open(&mut self, ctx: &RuntimeContext<(u64, u64)>) -> FnResult<Self::State> {
        ctx.value_state("last-bid-time")
    }
    fn process_element(
        &mut self,
        b: Bid,
        last: &mut Self::State,
        ctx: &mut KeyedContext<'_, (u64, u64), Bid>,
    ) -> FnResult {
        // Flink's deduplication on event time keeps a row no older than the kept one.
        if last.value()?.is_none_or(|t| b.date_time >= t) {
            last.update(b.date_time)?;
            ctx.collect(b);
        }
        Ok(())
    }
}

/// q18: each bidder's latest bid on each auction, updated as later ones come.
pub fn q18(events: &DataStream<Event>) -> DataStream<Bid> {
    bids(events)
        .key_by(|b: &Bid| (b.bidder, b.auction))
        .process(LastBid)
        .name("q18-last-bid")
        .uid("q18-last-bid")
}

/// How many bids q19 keeps per auction.
pub const TOP: usize = 10;

/// A row of q19: `(auction, version, the highest bids, highest first)`.
pub type TopBids = (u64, u64, Vec<Bid>);

/// Keeps each auction's highest bids.
#[derive(Clone)]
struct HighestBids;

impl KeyedProcessFunction<u64, Bid, TopBids> for HighestBids {
    type State = ValueState<u64, VoidNamespace, (u64, Vec<Bid>)>;
    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<Self::State> {
        ctx.value_state("top-bids")
    }
    fn process_element(
        &mut self,
        b: Bid,
        top: &mut Self::State,
        ctx: &mut KeyedContext<'_, u64, TopBids>,
    ) -> FnResult {
        let changed = top.modify(|t| {
            let (version, bids) = t.get_or_insert_with(|| (0, Vec::with_capacity(TOP)));
            // Ranked by price; a bid that only ties the last kept one stays out.
            let at = bids.partition_point(|kept| kept.price >= b.price);
            if at >= TOP {
                return None;
            }
            bids.insert(at, b);
            bids.truncate(TOP);
            *version += 1;
            Some((*version, bids.clone()))
        })?;
        if let Some((version, bids)) = changed {
            ctx.collect((*ctx.current_key(), version, bids));
        }
        Ok(())
    }
}

/// q19: each auction's ten highest bids, updated as they change.
pub fn q19(events: &DataStream<Event>) -> DataStream<TopBids> {
    bids(events)
        .key_by(|b: &Bid| b.auction)
        .process(HighestBids)
        .name("q19-top-bids")
        .uid("q19-top-bids")
}
