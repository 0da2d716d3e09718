//! The regular (unwindowed) joins: q3 (local item suggestion) and q20 (expand bid with
//! auction), as Flink's Nexmark SQL defines them.
//!
//! Both inputs are one stream of events, keyed by the join key, into one keyed process
//! function, so each matching pair is emitted once, as an inner join without time bounds
//! does. Ids are unique, so the side with the id (the person, the auction) is stored once,
//! whether it passes the query's filter or not; the other side waits in list state only
//! until it arrives, and is dropped at once when it names a stored one that did not pass.
//! So the state holds one small entry per id, not every event of the other side.

use weir_api::functions::{FnResult, KeyedContext, KeyedProcessFunction, RuntimeContext};
use weir_api::{DataStream, ListState, ValueState, VoidNamespace};

use crate::model::{Auction, Bid, Event};

/// The states q3 sellers live in.
pub const Q3_STATES: [&str; 3] = ["OR", "ID", "CA"];

/// The category q3 and q20 look at.
pub const CATEGORY: u64 = 10;

/// A result of q3: `(name, city, state, auction id)`.
pub type LocalItem = (String, String, String, u64);

/// Joins sellers with their auctions.
#[derive(Clone)]
struct LocalItemSuggestion;

type Who = (String, String, String);

/// A stored person (`None`: one outside the query's states) and the auctions waiting
/// for an unknown one.
type SellerState = (
    ValueState<u64, VoidNamespace, Option<Who>>,
    ListState<u64, VoidNamespace, u64>,
);

impl KeyedProcessFunction<u64, Event, LocalItem> for LocalItemSuggestion {
    type State = SellerState;
    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<SellerState> {
        Ok((ctx.value_state("person")?, ctx.list_state("auctions")?))
    }
    fn process_element(
        &mut self,
        event: Event,
        (person, auctions): &mut SellerState,
        ctx: &mut KeyedContext<'_, u64, LocalItem>,
    ) -> FnResult {
        match event {
            Event::Person(p) => {
                let local = Q3_STATES.contains(&p.state.as_str());
                let who = local.then_some((p.name, p.city, p.state));
                for id in auctions.take()? {
                    if let Some((name, city, state)) = &who {
                        ctx.collect((name.clone(), city.clone(), state.clone(), id));
                    }
                }
                person.update(who)?;
            }
            Event::Auction(a) => match person.value()? {
                Some(Some((name, city, state))) => ctx.collect((name, city, state, a.id)),
                Some(None) => {}
                None => auctions.add(a.id)?,
            },
            Event::Bid(_) => {}
        }
        Ok(())
    }
}

/// q3: the auctions of category 10 whose sellers live in Oregon, Idaho or California.
pub fn q3(events: &DataStream<Event>) -> DataStream<LocalItem> {
    events
        .filter(|e| match e {
            Event::Person(_) => true,
            Event::Auction(a) => a.category == CATEGORY,
            Event::Bid(_) => false,
        })
        .key_by(|e: &Event| match e {
            Event::Person(p) => p.id,
            Event::Auction(a) => a.seller,
            Event::Bid(b) => b.bidder,
        })
        .process(LocalItemSuggestion)
        .name("q3-join")
        .uid("q3-join")
}

/// Joins bids with their auction.
#[derive(Clone)]
struct ExpandBid;

/// A stored auction (`None`: one of another category) and the bids waiting for an
/// unknown one.
type AuctionState = (
    ValueState<u64, VoidNamespace, Option<Auction>>,
    ListState<u64, VoidNamespace, Bid>,
);

impl KeyedProcessFunction<u64, Event, (Bid, Auction)> for ExpandBid {
    type State = AuctionState;
    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<AuctionState> {
        Ok((ctx.value_state("auction")?, ctx.list_state("bids")?))
    }
    fn process_element(
        &mut self,
        event: Event,
        (auction, bids): &mut AuctionState,
        ctx: &mut KeyedContext<'_, u64, (Bid, Auction)>,
    ) -> FnResult {
        match event {
            Event::Bid(b) => match auction.value()? {
                Some(Some(a)) => ctx.collect((b, a)),
                Some(None) => {}
                None => bids.add(b)?,
            },
            Event::Auction(a) => {
                let matching = (a.category == CATEGORY).then_some(a);
                for b in bids.take()? {
                    if let Some(a) = &matching {
                        ctx.collect((b, a.clone()));
                    }
                }
                auction.update(matching)?;
            }
            Event::Person(_) => {}
        }
        Ok(())
    }
}

/// q20: every bid on an auction of category 10, with the auction.
pub fn q20(events: &DataStream<Event>) -> DataStream<(Bid, Auction)> {
    events
        .filter(|e| !matches!(e, Event::Person(_)))
        .key_by(Event::auction_id)
        .process(ExpandBid)
        .name("q20-join")
        .uid("q20-join")
}
