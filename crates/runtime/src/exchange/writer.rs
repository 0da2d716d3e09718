//! The producer side of one output edge: one buffer per consumer channel.
//!
//! Records are serialized once, straight into the buffer of their channel (broadcast copies
//! the encoded frame, it never serializes again). A buffer is handed to its channel when it
//! reaches the configured buffer size, when the task flushes (buffer timeout), or at the
//! end of the partition.

use super::gate::InputMessage;
use super::remote::RemoteChannel;
use crate::element::{self, Element};
use crate::error::ExchangeError;
use crate::metrics::TaskMetrics;
use crate::types::{GateAddress, Timestamp};
use bytes::Bytes;
use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

/// How often a producer blocked on a full channel looks at its cancellation flag.
const SEND_WAIT_SLICE: Duration = Duration::from_millis(50);

/// Where one channel's buffers go.
pub enum ChannelSink {
    /// A consumer in the same TaskManager: buffers are handed over in memory.
    Local {
        /// The consumer's input queue.
        sender: Sender<InputMessage>,
        /// The consumer's gate.
        gate: GateAddress,
        /// Channel index within the gate.
        channel: u32,
    },
    /// A consumer in another TaskManager.
    Remote(RemoteChannel),
}

impl ChannelSink {
    /// Hands a buffer to the channel, waiting while the consumer's queue is full; a set
    /// `cancel` flag ends the wait within [`SEND_WAIT_SLICE`]. Time spent waiting counts as
    /// back-pressure.
    fn send(
        &mut self,
        data: Bytes,
        index: usize,
        cancel: &AtomicBool,
        metrics: &TaskMetrics,
    ) -> Result<(), ExchangeError> {
        match self {
            ChannelSink::Local {
                sender,
                gate,
                channel,
            } => {
                let msg = InputMessage::Buffer {
                    gate: gate.gate,
                    channel: *channel,
                    data,
                };
                let mut msg = match sender.try_send(msg) {
                    Ok(()) => return Ok(()),
                    Err(TrySendError::Full(m)) => m,
                    Err(TrySendError::Disconnected(_)) => {
                        return Err(ExchangeError::ConsumerGone {
                            channel: index,
                            target: format!("{gate:?}"),
                        })
                    }
                };
                let _back_pressure = BackPressure {
                    metrics,
                    since: Instant::now(),
                };
                loop {
                    match sender.send_timeout(msg, SEND_WAIT_SLICE) {
                        Ok(()) => return Ok(()),
                        Err(SendTimeoutError::Timeout(m)) => {
                            if cancel.load(Ordering::Relaxed) {
                                return Err(ExchangeError::Cancelled);
                            }
                            msg = m;
                        }
                        Err(SendTimeoutError::Disconnected(_)) => {
                            return Err(ExchangeError::ConsumerGone {
                                channel: index,
                                target: format!("{gate:?}"),
                            })
                        }
                    }
                }
            }
            ChannelSink::Remote(r) => r.send(&data, cancel, metrics),
        }
    }
}

/// Adds the time since `since` to the back-pressure metric when dropped.
struct BackPressure<'a> {
    metrics: &'a TaskMetrics,
    since: Instant,
}

impl Drop for BackPressure<'_> {
    fn drop(&mut self) {
        self.metrics
            .add_back_pressured_ns(self.since.elapsed().as_nanos() as u64);
    }
}

struct Channel {
    buf: Vec<u8>,
    sink: ChannelSink,
}

/// Writes the records of one output edge into its channels.
pub struct PartitionWriter {
    channels: Vec<Channel>,
    buffer_size: usize,
    round_robin: usize,
    records_out: u64,
    cancel: Arc<AtomicBool>,
    scratch: Vec<u8>,
    metrics: Arc<TaskMetrics>,
    reported: u64,
}

impl PartitionWriter {
    /// Creates a writer over one sink per consumer subtask; a set `cancel` flag ends waits
    /// on back-pressured channels.
    pub fn new(
        sinks: Vec<ChannelSink>,
        buffer_size: usize,
        cancel: Arc<AtomicBool>,
        metrics: Arc<TaskMetrics>,
    ) -> Self {
        let channels = sinks
            .into_iter()
            .map(|sink| Channel {
                buf: Vec::with_capacity(buffer_size + 256),
                sink,
            })
            .collect();
        Self {
            channels,
            buffer_size,
            round_robin: 0,
            records_out: 0,
            cancel,
            scratch: Vec::new(),
            metrics,
            reported: 0,
        }
    }

    /// Returns the number of consumer channels.
    pub fn num_channels(&self) -> usize {
        self.channels.len()
    }

    /// Returns the number of records written so far.
    pub fn records_out(&self) -> u64 {
        self.records_out
    }

    /// Returns the next channel in round-robin order.
    #[inline]
    pub fn next_round_robin(&mut self) -> usize {
        let c = self.round_robin;
        self.round_robin = if c + 1 == self.channels.len() {
            0
        } else {
            c + 1
        };
        c
    }

    /// Serializes `value` into the buffer of `channel`.
    #[inline]
    pub fn write_record<T: Serialize>(
        &mut self,
        channel: usize,
        value: &T,
        timestamp: Timestamp,
    ) -> Result<(), ExchangeError> {
        let ch = &mut self.channels[channel];
        let start = element::begin_record(&mut ch.buf, timestamp);
        if let Err(e) = weir_state_backends::encode_into(value, &mut ch.buf) {
            ch.buf.truncate(start);
            return Err(ExchangeError::Serialize(e.to_string()));
        }
        element::finish_frame(&mut ch.buf, start);
        self.records_out += 1;
        if ch.buf.len() >= self.buffer_size {
            self.flush_channel(channel)?;
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
            self.channels[i].buf.extend_from_slice(frame);
            self.records_out += 1;
            if self.channels[i].buf.len() >= self.buffer_size {
                self.flush_channel(i)?;
            }
        }
        Ok(())
    }

    /// Appends an event (watermark, idleness, barrier, end) to every channel.
    pub fn broadcast_event(&mut self, event: &Element<'_>) -> Result<(), ExchangeError> {
        for i in 0..self.channels.len() {
            element::write_event(&mut self.channels[i].buf, event);
            if self.channels[i].buf.len() >= self.buffer_size {
                self.flush_channel(i)?;
            }
        }
        Ok(())
    }

    /// Hands every non-empty buffer to its channel.
    pub fn flush(&mut self) -> Result<(), ExchangeError> {
        for i in 0..self.channels.len() {
            self.flush_channel(i)?;
        }
        Ok(())
    }

    /// Sends end-of-partition on every channel and flushes.
    pub fn finish(&mut self) -> Result<(), ExchangeError> {
        self.broadcast_event(&Element::EndOfPartition)?;
        self.flush()
    }

    fn flush_channel(&mut self, index: usize) -> Result<(), ExchangeError> {
        let ch = &mut self.channels[index];
        if ch.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut ch.buf, Vec::with_capacity(self.buffer_size + 256));
        ch.sink
            .send(Bytes::from(full), index, &self.cancel, &self.metrics)?;
        self.metrics
            .add_records_out(self.records_out - self.reported);
        self.reported = self.records_out;
        Ok(())
    }
}
