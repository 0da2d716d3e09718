//! A task's mailbox: the commands of its TaskManager (checkpoint triggers, completions and
//! aborts) and the hand-over of snapshots to its checkpoint uploader.
//!
//! Stop-with-savepoint: once a task snapshotted a savepoint whose barrier says `stop`, it
//! processes nothing more (sources stop polling, timers stop firing, an upstream's end is
//! not an end of input) until the savepoint completes, when the task commits and ends
//! without ending its input (no final watermark, no flush of open windows: their state is
//! in the savepoint), or is aborted, when the task resumes.
//!
//! End of input: in a job that checkpoints, a task whose input ended keeps taking part in
//! checkpoints (its acknowledgements say its input ended) and ends only once a checkpoint
//! completes that every task snapshotted after its input ended (the job's final
//! checkpoint, which two-phase-commit sinks commit); without checkpoints it ends at once.
//!
//! Invariant: a stop barrier whose savepoint was already aborted stops nothing, and a task
//! that is stopping declines every new trigger.

use super::output_barriers::{Ack, OutputBarriers};
use super::TaskCommand;
use crate::checkpoint::Uploader;
use crate::element::BarrierOptions;
use crate::error::TaskError;
use crate::invokable::TaskInvokable;
use crate::types::{CheckpointId, MAX_WATERMARK};
use crossbeam_channel::Receiver;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// A task's commands from its TaskManager and its checkpoint uploader.
pub(super) struct Commands<'a> {
    rx: &'a Receiver<TaskCommand>,
    uploader: Option<&'a Uploader>,
    /// The stop-with-savepoint this task snapshotted and waits for.
    stopping: Option<CheckpointId>,
    /// The newest checkpoint aborted so far (a barrier can arrive after its abort).
    aborted: Option<CheckpointId>,
    /// The task's input (or source) ended.
    ended: bool,
    /// The job's final checkpoint completed.
    last_complete: bool,
    /// The outputs' aligned barriers that may overtake after the aligned-checkpoint
    /// timeout, and the acknowledgement they hold back.
    outputs: Option<OutputBarriers>,
    /// The newest trigger of a checkpoint whose barriers may overtake (non-sources get
    /// those too), with its options and when it came.
    triggered: Option<(CheckpointId, BarrierOptions, Instant)>,
}

/// What the task loop does after taking its commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flow {
    /// Go on.
    Run,
    /// The stop-with-savepoint completed: end the task now.
    Stop,
}

impl<'a> Commands<'a> {
    /// Takes commands from `rx` and hands snapshots to `uploader` (none: the job does not
    /// checkpoint).
    pub(super) fn new(rx: &'a Receiver<TaskCommand>, uploader: Option<&'a Uploader>) -> Self {
        Self {
            rx,
            uploader,
            stopping: None,
            aborted: None,
            ended: false,
            last_complete: false,
            outputs: None,
            triggered: None,
        }
    }

    /// Lets the aligned barriers of `outputs` overtake after the aligned-checkpoint
    /// timeout (see [`OutputBarriers`]).
    pub(super) fn with_outputs(mut self, outputs: OutputBarriers) -> Self {
        self.outputs = Some(outputs);
        self
    }
}

impl Commands<'_> {
    /// The task's input ended (and its chain's `end_input` ran).
    pub(super) fn end_of_input(&mut self) {
        self.ended = true;
        if let Some(u) = self.uploader {
            u.input_ended();
        }
    }

    /// Returns whether the task's input ended.
    pub(super) fn input_ended(&self) -> bool {
        self.ended
    }

    /// Returns whether a task whose input ended may end: at once without checkpoints,
    /// else once the job's final checkpoint completed.
    pub(super) fn may_close(&self) -> bool {
        self.ended && (self.uploader.is_none() || self.last_complete)
    }

    /// Returns the newest checkpoint triggered whose barriers may overtake, its options and
    /// when it was triggered (only such triggers reach tasks that are not sources).
    pub(super) fn triggered(&self) -> Option<(CheckpointId, BarrierOptions, Instant)> {
        self.triggered
    }

    /// Returns whether the task snapshotted a stop-with-savepoint and waits for its end.
    pub(super) fn is_stopping(&self) -> bool {
        self.stopping.is_some()
    }

    /// Takes the pending commands, waiting up to `wait` for the first: sources snapshot on
    /// a trigger (`is_source`).
    pub(super) fn poll(
        &mut self,
        inv: &mut dyn TaskInvokable,
        is_source: bool,
        wait: Duration,
    ) -> Result<Flow, TaskError> {
        self.settle_outputs(false)?;
        let mut next = if wait.is_zero() {
            self.rx.try_recv().ok()
        } else {
            self.rx.recv_timeout(wait).ok()
        };
        while let Some(cmd) = next {
            match cmd {
                TaskCommand::TriggerCheckpoint { checkpoint, .. } if self.stopping.is_some() => {
                    self.decline(checkpoint, "the task is stopping with a savepoint")
                }
                TaskCommand::TriggerCheckpoint {
                    checkpoint,
                    options,
                } if is_source => {
                    if options.drain && self.not_aborted(checkpoint) {
                        // Every event-time timer fires before the job stops.
                        inv.watermark(MAX_WATERMARK)?;
                    }
                    self.snapshot(inv, checkpoint, options, Duration::ZERO)?
                }
                TaskCommand::TriggerCheckpoint {
                    checkpoint,
                    options,
                } => self.triggered = Some((checkpoint, options, Instant::now())),
                TaskCommand::CheckpointComplete { checkpoint, last } => {
                    inv.checkpoint_complete(checkpoint)?;
                    if last {
                        info!(checkpoint, "the job's final checkpoint completed");
                        self.last_complete = true;
                    }
                    if self.stopping == Some(checkpoint) {
                        info!(checkpoint, "stopped with a savepoint");
                        return Ok(Flow::Stop);
                    }
                }
                TaskCommand::CheckpointAborted(checkpoint) => {
                    self.aborted = self.aborted.max(Some(checkpoint));
                    if self.stopping == Some(checkpoint) {
                        info!(checkpoint, "stop-with-savepoint aborted; resuming");
                        self.stopping = None;
                    }
                }
            }
            next = self.rx.try_recv().ok();
        }
        Ok(Flow::Run)
    }

    /// Snapshots the chain and emits the barrier (synchronous part), then hands the state
    /// to the uploader (asynchronous part).
    pub(super) fn snapshot(
        &mut self,
        inv: &mut dyn TaskInvokable,
        checkpoint: CheckpointId,
        options: BarrierOptions,
        alignment: Duration,
    ) -> Result<(), TaskError> {
        let state = self.take_snapshot(inv, checkpoint, options)?;
        let ack = Ack {
            checkpoint,
            state,
            alignment,
            ended: self.ended,
        };
        let ack = match &mut self.outputs {
            Some(outputs) => outputs.hold(ack, options),
            None => Some(ack),
        };
        if let Some(a) = ack {
            self.submit(a.checkpoint, a.state, (a.alignment, a.ended));
        }
        Ok(())
    }

    /// Hands over the acknowledgement the outputs' barriers held back once they were
    /// delivered or overtook (at once if `now`).
    fn settle_outputs(&mut self, now: bool) -> Result<(), TaskError> {
        let aborted = self.aborted;
        let Some(outputs) = &mut self.outputs else {
            return Ok(());
        };
        if let Some(a) = outputs.settle(now, aborted)? {
            self.submit(a.checkpoint, a.state, (a.alignment, a.ended));
        }
        Ok(())
    }

    /// Snapshots the chain and emits the barrier: the synchronous part of a checkpoint.
    pub(super) fn take_snapshot(
        &mut self,
        inv: &mut dyn TaskInvokable,
        checkpoint: CheckpointId,
        options: BarrierOptions,
    ) -> Result<Vec<crate::checkpoint::OperatorSnapshot>, TaskError> {
        // An older checkpoint's barriers still queued overtake now, so these can be noted.
        self.settle_outputs(true)?;
        let mut state = Vec::new();
        inv.checkpoint(checkpoint, options, &mut state)?;
        // A stop barrier whose savepoint was already aborted stops nothing.
        if options.stop && self.not_aborted(checkpoint) {
            self.stopping = Some(checkpoint);
        }
        Ok(state)
    }

    /// Hands the snapshot of `checkpoint`, taken after `alignment` of alignment and when
    /// the task's input had `ended` or not, to the uploader (the asynchronous part).
    pub(super) fn submit(
        &self,
        checkpoint: CheckpointId,
        state: Vec<crate::checkpoint::OperatorSnapshot>,
        (alignment, ended): (Duration, bool),
    ) {
        match self.uploader {
            Some(u) => u.submit(checkpoint, state, alignment, ended),
            None => debug!(
                checkpoint,
                "barrier of a job without checkpointing forwarded"
            ),
        }
    }

    /// The newest checkpoint aborted so far.
    pub(super) fn latest_aborted(&self) -> Option<CheckpointId> {
        self.aborted
    }

    /// Whether `checkpoint` was not aborted before its barrier reached this task (a stop
    /// barrier of an aborted savepoint stops nothing and drains nothing).
    fn not_aborted(&self, checkpoint: CheckpointId) -> bool {
        self.aborted.is_none_or(|a| a < checkpoint)
    }

    /// Declines `checkpoint` to the JobManager (through the uploader) for `reason`.
    pub(super) fn decline(&self, checkpoint: CheckpointId, reason: &str) {
        if let Some(u) = self.uploader {
            u.decline(checkpoint, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::ElementReader;

    /// A chain that records the checkpoints it snapshotted and saw complete.
    #[derive(Default)]
    struct Recorder {
        snapshots: Vec<CheckpointId>,
        completed: Vec<CheckpointId>,
        /// Each watermark with the number of snapshots taken before it.
        watermarks: Vec<(usize, i64)>,
    }

    impl crate::Lifecycle for Recorder {
        fn snapshot_state(
            &mut self,
            checkpoint: CheckpointId,
            _: BarrierOptions,
            _: &mut Vec<crate::checkpoint::OperatorSnapshot>,
        ) -> Result<(), TaskError> {
            self.snapshots.push(checkpoint);
            Ok(())
        }
        fn notify_checkpoint_complete(
            &mut self,
            checkpoint: CheckpointId,
        ) -> Result<(), TaskError> {
            self.completed.push(checkpoint);
            Ok(())
        }
        fn watermark(&mut self, watermark: i64) -> Result<(), TaskError> {
            self.watermarks.push((self.snapshots.len(), watermark));
            Ok(())
        }
    }

    impl TaskInvokable for Recorder {
        fn process_records(&mut self, _: u8, _: &mut ElementReader<'_>) -> Result<(), TaskError> {
            Ok(())
        }
        fn operator_name(&self, _: usize) -> Option<String> {
            None
        }
    }

    const STOP: BarrierOptions = BarrierOptions {
        savepoint: true,
        aligned: true,
        stop: true,
        drain: false,
        unaligned: false,
        timeout: false,
    };

    #[test]
    fn a_stop_barrier_arriving_after_its_abort_does_not_stop_the_task_and_a_completed_stop_ends_it()
    {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut commands = Commands::new(&rx, None);
        let mut chain = Recorder::default();
        let poll = |c: &mut Commands<'_>, chain: &mut Recorder| {
            c.poll(chain, false, Duration::ZERO).unwrap()
        };

        // Savepoint 3 is aborted (a task declined it) before its barrier reaches this task.
        tx.send(TaskCommand::CheckpointAborted(3)).unwrap();
        assert_eq!(poll(&mut commands, &mut chain), Flow::Run);
        commands
            .snapshot(&mut chain, 3, STOP, Duration::ZERO)
            .unwrap();
        assert_eq!(commands.stopping, None, "an aborted stop stops nothing");

        // Stop-with-savepoint 4 is snapshotted, then aborted: the task resumes.
        commands
            .snapshot(&mut chain, 4, STOP, Duration::ZERO)
            .unwrap();
        assert_eq!(commands.stopping, Some(4));
        tx.send(TaskCommand::CheckpointAborted(4)).unwrap();
        assert_eq!(poll(&mut commands, &mut chain), Flow::Run);
        assert_eq!(commands.stopping, None);

        // Stop-with-savepoint 5 completes: the task commits it and ends; a trigger that
        // comes meanwhile is declined, not snapshotted.
        commands
            .snapshot(&mut chain, 5, STOP, Duration::ZERO)
            .unwrap();
        tx.send(TaskCommand::TriggerCheckpoint {
            checkpoint: 6,
            options: BarrierOptions {
                stop: false,
                ..STOP
            },
        })
        .unwrap();
        assert_eq!(
            Commands::poll(&mut commands, &mut chain, true, Duration::ZERO).unwrap(),
            Flow::Run
        );
        tx.send(TaskCommand::CheckpointComplete {
            checkpoint: 5,
            last: false,
        })
        .unwrap();
        assert_eq!(poll(&mut commands, &mut chain), Flow::Stop);
        assert_eq!(chain.snapshots, vec![3, 4, 5]);
        assert_eq!(chain.completed, vec![5]);
    }

    #[test]
    fn a_drained_stop_emits_the_final_watermark_just_before_the_sources_snapshot() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut commands = Commands::new(&rx, None);
        let mut chain = Recorder::default();
        let plain = BarrierOptions {
            savepoint: false,
            stop: false,
            ..STOP
        };
        tx.send(TaskCommand::TriggerCheckpoint {
            checkpoint: 1,
            options: plain,
        })
        .unwrap();
        tx.send(TaskCommand::TriggerCheckpoint {
            checkpoint: 2,
            options: BarrierOptions {
                drain: true,
                ..STOP
            },
        })
        .unwrap();
        commands.poll(&mut chain, true, Duration::ZERO).unwrap();
        assert_eq!(chain.snapshots, vec![1, 2]);
        assert_eq!(
            chain.watermarks,
            vec![(1, MAX_WATERMARK)],
            "after 1, before 2"
        );
        assert_eq!(commands.stopping, Some(2));
    }
}
