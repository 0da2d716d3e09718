//! The input side of checkpoints whose barriers overtake the data in flight: barriers of
//! unaligned checkpoints (priority events), and aligned ones whose alignment timed out
//! (`execution.checkpointing.aligned-checkpoint-timeout`).
//!
//! The first barrier of an unaligned checkpoint snapshots the task at once and starts the
//! capture of the data in flight ([`InFlight`]). An aligned checkpoint gives way to an
//! unaligned snapshot when it started longer than the timeout ago (its alignment here, or
//! its trigger, which such checkpoints send to every task, before any barrier was read),
//! or when one of its barriers arrives overtaking (its producer's queue timed out): the
//! channels that delivered the barrier already are released and contribute nothing (what
//! they hold follows the barrier); every other channel's data is captured up to its
//! barrier, which comes either overtaking (it names how many buffers precede it) or
//! aligned, flagged at the end of its buffer: the capture is cut at its frame as the
//! buffer arrives, even if the task reads it much later.
//!
//! Invariant: a capture is submitted only once every channel's barrier came (or the channel
//! ended), and given up, with its checkpoint declined, whenever it cannot be consistent.

use super::Inputs;
use crate::checkpoint::channel_state::{input_uid, PriorityBarrier};
use crate::checkpoint::OperatorSnapshot;
use crate::element::BarrierOptions;
use crate::error::TaskError;
use crate::invokable::TaskInvokable;
use crate::task::in_flight::BarrierStep;
use crate::task::mailbox::Commands;
use crate::types::CheckpointId;

impl Inputs {
    /// A barrier of an unaligned checkpoint overtook the buffers of channel `channel`:
    /// the first of its checkpoint snapshots the task at once (an alignment of the same
    /// checkpoint gives way). Returns whether it did (the buffers queued for the task are
    /// then to arrive at once, see [`Self::arrive`]).
    pub(in crate::task) fn priority(
        &mut self,
        inv: &mut dyn TaskInvokable,
        (gate, channel): (u16, u32),
        barrier: PriorityBarrier,
        commands: &mut Commands<'_>,
    ) -> Result<bool, TaskError> {
        let (g, ch) = self.check(gate, channel)?;
        let flat = self.offsets[g] + ch;
        let checkpoint = barrier.checkpoint;
        match self.in_flight.on_barrier(flat, &barrier) {
            BarrierStep::Stale | BarrierStep::Cut => {}
            BarrierStep::Overrun => {
                if let Some(old) = self.in_flight.abandon().filter(|c| *c != checkpoint) {
                    commands.decline(old, &format!("barrier {checkpoint} overran it"));
                }
                self.in_flight.pass(checkpoint);
                self.aligner.pass(checkpoint);
                commands.decline(
                    checkpoint,
                    &format!(
                        "gate {g} channel {ch} delivered data sent after the barrier before it"
                    ),
                );
            }
            BarrierStep::Start { abandoned } => {
                if let Some(old) = abandoned {
                    self.in_flight.abandon();
                    commands.decline(old, &format!("barrier {checkpoint} arrived before the data in flight of {old} was read"));
                }
                // The buffers an alignment of another checkpoint holds back are not part of
                // a capture: that checkpoint must end first (completed, or released once
                // aborted, see `release_aborted`).
                if let Some(aligning) = self.aligner.pending().filter(|a| *a != checkpoint) {
                    self.in_flight.pass(checkpoint);
                    self.aligner.pass(checkpoint);
                    commands.decline(
                        checkpoint,
                        &format!("checkpoint {aligning} is aligning its barriers"),
                    );
                    return Ok(false);
                }
                // Aligned barriers of the checkpoint still to come are stale from now on.
                let mut cut = self.give_way(checkpoint);
                cut[flat] = Some(barrier.sequence);
                return self.snapshot_overtaking(inv, (checkpoint, barrier.options), cut, commands);
            }
        }
        self.finish_capture(commands)?;
        Ok(false)
    }

    /// Releases the alignment of a checkpoint that was aborted meanwhile: its channels are
    /// read again (a newer checkpoint's barriers may then be taken).
    pub(in crate::task) fn release_aborted(
        &mut self,
        inv: &mut dyn TaskInvokable,
        commands: &mut Commands<'_>,
    ) -> Result<(), TaskError> {
        let aborted = commands.latest_aborted();
        if self
            .aligner
            .pending()
            .is_some_and(|p| aborted.is_some_and(|a| a >= p))
        {
            self.aligner.give_way();
            self.drain_released(inv, commands)?;
        }
        Ok(())
    }

    /// Returns whether the data in flight of a checkpoint is being captured.
    pub(in crate::task) fn capturing(&self) -> bool {
        self.in_flight.capturing().is_some()
    }

    /// Returns the aligned checkpoint whose barriers should overtake now, with its
    /// options: it may time out, this task has not snapshotted it, and it started longer
    /// than the aligned-checkpoint timeout ago (its alignment here, or, before any of its
    /// barriers was read, its trigger).
    pub(in crate::task) fn overtake_due(
        &self,
        commands: &Commands<'_>,
    ) -> Option<(CheckpointId, BarrierOptions)> {
        let timeout = self.align_timeout?;
        let (checkpoint, options, since) = match self.aligner.alignment() {
            Some(aligning) => aligning,
            None => commands.triggered()?,
        };
        let passed = self
            .aligner
            .last_done()
            .max(self.in_flight.latest())
            .max(commands.latest_aborted());
        let due = options.timeout
            && !options.unaligned
            && passed.is_none_or(|p| p < checkpoint)
            && since.elapsed() >= timeout;
        due.then_some((checkpoint, options))
    }

    /// The aligned checkpoint `checkpoint` timed out here (see [`Self::overtake_due`]):
    /// the task snapshots now and captures the data in flight up to each channel's
    /// barrier. Returns whether it snapshotted (the buffers queued for the task are then
    /// to arrive at once).
    pub(in crate::task) fn time_out(
        &mut self,
        inv: &mut dyn TaskInvokable,
        (checkpoint, options): (CheckpointId, BarrierOptions),
        commands: &mut Commands<'_>,
    ) -> Result<bool, TaskError> {
        let aligning = self.aligner.pending() == Some(checkpoint);
        tracing::info!(
            checkpoint,
            aligning,
            "aligned checkpoint timed out; its barriers overtake the data in flight"
        );
        let cut = self.give_way(checkpoint);
        self.snapshot_overtaking(inv, (checkpoint, options.overtaking()), cut, commands)
    }

    /// Ends the alignment of `checkpoint`, if pending, and makes its later barriers stale:
    /// returns the initial cut of a capture (0 buffers for each channel that delivered the
    /// barrier already, unknown for the others).
    fn give_way(&mut self, checkpoint: CheckpointId) -> Vec<Option<u64>> {
        let seen = match self.aligner.pending() {
            Some(p) if p == checkpoint => self.aligner.give_way().unwrap_or_default(),
            _ => Vec::new(),
        };
        self.aligner.pass(checkpoint);
        (0..self.total())
            .map(|i| seen.get(i).copied().unwrap_or(false).then_some(0))
            .collect()
    }

    /// Snapshots the task for `checkpoint` and starts capturing its data in flight from
    /// `cut` (see [`crate::task::in_flight::InFlight::start`]); reads what the ended
    /// alignment held back. Returns whether it snapshotted.
    fn snapshot_overtaking(
        &mut self,
        inv: &mut dyn TaskInvokable,
        (checkpoint, options): (CheckpointId, BarrierOptions),
        cut: Vec<Option<u64>>,
        commands: &mut Commands<'_>,
    ) -> Result<bool, TaskError> {
        if commands.is_stopping() {
            self.in_flight.pass(checkpoint);
            commands.decline(checkpoint, "the task is stopping with a savepoint");
            return Ok(false);
        }
        if let Some(older) = self.in_flight.abandon() {
            commands.decline(
                older,
                &format!("checkpoint {checkpoint} snapshotted before the data in flight of {older} was read"),
            );
        }
        let ended = commands.input_ended();
        let state = commands.take_snapshot(inv, checkpoint, options)?;
        let partial = self.pending.iter().map(|p| p.bytes().to_vec());
        let unread = self.unread.iter().map(|(f, s, b)| (*f, *s, b));
        self.in_flight
            .start((checkpoint, cut), (state, ended), partial, unread);
        self.drain_released(inv, commands)?;
        self.finish_capture(commands)?;
        Ok(true)
    }

    /// An aligned barrier of `checkpoint` was read on channel `flat` (`at`: where its
    /// frame starts in the buffer being read, if it does). Returns whether the capture in
    /// progress took it: it cuts the channel's data in flight there. A newer checkpoint's
    /// barrier abandons the capture.
    pub(super) fn cut_in_flight(
        &mut self,
        flat: usize,
        (checkpoint, at): (CheckpointId, Option<usize>),
        commands: &mut Commands<'_>,
    ) -> bool {
        let Some(capturing) = self.in_flight.capturing() else {
            return false;
        };
        if checkpoint < capturing {
            return false;
        }
        if checkpoint > capturing {
            self.in_flight.abandon();
            commands.decline(
                capturing,
                &format!("barrier {checkpoint} arrived before the data in flight of {capturing} was read"),
            );
            return false;
        }
        let cut = match (self.reading, at) {
            (Some(sequence), Some(at)) => self.in_flight.cut_in_band(flat, sequence, at),
            _ => false,
        };
        if !cut {
            let (g, ch) = self.unflat(flat);
            self.in_flight.abandon();
            commands.decline(
                checkpoint,
                &format!("the barrier of gate {g} channel {ch} does not end a buffer of its data in flight"),
            );
        }
        true
    }

    /// Submits the checkpoint being captured once its data in flight arrived; gives it up
    /// once it was aborted or copied too much.
    pub(super) fn finish_capture(&mut self, commands: &mut Commands<'_>) -> Result<(), TaskError> {
        if let Some((checkpoint, too_large)) = self.in_flight.give_up(commands.latest_aborted()) {
            if too_large {
                commands.decline(checkpoint, "its data in flight exceeds what a task copies");
            }
            return Ok(());
        }
        if let Some(mut c) = self.in_flight.take_complete(&self.ended) {
            let input = OperatorSnapshot::channels(&input_uid(self.vertex), &c.data)?;
            c.state.push(input);
            commands.submit(c.checkpoint, c.state, (c.took, c.ended));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::OperatorSnapshot;
    use crate::config::{CheckpointConfig, JobConfig};
    use crate::control::{GateSpec, TaskDeployment};
    use crate::element::{write_event, Element, ElementReader};
    use crate::exchange::{Buffer, CreditSink, FLAG_BARRIER};
    use crate::types::{JobId, SubtaskId};
    use std::time::Duration;

    /// A chain that records the checkpoints it snapshotted.
    #[derive(Default)]
    struct Snapshots(Vec<CheckpointId>);

    impl crate::Lifecycle for Snapshots {
        fn snapshot_state(
            &mut self,
            checkpoint: CheckpointId,
            _: BarrierOptions,
            _: &mut Vec<OperatorSnapshot>,
        ) -> Result<(), TaskError> {
            self.0.push(checkpoint);
            Ok(())
        }
    }

    impl TaskInvokable for Snapshots {
        fn process_records(&mut self, _: u8, _: &mut ElementReader<'_>) -> Result<(), TaskError> {
            Ok(())
        }
        fn operator_name(&self, _: usize) -> Option<String> {
            None
        }
    }

    #[derive(Debug)]
    struct NoCredit;

    impl CreditSink for NoCredit {
        fn announce(&self, _: u32) {}
    }

    const MAY_TIME_OUT: BarrierOptions = BarrierOptions {
        savepoint: false,
        aligned: true,
        stop: false,
        drain: false,
        unaligned: false,
        timeout: true,
    };

    fn inputs(channels: u32) -> Inputs {
        let deployment = TaskDeployment {
            subtask: SubtaskId {
                job: JobId(1),
                vertex: 3,
                subtask: 0,
            },
            name: "test".into(),
            parallelism: 1,
            max_parallelism: 128,
            is_source: false,
            gates: vec![GateSpec { channels, input: 0 }],
            outputs: Vec::new(),
            attempt: 0,
            restore: None,
        };
        let mut checkpoints = CheckpointConfig::new(Duration::from_secs(1), "memory://");
        checkpoints.unaligned = true;
        checkpoints.aligned_timeout = Duration::from_secs(3600);
        let config = JobConfig {
            checkpointing: Some(checkpoints),
            ..JobConfig::default()
        };
        let mut inputs = Inputs::new(&deployment, &config, Default::default());
        for ch in 0..channels {
            inputs.opened(0, ch, Box::new(NoCredit)).unwrap();
        }
        inputs
    }

    /// A buffer holding only the aligned barrier of `checkpoint`, flagged.
    fn flagged_barrier(checkpoint: CheckpointId) -> Buffer {
        let mut frame = Vec::new();
        write_event(&mut frame, &Element::Barrier(checkpoint, MAY_TIME_OUT));
        let mut b = Buffer::unpooled(&frame);
        b.flags = FLAG_BARRIER;
        b.complete = 0;
        b
    }

    #[test]
    fn an_aligned_barrier_of_a_checkpoint_an_overtaking_barrier_took_is_stale_not_a_new_alignment()
    {
        let (_tx, rx) = crossbeam_channel::unbounded();
        let mut commands = Commands::new(&rx, None);
        let mut chain = Snapshots::default();
        let mut inputs = inputs(2);
        // Channel 0's producer timed out: its barrier overtakes and the task snapshots.
        let overtaking = PriorityBarrier {
            checkpoint: 5,
            options: MAY_TIME_OUT.overtaking(),
            sequence: 0,
        };
        assert!(inputs
            .priority(&mut chain, (0, 0), overtaking, &mut commands)
            .unwrap());
        // Channel 1's barrier came aligned: it cuts the capture as it arrives ...
        inputs
            .arrive(0, 1, flagged_barrier(5), &mut commands)
            .unwrap();
        assert!(!inputs.capturing(), "the capture is complete");
        // ... and once read, it neither starts an alignment nor blocks its channel.
        inputs.take_next(&mut chain, &mut commands).unwrap();
        assert_eq!(inputs.aligner.pending(), None);
        assert!(!inputs.aligner.holds_back(1));
        // The next checkpoint's overtaking barrier is taken, not declined.
        let next = PriorityBarrier {
            checkpoint: 6,
            ..overtaking
        };
        assert!(inputs
            .priority(&mut chain, (0, 0), next, &mut commands)
            .unwrap());
        assert_eq!(chain.0, vec![5, 6]);
    }

    #[test]
    fn an_overtaking_barrier_waits_for_an_older_alignment_to_end_which_an_abort_releases() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut commands = Commands::new(&rx, None);
        let mut chain = Snapshots::default();
        let mut inputs = inputs(2);
        inputs
            .arrive(0, 0, flagged_barrier(7), &mut commands)
            .unwrap();
        inputs.take_next(&mut chain, &mut commands).unwrap();
        assert_eq!(inputs.aligner.pending(), Some(7), "channel 0 aligns 7");
        // What channel 0 holds back follows 7's barrier and precedes 8's: no capture of 8
        // could include it, so 8 is declined while 7 aligns.
        let newer = PriorityBarrier {
            checkpoint: 8,
            options: MAY_TIME_OUT.overtaking(),
            sequence: 0,
        };
        assert!(!inputs
            .priority(&mut chain, (0, 1), newer, &mut commands)
            .unwrap());
        assert!(inputs.aligner.holds_back(0));
        // Once 7 is aborted its alignment ends, and the next checkpoint is taken.
        tx.send(crate::task::TaskCommand::CheckpointAborted(7))
            .unwrap();
        commands.poll(&mut chain, false, Duration::ZERO).unwrap();
        inputs.release_aborted(&mut chain, &mut commands).unwrap();
        assert_eq!(inputs.aligner.pending(), None);
        assert!(!inputs.aligner.holds_back(0), "channel 0 is read again");
        let next = PriorityBarrier {
            checkpoint: 9,
            ..newer
        };
        assert!(inputs
            .priority(&mut chain, (0, 1), next, &mut commands)
            .unwrap());
        assert_eq!(chain.0, vec![9]);
    }
}
