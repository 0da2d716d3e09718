//! The Nexmark event generator, following the Nexmark specification (and the Beam and
//! Flink generators' rules): out of every 50 events, 1 is a person, 3 are auctions and 46
//! are bids; bids favour hot auctions and hot bidders, auctions hot sellers; prices are
//! log-uniform between $1 and $1,000,000; `extra` pads each event to the specification's
//! average size (persons 200 bytes, auctions 500, bids 100).
//!
//! Invariants:
//! - Event `n` is a pure function of the seed and `n` (its random numbers come from a
//!   stream seeded by both), so any subset of events can be generated anywhere, in any
//!   order: the source splits the sequence across subtasks and rewinds to a checkpointed
//!   position by number alone.
//! - Event time grows with the number: event `n` happens at
//!   `base_time + n * 1000 / events_per_second` ms.
//! - Ids are dense: person `k` (from 1000) is event `50k`, and an auction's id is
//!   `1000 + 3 * (n / 50) + (n % 50 - 1)`; a bid names an auction or person that exists
//!   or comes within the next few ids, as in the specification.

use crate::model::{Auction, Bid, Event, Person};
use crate::rng::Rng;
use crate::words::{CHANNELS, FIRST_NAMES, HOT_CHANNELS, LAST_NAMES, US_CITIES, US_STATES};

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const TOTAL_PROPORTION: u64 = 50;
const FIRST_PERSON_ID: u64 = 1000;
const FIRST_AUCTION_ID: u64 = 1000;
const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
const NUM_ACTIVE_PEOPLE: u64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_SELLER_RATIO: u64 = 4;
const HOT_BIDDER_RATIO: u64 = 4;
const HOT_CHANNEL_RATIO: u64 = 2;
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;

/// What the generator generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NexmarkConfig {
    /// Seeds every random choice.
    pub seed: u64,
    /// Events per second of event time (Flink's Nexmark: 10 million).
    pub events_per_second: u64,
    /// The event time of event 0, ms (2015-07-15T00:00:00Z).
    pub base_time: i64,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            events_per_second: 10_000_000,
            base_time: 1_436_918_400_000,
        }
    }
}

/// Generates Nexmark events by number.
#[derive(Clone, Debug)]
pub struct NexmarkGenerator {
    config: NexmarkConfig,
    /// Random lowercase letters that strings are cut from.
    letters: String,
    /// The URL of each numbered channel, then of each hot channel.
    urls: Vec<String>,
}

/// The URL of a channel: three random directories, as the specification's bids have.
fn base_url(rng: &mut Rng, letters: &str) -> String {
    let mut url = String::from("https://www.nexmark.com/");
    for _ in 0..3 {
        url.push_str(next_string(rng, letters, 5));
        url.push('/');
    }
    url.push_str("item.htm?query=1");
    url
}

/// A random string of 3 to `max - 1` letters.
fn next_string<'a>(rng: &mut Rng, letters: &'a str, max: u64) -> &'a str {
    let len = 3 + rng.below(max - 3);
    exact_string(rng, letters, len as usize)
}

/// A random string of `len` letters.
fn exact_string<'a>(rng: &mut Rng, letters: &'a str, len: usize) -> &'a str {
    let len = len.min(letters.len());
    let start = rng.below((letters.len() - len + 1) as u64) as usize;
    &letters[start..start + len]
}

/// A price in cents, log-uniform from $1 to $1,000,000.
fn next_price(rng: &mut Rng) -> u64 {
    (10f64.powf(rng.unit() * 6.0) * 100.0).round() as u64
}

// One person opens every 50 events, so the last person at or before an event is its
// epoch's.
const _: () = assert!(PERSON_PROPORTION == 1);

/// The id (from 0) of the last person at or before event `n`.
fn last_base0_person_id(n: u64) -> u64 {
    n / TOTAL_PROPORTION
}

/// The id (from 0) of the last auction at or before event `n` (0 before the first).
fn last_base0_auction_id(n: u64) -> u64 {
    let (epoch, offset) = (n / TOTAL_PROPORTION, n % TOTAL_PROPORTION);
    if offset < PERSON_PROPORTION {
        return (epoch * AUCTION_PROPORTION).saturating_sub(1);
    }
    epoch * AUCTION_PROPORTION + (offset - PERSON_PROPORTION).min(AUCTION_PROPORTION - 1)
}

/// A person active at event `n`: one of the last active ones, or one a little ahead.
fn next_base0_person_id(rng: &mut Rng, n: u64) -> u64 {
    let people = last_base0_person_id(n) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + rng.below(active + PERSON_ID_LEAD)
}

/// An auction in flight at event `n`: one of the last ones, or one a little ahead.
fn next_base0_auction_id(rng: &mut Rng, n: u64) -> u64 {
    let max = last_base0_auction_id(n);
    let min = max.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
    min + rng.below(max - min + 1 + AUCTION_ID_LEAD)
}

/// Padding that brings an event of `size` bytes to about `average` bytes (±20 %).
fn extra(rng: &mut Rng, letters: &str, size: usize, average: usize) -> String {
    if size >= average {
        return String::new();
    }
    let desired = average - size;
    let delta = (desired as f64 * 0.2).round() as u64;
    let len = desired as u64 - delta + rng.below(2 * delta + 1);
    exact_string(rng, letters, len as usize).to_owned()
}

impl NexmarkGenerator {
    /// A generator of `config`.
    pub fn new(config: NexmarkConfig) -> Self {
        let mut rng = Rng::for_event(config.seed, u64::MAX);
        let letters: String = (0..4096)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect();
        let mut urls = Vec::with_capacity(CHANNELS as usize + HOT_CHANNELS.len());
        for n in 0..CHANNELS {
            let id = (n as u32).reverse_bits() as i32;
            let url = base_url(&mut rng, &letters);
            urls.push(format!("{url}&channel_id={}", id.unsigned_abs()));
        }
        for _ in HOT_CHANNELS {
            urls.push(base_url(&mut rng, &letters));
        }
        Self {
            config,
            letters,
            urls,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    /// The event time of event `n`, ms.
    pub fn timestamp(&self, n: u64) -> i64 {
        let offset = u128::from(n) * 1000 / u128::from(self.config.events_per_second.max(1));
        self.config.base_time + offset as i64
    }

    /// Event `n`.
    pub fn event(&self, n: u64) -> Event {
        let mut rng = Rng::for_event(self.config.seed, n);
        let offset = n % TOTAL_PROPORTION;
        if offset < PERSON_PROPORTION {
            Event::Person(self.person(&mut rng, n))
        } else if offset < PERSON_PROPORTION + AUCTION_PROPORTION {
            Event::Auction(self.auction(&mut rng, n))
        } else {
            Event::Bid(self.bid(&mut rng, n))
        }
    }

    fn person(&self, rng: &mut Rng, n: u64) -> Person {
        let letters = &self.letters;
        let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize];
        let name = format!("{first} {last}");
        let user = next_string(rng, letters, 7);
        let email_address = format!("{user}@{}.com", next_string(rng, letters, 5));
        let digits: Vec<String> = (0..4)
            .map(|_| format!("{:04}", rng.below(10_000)))
            .collect();
        let credit_card = digits.join(" ");
        let city = US_CITIES[rng.below(US_CITIES.len() as u64) as usize].to_owned();
        let state = US_STATES[rng.below(US_STATES.len() as u64) as usize].to_owned();
        let size = 16 + name.len() + email_address.len() + credit_card.len() + city.len() + 2;
        Person {
            id: last_base0_person_id(n) + FIRST_PERSON_ID,
            extra: extra(rng, letters, size, AVG_PERSON_BYTES),
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: self.timestamp(n),
        }
    }

    fn auction(&self, rng: &mut Rng, n: u64) -> Auction {
        let letters = &self.letters;
        let seller = if rng.below(HOT_SELLER_RATIO) > 0 {
            (last_base0_person_id(n) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        } else {
            next_base0_person_id(rng, n)
        };
        let initial_bid = next_price(rng);
        let date_time = self.timestamp(n);
        // The auction lasts about as long as the next in-flight auctions take to start.
        let lead = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / AUCTION_PROPORTION;
        let horizon = (self.timestamp(n + lead) - date_time).max(1) as u64;
        let item_name = next_string(rng, letters, 20).to_owned();
        let description = next_string(rng, letters, 100).to_owned();
        let size = 48 + item_name.len() + description.len();
        Auction {
            id: last_base0_auction_id(n) + FIRST_AUCTION_ID,
            reserve: initial_bid + next_price(rng),
            initial_bid,
            expires: date_time + 1 + rng.below(horizon * 2) as i64,
            date_time,
            seller: seller + FIRST_PERSON_ID,
            category: FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES),
            extra: extra(rng, letters, size, AVG_AUCTION_BYTES),
            item_name,
            description,
        }
    }

    fn bid(&self, rng: &mut Rng, n: u64) -> Bid {
        let auction = if rng.below(HOT_AUCTION_RATIO) > 0 {
            (last_base0_auction_id(n) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        } else {
            next_base0_auction_id(rng, n)
        };
        let bidder = if rng.below(HOT_BIDDER_RATIO) > 0 {
            (last_base0_person_id(n) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        } else {
            next_base0_person_id(rng, n)
        };
        let price = next_price(rng);
        let (channel, url) = if rng.below(HOT_CHANNEL_RATIO) > 0 {
            let hot = rng.below(HOT_CHANNELS.len() as u64) as usize;
            (
                HOT_CHANNELS[hot].to_owned(),
                self.urls[CHANNELS as usize + hot].clone(),
            )
        } else {
            let numbered = rng.below(CHANNELS);
            (
                format!("channel-{numbered}"),
                self.urls[numbered as usize].clone(),
            )
        };
        let size = 32 + channel.len() + url.len();
        Bid {
            auction: auction + FIRST_AUCTION_ID,
            bidder: bidder + FIRST_PERSON_ID,
            price,
            extra: extra(rng, &self.letters, size, AVG_BID_BYTES),
            channel,
            url,
            date_time: self.timestamp(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_are_one_person_three_auctions_and_forty_six_bids_in_fifty() {
        let g = NexmarkGenerator::new(NexmarkConfig::default());
        let (mut p, mut a, mut b) = (0, 0, 0);
        for n in 0..5_000 {
            match g.event(n) {
                Event::Person(_) => p += 1,
                Event::Auction(_) => a += 1,
                Event::Bid(_) => b += 1,
            }
        }
        assert_eq!((p, a, b), (100, 300, 4_600));
    }

    #[test]
    fn events_are_a_pure_function_of_seed_and_number() {
        let g = NexmarkGenerator::new(NexmarkConfig::default());
        let again = NexmarkGenerator::new(NexmarkConfig::default());
        let other = NexmarkGenerator::new(NexmarkConfig {
            seed: 7,
            ..NexmarkConfig::default()
        });
        for n in [0, 1, 4, 49, 50, 12_345] {
            assert_eq!(g.event(n), again.event(n));
        }
        assert_ne!(g.event(12_345), other.event(12_345));
    }

    #[test]
    fn ids_are_dense_and_bids_name_recent_auctions_and_people() {
        let g = NexmarkGenerator::new(NexmarkConfig::default());
        let (mut people, mut auctions) = (0, 0);
        for n in 0..10_000 {
            match g.event(n) {
                Event::Person(p) => {
                    assert_eq!(p.id, FIRST_PERSON_ID + people);
                    people += 1;
                }
                Event::Auction(a) => {
                    assert_eq!(a.id, FIRST_AUCTION_ID + auctions);
                    assert!((10..15).contains(&a.category));
                    assert!(a.expires > a.date_time && a.reserve >= a.initial_bid);
                    assert!(a.seller < FIRST_PERSON_ID + people + PERSON_ID_LEAD);
                    auctions += 1;
                }
                Event::Bid(b) => {
                    assert!(b.auction < FIRST_AUCTION_ID + auctions + AUCTION_ID_LEAD);
                    assert!(b.bidder < FIRST_PERSON_ID + people + PERSON_ID_LEAD);
                    assert!((100..=100_000_000).contains(&b.price));
                    assert!(b.url.starts_with("https://www.nexmark.com/"));
                }
            }
        }
    }

    #[test]
    fn event_time_follows_the_rate_and_sizes_average_out() {
        let g = NexmarkGenerator::new(NexmarkConfig {
            events_per_second: 1_000,
            ..NexmarkConfig::default()
        });
        assert_eq!(g.timestamp(2_500) - g.timestamp(0), 2_500);
        let bids: Vec<Bid> = (0..20_000).filter_map(|n| g.event(n).bid()).collect();
        let bytes: usize = bids
            .iter()
            .map(|b| 32 + b.channel.len() + b.url.len() + b.extra.len())
            .sum();
        let average = bytes / bids.len();
        assert!((90..=130).contains(&average), "average bid {average} bytes");
    }
}
