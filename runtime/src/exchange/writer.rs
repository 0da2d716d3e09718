//! The producer side of one output edge: a buffer pool and one subpartition per consumer
//! channel.
//!
//! Records are serialized once, straight into the current buffer of their channel
//! (broadcast copies the encoded frame, it never serializes again). A buffer goes to its
//! subpartition when it reaches the configured buffer size, when the task flushes (buffer
//! timeout), or at the end of the partition; the subpartition delivers it against credit.
//! A record that does not fit the rest of a buffer's capacity spans several buffers
//! (marked so the consumer reassembles it).
//!
//! Invariant: every buffer comes from this writer's pool, so a producer whose consumers
//! grant no credit blocks in [`BufferPool::request`] once the pool is out, and the time it
//! waits counts as back-pressure.

use super::buffer::{Buffer, BufferPool, FLAG_BARRIER, FLAG_CONTINUES, FLAG_END};
use super::protocol::HEADER_LEN;
use super::subpartition::Subpartition;
use crate::checkpoint::channel_state::ChannelData;
use crate::element::{self, Element};
use crate::error::ExchangeError;
use crate::metrics::TaskMetrics;
use crate::types::Timestamp;
use serde::Serialize;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

struct Channel {
    current: Option<Buffer>,
    sub: Arc<Subpartition>,
    /// Segment length at which the current buffer is full: the writer's, or less if the
    /// consumer asked for smaller buffers (buffer debloating).
    flush_at: usize,
}

/// Writes the records of one output edge into its channels.
pub struct PartitionWriter {
    channels: Vec<Channel>,
    pool: BufferPool,
    /// Segment length at which a buffer is full (header plus buffer size).
    flush_at: usize,
    /// Segment length beyond which a record spills into the next buffer.
    capacity: usize,
    records_out: u64,
    cancel: Arc<AtomicBool>,
    scratch: Vec<u8>,
    metrics: Arc<TaskMetrics>,
    reported: u64,
    finished: bool,
    /// The state name of this output's in-flight data in unaligned checkpoints.
    in_flight_uid: String,
}

impl PartitionWriter {
    /// Creates a writer over one subpartition per consumer subtask, drawing buffers of
    /// `buffer_size` bytes from `pool`; a set `cancel` flag ends waits for buffers.
    pub fn new(
        subpartitions: Vec<Arc<Subpartition>>,
        pool: BufferPool,
        buffer_size: usize,
        cancel: Arc<AtomicBool>,
        metrics: Arc<TaskMetrics>,
    ) -> Self {
        let channels = subpartitions
            .into_iter()
            .map(|sub| Channel {
                current: None,
                sub,
                flush_at: HEADER_LEN + buffer_size,
            })
            .collect();
        let capacity = pool.segment_capacity();
        metrics.add_output_pool(pool.stats());
        Self {
            channels,
            pool,
            flush_at: HEADER_LEN + buffer_size,
            capacity,
            records_out: 0,
            cancel,
            scratch: Vec::new(),
            metrics,
            reported: 0,
            finished: false,
            in_flight_uid: String::new(),
        }
    }

    /// Names this output's in-flight data in unaligned checkpoints `uid`.
    pub fn with_in_flight_uid(mut self, uid: String) -> Self {
        self.in_flight_uid = uid;
        self
    }

    /// The state name of this output's in-flight data in unaligned checkpoints.
    pub fn in_flight_uid(&self) -> &str {
        &self.in_flight_uid
    }

    /// Sends the barrier of `checkpoint` on every channel. Aligned, it follows the data
    /// written so far (with the `timeout` option it may overtake the buffers ahead of it
    /// later, see [`Subpartition::overtake_barrier`]). Unaligned, it goes ahead of the buffers queued for each channel
    /// (the one being filled is queued first), and the buffers it overtook are returned:
    /// the checkpoint's in-flight data of this output.
    pub fn barrier(
        &mut self,
        checkpoint: crate::types::CheckpointId,
        options: element::BarrierOptions,
    ) -> Result<Option<ChannelData>, ExchangeError> {
        if options.timeout && !options.unaligned {
            self.barrier_that_may_overtake(checkpoint, options)?;
            return Ok(None);
        }
        if !options.unaligned {
            self.broadcast_event(&Element::Barrier(checkpoint, options))?;
            self.flush()?;
            return Ok(None);
        }
        self.flush()?;
        let mut data = Vec::new();
        for (i, ch) in self.channels.iter().enumerate() {
            let overtaken = ch.sub.priority_barrier(checkpoint, options)?;
            if !overtaken.is_empty() {
                data.push((i as u32, overtaken));
            }
        }
        Ok(Some(data))
    }

    /// Sends an aligned barrier that may overtake later: it ends each channel's buffer,
    /// which is flagged [`FLAG_BARRIER`] with the frame's start in `complete` (so a
    /// consumer finds it without reading the buffer), and each subpartition notes it.
    fn barrier_that_may_overtake(
        &mut self,
        checkpoint: crate::types::CheckpointId,
        options: element::BarrierOptions,
    ) -> Result<(), ExchangeError> {
        for i in 0..self.channels.len() {
            let buf = self.current(i)?;
            let at = buf.len() - HEADER_LEN;
            // An event is far smaller than the slack past the flush threshold: it fits.
            element::write_event(buf, &Element::Barrier(checkpoint, options));
            let mut b = self.channels[i].current.take().expect("a current buffer");
            b.flags |= FLAG_BARRIER;
            b.complete = at as u32;
            self.send(i, b)?;
            self.channels[i].sub.note_barrier(checkpoint);
        }
        Ok(())
    }

    /// Queues the in-flight data an unaligned checkpoint stored for this output, before
    /// anything else is written: each channel's buffers, in order.
    pub fn restore_in_flight(&mut self, data: ChannelData) -> Result<(), ExchangeError> {
        for (channel, buffers) in data {
            let Some(ch) = self.channels.get(channel as usize) else {
                return Err(ExchangeError::InputFailed(format!(
                    "restored data in flight names channel {channel} of an output with {}",
                    self.channels.len()
                )));
            };
            let sub = ch.sub.clone();
            for stored in buffers {
                if HEADER_LEN + stored.bytes.len() > self.capacity {
                    return Err(ExchangeError::InputFailed(format!(
                        "restored data in flight holds a buffer of {} bytes, more than this job's network buffers take (taskmanager.network.buffer-size): restore with the buffer size the checkpoint was taken with",
                        stored.bytes.len()
                    )));
                }
                let mut b = self.request()?;
                b.vec_mut().extend_from_slice(&stored.bytes);
                b.flags = stored.flags;
                b.complete = stored.complete;
                sub.add(b)?;
            }
        }
        Ok(())
    }

    /// Returns the subpartitions, one per consumer channel, in order.
    pub fn subpartitions(&self) -> Vec<Arc<Subpartition>> {
        self.channels.iter().map(|ch| ch.sub.clone()).collect()
    }

    /// Returns the number of consumer channels.
    pub fn num_channels(&self) -> usize {
        self.channels.len()
    }

    /// Returns the number of records written so far.
    pub fn records_out(&self) -> u64 {
        self.records_out
    }

    #[inline]
    fn current(&mut self, channel: usize) -> Result<&mut Vec<u8>, ExchangeError> {
        if self.channels[channel].current.is_none() {
            let b = self.request()?;
            let max = self.flush_at;
            let ch = &mut self.channels[channel];
            ch.flush_at = ch
                .sub
                .buffer_size()
                .map_or(max, |s| (HEADER_LEN + s).min(max));
            ch.current = Some(b);
        }
        Ok(self.channels[channel]
            .current
            .as_mut()
            .expect("set above")
            .vec_mut())
    }

    fn request(&mut self) -> Result<Buffer, ExchangeError> {
        if let Some(b) = self.pool.try_request() {
            return Ok(b);
        }
        let since = Instant::now();
        let b = self.pool.request(&self.cancel);
        self.metrics
            .add_back_pressured_ns(since.elapsed().as_nanos() as u64);
        b
    }

    /// Serializes `value` into the buffer of `channel`.
    #[inline]
    pub fn write_record<T: Serialize>(
        &mut self,
        channel: usize,
        value: &T,
        timestamp: Timestamp,
    ) -> Result<(), ExchangeError> {
        let buf = self.current(channel)?;
        let start = element::begin_record(buf, timestamp);
        if let Err(e) = weir_state_backends::encode_into(value, buf) {
            buf.truncate(start);
            return Err(ExchangeError::Serialize(e.to_string()));
        }
        element::finish_frame(buf, start);
        let len = buf.len();
        let full = len >= self.channels[channel].flush_at;
        self.records_out += 1;
        if full {
            self.emit_full(channel, start)?;
        }
        Ok(())
    }

    /// Serializes `value` once and appends it to every channel.
    pub fn broadcast_record<T: Serialize>(
        &mut self,
        value: &T,
        timestamp: Timestamp,
    ) -> Result<(), ExchangeError> {
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        let start = element::begin_record(&mut frame, timestamp);
        if let Err(e) = weir_state_backends::encode_into(value, &mut frame) {
            self.scratch = frame;
            return Err(ExchangeError::Serialize(e.to_string()));
        }
        element::finish_frame(&mut frame, start);
        let result = self.append_to_all(&frame);
        self.scratch = frame;
        result
    }

    fn append_to_all(&mut self, frame: &[u8]) -> Result<(), ExchangeError> {
        for i in 0..self.channels.len() {
            let buf = self.current(i)?;
            let start = buf.len();
            buf.extend_from_slice(frame);
            let len = buf.len();
            let full = len >= self.channels[i].flush_at;
            self.records_out += 1;
            if full {
                self.emit_full(i, start)?;
            }
        }
        Ok(())
    }

    /// Appends an event (watermark, idleness, barrier, end) to every channel.
    pub fn broadcast_event(&mut self, event: &Element<'_>) -> Result<(), ExchangeError> {
        if let Element::Watermark(wm) = event {
            self.metrics.set_output_watermark(*wm);
        }
        for i in 0..self.channels.len() {
            let buf = self.current(i)?;
            let start = buf.len();
            element::write_event(buf, event);
            let len = buf.len();
            if len >= self.channels[i].flush_at {
                self.emit_full(i, start)?;
            }
        }
        Ok(())
    }

    /// Hands the full current buffer of `channel`, whose last frame starts at `last`, to
    /// its subpartition. Bytes beyond the segment capacity (a record larger than the room
    /// left) continue in following buffers; the last of those stays current.
    fn emit_full(&mut self, channel: usize, last: usize) -> Result<(), ExchangeError> {
        let mut buf = self.channels[channel]
            .current
            .take()
            .expect("a current buffer");
        if buf.vec_mut().len() <= self.capacity {
            return self.send(channel, buf);
        }
        let rest = buf.vec_mut().split_off(self.capacity);
        buf.flags |= FLAG_CONTINUES;
        buf.complete = (last - HEADER_LEN) as u32;
        self.send(channel, buf)?;
        let chunk = self.flush_at - HEADER_LEN;
        let mut pos = 0;
        loop {
            let mut next = self.request()?;
            let n = (rest.len() - pos).min(chunk);
            next.vec_mut().extend_from_slice(&rest[pos..pos + n]);
            pos += n;
            if pos == rest.len() {
                if n == chunk {
                    self.send(channel, next)?;
                } else {
                    self.channels[channel].current = Some(next);
                }
                return Ok(());
            }
            next.flags |= FLAG_CONTINUES;
            next.complete = 0;
            self.send(channel, next)?;
        }
    }

    fn send(&mut self, channel: usize, buffer: Buffer) -> Result<(), ExchangeError> {
        self.channels[channel].sub.add(buffer)?;
        self.metrics
            .add_records_out(self.records_out - self.reported);
        self.reported = self.records_out;
        Ok(())
    }

    /// Hands every non-empty buffer to its channel.
    pub fn flush(&mut self) -> Result<(), ExchangeError> {
        for i in 0..self.channels.len() {
            let non_empty = self.channels[i]
                .current
                .as_ref()
                .is_some_and(|b| b.payload_len() > 0);
            if non_empty {
                let b = self.channels[i].current.take().expect("checked");
                self.send(i, b)?;
            }
        }
        Ok(())
    }

    /// Sends end-of-partition on every channel and waits until every buffer was delivered.
    pub fn finish(&mut self) -> Result<(), ExchangeError> {
        for i in 0..self.channels.len() {
            // An event is far smaller than the slack past the flush threshold, so the end
            // always fits the current buffer.
            let buf = self.current(i)?;
            element::write_event(buf, &Element::EndOfPartition);
            let mut b = self.channels[i].current.take().expect("set above");
            b.flags |= FLAG_END;
            self.send(i, b)?;
        }
        for ch in &self.channels {
            ch.sub.wait_drained(&self.cancel)?;
        }
        self.finished = true;
        Ok(())
    }
}

impl Drop for PartitionWriter {
    fn drop(&mut self) {
        if !self.finished {
            for ch in &self.channels {
                ch.sub.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::channel_state::ChannelBuffer;
    use crate::exchange::{BufferPool, InputGate, InputMessage, NetworkBufferPool};
    use crate::types::GateAddress;

    fn test_address() -> GateAddress {
        crate::exchange::test_gate_address()
    }

    fn writer(gate: &InputGate) -> (PartitionWriter, Arc<Subpartition>) {
        let address = test_address();
        let sub = Arc::new(Subpartition::local(gate.sender(), address, 0));
        let pool = BufferPool::new(&NetworkBufferPool::new(4), 4, 64, "test").unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(TaskMetrics::default());
        let w = PartitionWriter::new(vec![sub.clone()], pool, 64, cancel, metrics);
        (w, sub)
    }

    fn stored(bytes: Vec<u8>) -> ChannelBuffer {
        ChannelBuffer {
            complete: bytes.len() as u32,
            bytes,
            flags: 0,
        }
    }

    #[test]
    fn restored_data_in_flight_goes_out_first_and_an_oversized_buffer_is_refused_naming_the_key() {
        let gate = InputGate::new();
        let (mut w, sub) = writer(&gate);
        w.restore_in_flight(vec![(0, vec![stored(vec![7; 10]), stored(vec![8; 5])])])
            .unwrap();
        sub.add_credit(2);
        let got: Vec<Vec<u8>> = std::iter::from_fn(|| gate.try_recv())
            .map(|m| match m {
                InputMessage::Buffer { buffer, .. } => buffer.payload().to_vec(),
                other => panic!("not a buffer: {other:?}"),
            })
            .collect();
        assert_eq!(got, vec![vec![7; 10], vec![8; 5]]);

        let err = w
            .restore_in_flight(vec![(0, vec![stored(vec![1; 5000])])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("taskmanager.network.buffer-size"), "{err}");
        let err = w.restore_in_flight(vec![(3, Vec::new())]).unwrap_err();
        assert!(err.to_string().contains("channel 3"), "{err}");
    }

    #[test]
    fn a_buffer_started_after_the_consumer_asked_for_smaller_ones_is_flushed_at_that_size() {
        let gate = InputGate::new();
        let address = test_address();
        let sub = Arc::new(Subpartition::local(gate.sender(), address, 0));
        let pool = BufferPool::new(&NetworkBufferPool::new(8), 8, 1024, "test").unwrap();
        let metrics = Arc::new(TaskMetrics::default());
        let cancel = Arc::new(AtomicBool::new(false));
        let mut w = PartitionWriter::new(vec![sub.clone()], pool, 1024, cancel, metrics);
        sub.add_credit(8);
        let sizes = |w: &mut PartitionWriter, records: u32| {
            for i in 0..records {
                w.write_record(0, &i, crate::types::NO_TIMESTAMP).unwrap();
            }
            w.flush().unwrap();
            std::iter::from_fn(|| gate.try_recv())
                .map(|m| match m {
                    InputMessage::Buffer { buffer, .. } => buffer.payload_len(),
                    other => panic!("not a buffer: {other:?}"),
                })
                .collect::<Vec<usize>>()
        };
        // A hundred small records fit one buffer of 1 KiB.
        assert_eq!(sizes(&mut w, 100).len(), 1);
        // The consumer asks for less than the least size: buffers of 256 bytes.
        sub.set_buffer_size(20);
        let debloated = sizes(&mut w, 100);
        let (last, full) = debloated.split_last().unwrap();
        assert!(
            full.len() >= 2 && full.iter().all(|&n| (256..270).contains(&n)) && *last < 270,
            "{debloated:?}"
        );
    }
}
