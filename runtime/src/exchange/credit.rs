//! Credit accounting of one task's input channels (the receiver side of credit-based flow
//! control).
//!
//! Each channel owns `exclusive` buffers; the task's gates share `floating` more. A credit
//! is one free buffer promised to the channel's producer, which sends one buffer per
//! credit and reports its backlog (buffers queued behind it) with every buffer. When a
//! channel's backlog exceeds its credits, floating buffers go to it; when it has credit
//! enough, a floating buffer it frees goes back to the shared pool (and to a channel
//! waiting for one).
//!
//! The task's own thread does all accounting: on a channel's open, on every buffer it
//! takes from its queue, and on every buffer it is done with. The methods of
//! [`InputCredits`] append the credits to announce to `(channel, credits)` lists;
//! [`GateCredits`] keeps one [`InputCredits`] per gate and sends what they grant to the
//! channels' producers, in batches: a channel whose producer has nothing left to send on
//! (no credit, nothing in flight) gets its credits at once, others collect them until the
//! task's queue runs empty or the task took `CREDIT_BATCH` passes, so a busy consumer
//! announces credits in batches instead of one message per buffer.
//!
//! Invariants (checked by the tests): for every open channel, credits granted (including
//! buffers in flight) plus buffers held equal `exclusive` plus the floating buffers it
//! owns; floating buffers owned plus free equal `floating`; so the buffers a producer may
//! have in flight never exceed what the consumer granted, and the buffers of all inputs
//! never exceed `channels × exclusive + floating`.

use super::gate::CreditSink;
use thiserror::Error;

/// A producer broke the credit protocol.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("channel {channel} delivered a buffer without credit")]
pub struct CreditViolation {
    /// The channel (flat index over all gates).
    pub channel: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct ChannelCredit {
    opened: bool,
    ended: bool,
    waiting: bool,
    /// Credits announced and not yet used by a delivered buffer.
    granted: u32,
    /// Buffers taken from the queue and not yet recycled.
    held: u32,
    /// Floating buffers the channel owns.
    floating: u32,
    /// The producer's last reported backlog.
    backlog: u32,
}

/// Credits of all input channels of one task.
#[derive(Debug)]
pub struct InputCredits {
    channels: Vec<ChannelCredit>,
    exclusive: u32,
    floating_total: u32,
    floating_free: u32,
    waiting: std::collections::VecDeque<usize>,
}

impl InputCredits {
    /// Accounts `channels` channels with `exclusive` buffers each and `floating` shared.
    pub fn new(channels: usize, exclusive: u32, floating: u32) -> Self {
        Self {
            channels: vec![ChannelCredit::default(); channels],
            exclusive,
            floating_total: floating,
            floating_free: floating,
            waiting: Default::default(),
        }
    }

    /// Returns the number of buffers all inputs may hold at most.
    pub fn capacity(&self) -> usize {
        self.channels.len() * self.exclusive as usize + self.floating_total as usize
    }

    /// A channel's producer connected: grants its exclusive credits.
    pub fn open(&mut self, channel: usize, out: &mut Vec<(usize, u32)>) {
        let c = &mut self.channels[channel];
        if c.opened {
            return;
        }
        c.opened = true;
        c.granted = self.exclusive;
        if self.exclusive > 0 {
            out.push((channel, self.exclusive));
        }
    }

    /// The task took a buffer of `channel` that reported `backlog`; grants floating
    /// buffers if the backlog exceeds the channel's credits.
    pub fn received(
        &mut self,
        channel: usize,
        backlog: u32,
        out: &mut Vec<(usize, u32)>,
    ) -> Result<(), CreditViolation> {
        let c = &mut self.channels[channel];
        if !c.opened || c.ended || c.granted == 0 {
            return Err(CreditViolation { channel });
        }
        c.granted -= 1;
        c.held += 1;
        c.backlog = backlog;
        self.grant_floating(channel, out);
        Ok(())
    }

    fn grant_floating(&mut self, channel: usize, out: &mut Vec<(usize, u32)>) {
        let c = &mut self.channels[channel];
        if c.granted >= c.backlog {
            return;
        }
        let want = c.backlog - c.granted;
        let k = want.min(self.floating_free);
        if k > 0 {
            self.floating_free -= k;
            c.floating += k;
            c.granted += k;
            out.push((channel, k));
        }
        if k < want && !c.waiting {
            c.waiting = true;
            self.waiting.push_back(channel);
        }
    }

    /// The task is done with a buffer of `channel`: its credit goes back to the producer,
    /// or, if it was floating and the channel has credit enough, to the shared pool.
    pub fn recycled(&mut self, channel: usize, out: &mut Vec<(usize, u32)>) {
        let c = &mut self.channels[channel];
        debug_assert!(c.held > 0, "recycled a buffer that was not held");
        c.held = c.held.saturating_sub(1);
        if c.ended {
            if c.floating > 0 {
                c.floating -= 1;
                self.release_floating(out);
            }
            return;
        }
        if c.floating > 0 && c.granted >= c.backlog {
            c.floating -= 1;
            self.release_floating(out);
        } else {
            c.granted += 1;
            out.push((channel, 1));
        }
    }

    /// The channel delivered its end of partition: its producer sends nothing more, so its
    /// unused floating credits go back to the pool (held buffers follow when recycled).
    pub fn ended(&mut self, channel: usize, out: &mut Vec<(usize, u32)>) {
        let c = &mut self.channels[channel];
        if c.ended {
            return;
        }
        c.ended = true;
        let unused_floating = c.floating.min(c.granted);
        c.floating -= unused_floating;
        c.granted = 0;
        for _ in 0..unused_floating {
            self.release_floating(out);
        }
    }

    fn release_floating(&mut self, out: &mut Vec<(usize, u32)>) {
        self.floating_free += 1;
        while let Some(w) = self.waiting.pop_front() {
            let c = &mut self.channels[w];
            c.waiting = false;
            if c.ended || c.granted >= c.backlog {
                continue;
            }
            self.floating_free -= 1;
            c.floating += 1;
            c.granted += 1;
            out.push((w, 1));
            if c.granted < c.backlog {
                c.waiting = true;
                self.waiting.push_back(w);
            }
            return;
        }
    }

    /// Returns the buffers of `channel` the producer may still send (its credits).
    pub fn granted(&self, channel: usize) -> u32 {
        self.channels[channel].granted
    }

    /// Checks the invariants of the module docs; returns what is violated.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut floating = 0;
        for (i, c) in self.channels.iter().enumerate() {
            floating += c.floating;
            if c.opened && !c.ended && c.granted + c.held != self.exclusive + c.floating {
                return Err(format!(
                    "channel {i}: granted {} + held {} != exclusive {} + floating {}",
                    c.granted, c.held, self.exclusive, c.floating
                ));
            }
        }
        if floating + self.floating_free != self.floating_total {
            return Err(format!(
                "floating owned {floating} + free {} != {}",
                self.floating_free, self.floating_total
            ));
        }
        Ok(())
    }
}

/// Passes of a busy consumer's loop before it announces the credits it collected.
const CREDIT_BATCH: u32 = 8;

/// The credits of all input gates of one task: accounted per gate ([`InputCredits`]) and
/// announced, in batches, to each channel's producer through its [`CreditSink`].
///
/// Gates and channels are indices that the caller checked (see
/// [`GateCredits::has_channel`]).
pub struct GateCredits {
    credits: Vec<InputCredits>,
    /// Where each channel's credits go, once its producer connected.
    sinks: Vec<Vec<Option<Box<dyn CreditSink>>>>,
    /// What the accounting just granted, until [`GateCredits::announce`] takes it.
    grants: Vec<(usize, u32)>,
    /// Credits granted but not announced yet, per gate and channel.
    deferred: Vec<Vec<u32>>,
    /// Channels with deferred credits.
    dirty: Vec<(usize, usize)>,
    /// Passes of the task loop since the deferred credits were last announced.
    since_flush: u32,
    /// Per gate: the buffer size its producers were asked for (buffer debloating).
    sizes: Vec<Option<u32>>,
}

impl GateCredits {
    /// Accounts one gate per entry of `channels` (its channel count), with `exclusive`
    /// buffers per channel and `floating` shared buffers per gate.
    pub fn new(channels: &[usize], exclusive: u32, floating: u32) -> Self {
        Self {
            credits: channels
                .iter()
                .map(|&n| InputCredits::new(n, exclusive, floating))
                .collect(),
            sinks: channels
                .iter()
                .map(|&n| (0..n).map(|_| None).collect())
                .collect(),
            grants: Vec::new(),
            deferred: channels.iter().map(|&n| vec![0; n]).collect(),
            dirty: Vec::new(),
            since_flush: 0,
            sizes: vec![None; channels.len()],
        }
    }

    /// Asks every producer of `gate`, and those that connect later, for buffers of
    /// `bytes` bytes.
    pub fn buffer_size(&mut self, gate: usize, bytes: u32) {
        self.sizes[gate] = Some(bytes);
        for sink in self.sinks[gate].iter().flatten() {
            sink.resize_buffers(bytes);
        }
    }

    /// Returns the number of buffers all gates may hold at most.
    pub fn capacity(&self) -> usize {
        self.credits.iter().map(InputCredits::capacity).sum()
    }

    /// Returns whether `gate` exists and has a channel `channel`.
    pub fn has_channel(&self, gate: usize, channel: usize) -> bool {
        self.sinks.get(gate).is_some_and(|s| channel < s.len())
    }

    /// A channel's producer connected: its credits go to `sink` from now on, starting
    /// with its exclusive ones.
    pub fn opened(&mut self, gate: usize, channel: usize, sink: Box<dyn CreditSink>) {
        if let Some(bytes) = self.sizes[gate] {
            sink.resize_buffers(bytes);
        }
        self.sinks[gate][channel] = Some(sink);
        self.credits[gate].open(channel, &mut self.grants);
        self.announce(gate);
    }

    /// The task took a buffer of the channel that reported `backlog` (see
    /// [`InputCredits::received`]).
    pub fn received(
        &mut self,
        gate: usize,
        channel: usize,
        backlog: u32,
    ) -> Result<(), CreditViolation> {
        self.credits[gate].received(channel, backlog, &mut self.grants)?;
        self.announce(gate);
        Ok(())
    }

    /// The task is done with a buffer of the channel; `ended` says that the channel's end
    /// of partition was read (see [`InputCredits::ended`] and [`InputCredits::recycled`]).
    pub fn recycled(&mut self, gate: usize, channel: usize, ended: bool) {
        if ended {
            self.credits[gate].ended(channel, &mut self.grants);
        }
        self.credits[gate].recycled(channel, &mut self.grants);
        self.announce(gate);
    }

    /// Starts a pass of the task loop that finds `queued` messages in its queue: announces
    /// every collected credit when the queue is empty or every `CREDIT_BATCH` passes.
    pub fn on_pass(&mut self, queued: usize) {
        if queued == 0 || self.since_flush >= CREDIT_BATCH {
            self.flush();
            self.since_flush = 0;
        }
        self.since_flush += 1;
    }

    /// Takes the credits the accounting granted on `gate`: announces those of a channel
    /// whose producer has no other credit left at once, and collects the others.
    fn announce(&mut self, gate: usize) {
        for (ch, n) in self.grants.drain(..) {
            let d = &mut self.deferred[gate][ch];
            if *d == 0 {
                self.dirty.push((gate, ch));
            }
            *d += n;
            if self.credits[gate].granted(ch) <= *d {
                let n = std::mem::take(d);
                if let Some(sink) = &self.sinks[gate][ch] {
                    sink.announce(n);
                }
            }
        }
    }

    /// Announces every collected credit.
    pub fn flush(&mut self) {
        for (g, ch) in self.dirty.drain(..) {
            let n = std::mem::take(&mut self.deferred[g][ch]);
            if n > 0 {
                if let Some(sink) = &self.sinks[g][ch] {
                    sink.announce(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Subpartition;
    use crate::types::GateAddress;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::sync::Arc;

    /// A producer that follows the protocol: sends one buffer per credit, in order.
    #[derive(Default)]
    struct Producer {
        credit: u32,
        queued: u32,
    }

    #[test]
    fn opening_grants_the_exclusive_buffers() {
        let mut c = InputCredits::new(2, 2, 8);
        let mut out = Vec::new();
        c.open(1, &mut out);
        assert_eq!(out, vec![(1, 2)]);
        c.open(1, &mut out);
        assert_eq!(out.len(), 1, "a second open grants nothing");
    }

    #[test]
    fn a_backlog_beyond_credit_gets_floating_buffers_which_return_when_it_is_served() {
        let mut c = InputCredits::new(2, 2, 3);
        let mut out = Vec::new();
        c.open(0, &mut out);
        c.open(1, &mut out);
        out.clear();
        c.received(0, 6, &mut out).unwrap();
        // Granted 1 left, backlog 6: all 3 floating buffers go to channel 0.
        assert_eq!(out, vec![(0, 3)]);
        out.clear();
        c.received(1, 5, &mut out).unwrap();
        assert!(out.is_empty(), "no floating buffer is free");
        c.check_invariants().unwrap();
        // Channel 0 gets its backlog served; its floating buffers return and go to
        // channel 1, which waits for them.
        c.received(0, 0, &mut out).unwrap();
        c.recycled(0, &mut out);
        assert_eq!(out, vec![(1, 1)]);
        c.check_invariants().unwrap();
    }

    #[test]
    fn a_buffer_without_credit_is_a_violation() {
        let mut c = InputCredits::new(1, 1, 0);
        let mut out = Vec::new();
        assert_eq!(
            c.received(0, 0, &mut out),
            Err(CreditViolation { channel: 0 })
        );
        c.open(0, &mut out);
        c.received(0, 0, &mut out).unwrap();
        assert_eq!(
            c.received(0, 0, &mut out),
            Err(CreditViolation { channel: 0 })
        );
    }

    #[test]
    fn an_ended_channel_returns_its_floating_buffers() {
        let mut c = InputCredits::new(2, 1, 2);
        let mut out = Vec::new();
        c.open(0, &mut out);
        c.open(1, &mut out);
        c.received(0, 4, &mut out).unwrap();
        c.received(1, 3, &mut out).unwrap();
        out.clear();
        c.ended(0, &mut out);
        c.recycled(0, &mut out);
        assert_eq!(out, vec![(1, 1), (1, 1)]);
        c.check_invariants().unwrap();
    }

    fn test_gate() -> GateAddress {
        crate::exchange::test_gate_address()
    }

    #[test]
    fn a_buffer_size_reaches_every_producer_of_the_gate_also_those_that_connect_later() {
        let input = crate::exchange::InputGate::new();
        let gate = test_gate();
        let producers: Vec<Arc<Subpartition>> = (0..2)
            .map(|ch| Arc::new(Subpartition::local(input.sender(), gate, ch)))
            .collect();
        let mut c = GateCredits::new(&[2], 2, 0);
        c.opened(0, 0, Box::new(producers[0].clone()));
        assert_eq!(producers[0].buffer_size(), None);
        c.buffer_size(0, 1024);
        assert_eq!(producers[0].buffer_size(), Some(1024));
        c.opened(0, 1, Box::new(producers[1].clone()));
        assert_eq!(producers[1].buffer_size(), Some(1024));
    }

    #[test]
    fn recycled_credits_wait_for_a_batch_unless_the_producer_has_no_credit_left() {
        let input = crate::exchange::InputGate::new();
        let gate = test_gate();
        let producer = Arc::new(Subpartition::local(input.sender(), gate, 0));
        let announced = || producer.counts().0;
        let mut c = GateCredits::new(&[1], 2, 0);
        c.opened(0, 0, Box::new(producer.clone()));
        assert_eq!(announced(), 2, "the exclusive credits go out at once");

        // The producer still has a credit: the recycled one waits for an empty queue...
        c.received(0, 0, 0).unwrap();
        c.recycled(0, 0, false);
        c.on_pass(1);
        assert_eq!(announced(), 2);
        c.on_pass(0);
        assert_eq!(announced(), 3);

        // ... or for `CREDIT_BATCH` passes of a busy loop.
        c.received(0, 0, 0).unwrap();
        c.recycled(0, 0, false);
        for _ in 1..CREDIT_BATCH {
            c.on_pass(1);
        }
        assert_eq!(announced(), 3);
        c.on_pass(1);
        assert_eq!(announced(), 4);

        // The producer used all its credits: a recycled one goes out at once.
        c.received(0, 0, 0).unwrap();
        c.received(0, 0, 0).unwrap();
        c.recycled(0, 0, false);
        assert_eq!(announced(), 5);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Produce(usize, u8),
        Deliver(usize),
        Consume,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..4, 1u8..6).prop_map(|(c, n)| Op::Produce(c, n)),
            (0usize..4).prop_map(Op::Deliver),
            Just(Op::Consume),
        ]
    }

    proptest! {
        /// Any interleaving of producing, delivering and consuming: a sender never has
        /// more buffers in flight than the credit granted to it, and the consumer never
        /// holds more buffers than its channels' exclusive plus floating buffers.
        #[test]
        fn a_sender_never_has_more_buffers_in_flight_than_credit_granted(
            exclusive in 1u32..3, floating in 0u32..5, ops in proptest::collection::vec(op(), 1..400)
        ) {
            const N: usize = 4;
            let mut credits = InputCredits::new(N, exclusive, floating);
            let mut producers: Vec<Producer> = (0..N).map(|_| Producer::default()).collect();
            let mut in_flight: VecDeque<(usize, u32)> = VecDeque::new();
            let mut held: VecDeque<usize> = VecDeque::new();
            let mut out = Vec::new();
            for ch in 0..N {
                credits.open(ch, &mut out);
            }
            for op in ops {
                for (ch, n) in out.drain(..) {
                    producers[ch].credit += n;
                }
                match op {
                    Op::Produce(ch, n) => producers[ch].queued += n as u32,
                    Op::Deliver(ch) => {
                        let p = &mut producers[ch];
                        if p.credit > 0 && p.queued > 0 {
                            p.credit -= 1;
                            p.queued -= 1;
                            in_flight.push_back((ch, p.queued));
                        }
                    }
                    Op::Consume => {
                        if let Some((ch, backlog)) = in_flight.pop_front() {
                            credits.received(ch, backlog, &mut out).unwrap();
                            held.push_back(ch);
                        } else if let Some(ch) = held.pop_front() {
                            credits.recycled(ch, &mut out);
                        }
                    }
                }
                credits.check_invariants().map_err(TestCaseError::fail)?;
                for (ch, p) in producers.iter().enumerate() {
                    let flying = in_flight.iter().filter(|(c, _)| *c == ch).count() as u32;
                    let announcing: u32 = out.iter().filter(|(c, _)| *c == ch).map(|(_, n)| n).sum();
                    // What the producer may send (credit) plus what it sent and the
                    // consumer did not take yet is exactly what the consumer granted.
                    prop_assert_eq!(flying + p.credit + announcing, credits.granted(ch));
                }
                prop_assert!(in_flight.len() + held.len() <= credits.capacity());
            }
        }

        /// A consumer that keeps consuming drains every producer's backlog: no credit is
        /// ever lost, whatever the skew.
        #[test]
        fn credits_are_never_lost_so_every_backlog_drains(
            exclusive in 1u32..3, floating in 0u32..5, backlogs in proptest::collection::vec(0u32..40, 4)
        ) {
            let n = backlogs.len();
            let mut credits = InputCredits::new(n, exclusive, floating);
            let mut producers: Vec<Producer> = backlogs.iter().map(|&q| Producer { credit: 0, queued: q }).collect();
            let mut out = Vec::new();
            for ch in 0..n {
                credits.open(ch, &mut out);
            }
            let total: u32 = backlogs.iter().sum();
            let mut consumed = 0;
            for _ in 0..(total * 4 + 10) {
                for (ch, k) in out.drain(..) {
                    producers[ch].credit += k;
                }
                let mut delivered = Vec::new();
                for (ch, p) in producers.iter_mut().enumerate() {
                    if p.credit > 0 && p.queued > 0 {
                        p.credit -= 1;
                        p.queued -= 1;
                        delivered.push((ch, p.queued));
                    }
                }
                for (ch, backlog) in delivered {
                    credits.received(ch, backlog, &mut out).unwrap();
                    credits.recycled(ch, &mut out);
                    consumed += 1;
                }
            }
            prop_assert_eq!(consumed, total);
        }
    }
}
