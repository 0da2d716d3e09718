//! The three Nexmark event types, as the Nexmark specification defines them, and the
//! [`Event`] that carries one of them.
//!
//! Invariant: every event has an event time (`date_time`, milliseconds since the Unix
//! epoch); prices are in cents.

use serde::{Deserialize, Serialize};

/// A person: a seller or a bidder.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Person {
    /// Unique id (from 1000).
    pub id: u64,
    /// First and last name.
    pub name: String,
    /// E-mail address.
    pub email_address: String,
    /// Four groups of four digits.
    pub credit_card: String,
    /// A US city.
    pub city: String,
    /// A US state (two letters).
    pub state: String,
    /// Event time, ms.
    pub date_time: i64,
    /// Padding to the specification's average size.
    pub extra: String,
}

/// An auction of one item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Auction {
    /// Unique id (from 1000).
    pub id: u64,
    /// The item's name.
    pub item_name: String,
    /// The item's description.
    pub description: String,
    /// The opening price, cents.
    pub initial_bid: u64,
    /// The reserve price, cents.
    pub reserve: u64,
    /// Event time, ms.
    pub date_time: i64,
    /// When the auction closes, ms.
    pub expires: i64,
    /// The seller's person id.
    pub seller: u64,
    /// Category (10 to 14).
    pub category: u64,
    /// Padding to the specification's average size.
    pub extra: String,
}

/// A bid on an auction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bid {
    /// The auction's id.
    pub auction: u64,
    /// The bidder's person id.
    pub bidder: u64,
    /// The price, cents.
    pub price: u64,
    /// The channel the bid came through.
    pub channel: String,
    /// The URL of the bid.
    pub url: String,
    /// Event time, ms.
    pub date_time: i64,
    /// Padding to the specification's average size.
    pub extra: String,
}

/// One Nexmark event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A bid.
    Bid(Bid),
}

impl Event {
    /// The event time, ms.
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// The auction an auction or bid is about (a person's id for a person): the key of
    /// joins of bids with their auction.
    pub fn auction_id(&self) -> u64 {
        match self {
            Event::Bid(b) => b.auction,
            Event::Auction(a) => a.id,
            Event::Person(p) => p.id,
        }
    }

    /// The bid, if this is one.
    pub fn bid(self) -> Option<Bid> {
        match self {
            Event::Bid(b) => Some(b),
            _ => None,
        }
    }

    /// The auction, if this is one.
    pub fn auction(self) -> Option<Auction> {
        match self {
            Event::Auction(a) => Some(a),
            _ => None,
        }
    }

    /// The person, if this is one.
    pub fn person(self) -> Option<Person> {
        match self {
            Event::Person(p) => Some(p),
            _ => None,
        }
    }
}
