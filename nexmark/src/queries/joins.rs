//! The regular (unwindowed) joins: q3 (local item suggestion) and q20 (expand bid with
//! auction), as Flink's Nexmark SQL defines them.
//!
//! Both inputs are one stream of events, keyed by the join key, into one keyed process
//! function: what must wait for its partner waits in list state, what every later
//! partner needs stays in value state, so each matching pair is emitted once, as an
//! inner join without time bounds does. (Ids are unique, so the side with the id is
//! stored once and the other side needs storing only until it arrives.)

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

impl KeyedProcessFunction<u64, Event, LocalItem> for LocalItemSuggestion {
    type State = (
        ValueState<u64, VoidNamespace, Who>,
        ListState<u64, VoidNamespace, u64>,
    );
    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<Self::State> {
        Ok((ctx.value_state("person")?, ctx.list_state("auctions")?))
    }
    fn process_element(
        &mut self,
        event: Event,
        (person, auctions): &mut Self::State,
        ctx: &mut KeyedContext<'_, u64, LocalItem>,
    ) -> FnResult {
        match event {
            Event::Person(p) => {
                let who = (p.name, p.city, p.state);
                for id in auctions.take()? {
                    ctx.collect((who.0.clone(), who.1.clone(), who.2.clone(), id));
                }
                person.update(who)?;
            }
            Event::Auction(a) => match person.value()? {
                Some((name, city, state)) => ctx.collect((name, city, state, a.id)),
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
            Event::Person(p) => Q3_STATES.contains(&p.state.as_str()),
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

impl KeyedProcessFunction<u64, Event, (Bid, Auction)> for ExpandBid {
    type State = (
        ValueState<u64, VoidNamespace, Auction>,
        ListState<u64, VoidNamespace, Bid>,
    );
    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<Self::State> {
        Ok((ctx.value_state("auction")?, ctx.list_state("bids")?))
    }
    fn process_element(
        &mut self,
        event: Event,
        (auction, bids): &mut Self::State,
        ctx: &mut KeyedContext<'_, u64, (Bid, Auction)>,
    ) -> FnResult {
        match event {
            Event::Bid(b) => match auction.value()? {
                Some(a) => ctx.collect((b, a)),
                None => bids.add(b)?,
            },
            Event::Auction(a) => {
                for b in bids.take()? {
                    ctx.collect((b, a.clone()));
                }
                auction.update(a)?;
            }
            Event::Person(_) => {}
        }
        Ok(())
    }
}

/// q20: every bid on an auction of category 10, with the auction.
pub fn q20(events: &DataStream<Event>) -> DataStream<(Bid, Auction)> {
    events
        .filter(|e| match e {
            Event::Bid(_) => true,
            Event::Auction(a) => a.category == CATEGORY,
            Event::Person(_) => false,
        })
        .key_by(|e: &Event| match e {
            Event::Bid(b) => b.auction,
            Event::Auction(a) => a.id,
            Event::Person(p) => p.id,
        })
        .process(ExpandBid)
        .name("q20-join")
        .uid("q20-join")
}
