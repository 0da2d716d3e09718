//! The one operator interface of a chain: typed records through [`Output`], everything
//! else through [`Lifecycle`].
//!
//! A chain is a nest of operators: each is the `Output` of its upstream and owns what
//! follows it, which it names with [`Lifecycle::downstream`]. Only the record method,
//! [`Output::emit`], must be written; every other call (watermarks, idleness, timers,
//! flushing, end of input, checkpoints) has a default that forwards it downstream. An
//! operator that overrides a forwarding call does its own part first and then forwards, so
//! that the order of elements is the same on every path. State and two-phase commits hook
//! in through [`Lifecycle::snapshot_state`] and [`Lifecycle::notify_checkpoint_complete`],
//! which the defaults of [`Lifecycle::checkpoint`] and [`Lifecycle::checkpoint_complete`]
//! call before forwarding. Network writers and fan-outs end or split the chain and override
//! every forwarding call.

use crate::checkpoint::OperatorSnapshot;
use crate::element::BarrierOptions;
use crate::error::TaskError;
use crate::types::{CheckpointId, Timestamp};

/// Receives the elements of a stream of `T`.
pub trait Output<T>: Lifecycle {
    /// Receives one record with its event timestamp (or [`crate::types::NO_TIMESTAMP`]).
    fn emit(&mut self, value: T, timestamp: Timestamp) -> Result<(), TaskError>;
}

/// Everything an operator receives besides records; by default each call goes downstream.
pub trait Lifecycle {
    /// Returns what follows this operator in the chain, where every call this operator
    /// does not override goes; `None` ends the chain (the calls then stop here).
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        None
    }

    /// Appends a snapshot of this operator's own state, if it has any, to `state` (the
    /// first half of [`Self::checkpoint`]); two-phase-commit sinks pre-commit here.
    fn snapshot_state(
        &mut self,
        checkpoint: CheckpointId,
        options: BarrierOptions,
        state: &mut Vec<OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        let _ = (checkpoint, options, state);
        Ok(())
    }

    /// Checkpoint `checkpoint` completed: this operator's own part (the first half of
    /// [`Self::checkpoint_complete`]); two-phase-commit sinks make visible what it covers.
    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        let _ = checkpoint;
        Ok(())
    }

    /// Event time advanced to `watermark`: fire due event-time timers, then forward.
    fn watermark(&mut self, watermark: Timestamp) -> Result<(), TaskError> {
        match self.downstream() {
            Some(d) => d.watermark(watermark),
            None => Ok(()),
        }
    }

    /// The stream became idle (`true`) or active again (`false`); forward.
    fn idle(&mut self, idle: bool) -> Result<(), TaskError> {
        match self.downstream() {
            Some(d) => d.idle(idle),
            None => Ok(()),
        }
    }

    /// Processing time reached `now`: fire due processing-time timers, then forward.
    fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError> {
        match self.downstream() {
            Some(d) => d.processing_time(now),
            None => Ok(()),
        }
    }

    /// Returns the earliest processing-time timer of this operator and everything after it.
    fn next_processing_time(&mut self) -> Option<Timestamp> {
        self.downstream().and_then(|d| d.next_processing_time())
    }

    /// Pushes partly filled network buffers out (the buffer timeout fired).
    fn flush(&mut self) -> Result<(), TaskError> {
        match self.downstream() {
            Some(d) => d.flush(),
            None => Ok(()),
        }
    }

    /// All input has been consumed: finish (flush pending output) and forward. Network
    /// outputs send the end of data; barriers may still follow.
    fn end_input(&mut self) -> Result<(), TaskError> {
        match self.downstream() {
            Some(d) => d.end_input(),
            None => Ok(()),
        }
    }

    /// The task ends (after its final checkpoint, in a job that checkpoints): forward.
    /// Network outputs send the end of partition.
    fn close(&mut self) -> Result<(), TaskError> {
        match self.downstream() {
            Some(d) => d.close(),
            None => Ok(()),
        }
    }

    /// Checkpoint barrier `checkpoint` reached this operator (its task's inputs are
    /// aligned, or its source was triggered): [`Self::snapshot_state`], then forward
    /// (network outputs emit the barrier).
    fn checkpoint(
        &mut self,
        checkpoint: CheckpointId,
        options: BarrierOptions,
        state: &mut Vec<OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        self.snapshot_state(checkpoint, options, state)?;
        match self.downstream() {
            Some(d) => d.checkpoint(checkpoint, options, state),
            None => Ok(()),
        }
    }

    /// Checkpoint `checkpoint` completed (every task acknowledged it):
    /// [`Self::notify_checkpoint_complete`], then forward.
    fn checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        self.notify_checkpoint_complete(checkpoint)?;
        match self.downstream() {
            Some(d) => d.checkpoint_complete(checkpoint),
            None => Ok(()),
        }
    }
}

/// Returns the earlier of two optional processing-time deadlines.
pub fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of a chain that records every call it receives.
    #[derive(Default)]
    struct Recorder(Vec<String>);

    impl Lifecycle for Recorder {
        fn watermark(&mut self, watermark: Timestamp) -> Result<(), TaskError> {
            self.0.push(format!("watermark {watermark}"));
            Ok(())
        }
        fn idle(&mut self, idle: bool) -> Result<(), TaskError> {
            self.0.push(format!("idle {idle}"));
            Ok(())
        }
        fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError> {
            self.0.push(format!("processing time {now}"));
            Ok(())
        }
        fn next_processing_time(&mut self) -> Option<Timestamp> {
            Some(42)
        }
        fn flush(&mut self) -> Result<(), TaskError> {
            self.0.push("flush".into());
            Ok(())
        }
        fn end_input(&mut self) -> Result<(), TaskError> {
            self.0.push("end".into());
            Ok(())
        }
        fn snapshot_state(
            &mut self,
            checkpoint: CheckpointId,
            _: BarrierOptions,
            _: &mut Vec<OperatorSnapshot>,
        ) -> Result<(), TaskError> {
            self.0.push(format!("snapshot {checkpoint}"));
            Ok(())
        }
        fn notify_checkpoint_complete(
            &mut self,
            checkpoint: CheckpointId,
        ) -> Result<(), TaskError> {
            self.0.push(format!("complete {checkpoint}"));
            Ok(())
        }
    }

    impl Output<u32> for Recorder {
        fn emit(&mut self, value: u32, _: Timestamp) -> Result<(), TaskError> {
            self.0.push(format!("record {value}"));
            Ok(())
        }
    }

    /// An operator that writes nothing but its record method and its downstream.
    struct Double(Recorder);

    impl Lifecycle for Double {
        fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
            Some(&mut self.0)
        }
    }

    impl Output<u32> for Double {
        fn emit(&mut self, value: u32, timestamp: Timestamp) -> Result<(), TaskError> {
            self.0.emit(value * 2, timestamp)
        }
    }

    /// An operator with state of its own, which notes its hooks in the shared log.
    struct Stateful(Double);

    impl Lifecycle for Stateful {
        fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
            Some(&mut self.0)
        }
        fn snapshot_state(
            &mut self,
            checkpoint: CheckpointId,
            _: BarrierOptions,
            state: &mut Vec<OperatorSnapshot>,
        ) -> Result<(), TaskError> {
            (self.0).0 .0.push(format!("own snapshot {checkpoint}"));
            state.push(OperatorSnapshot::operator_list("stateful", &[vec![1u8]])?);
            Ok(())
        }
        fn notify_checkpoint_complete(
            &mut self,
            checkpoint: CheckpointId,
        ) -> Result<(), TaskError> {
            (self.0).0 .0.push(format!("own complete {checkpoint}"));
            Ok(())
        }
    }

    const ALIGNED: BarrierOptions = BarrierOptions {
        savepoint: false,
        aligned: true,
        stop: false,
        drain: false,
        unaligned: false,
        timeout: false,
    };

    #[test]
    fn an_operator_that_writes_only_its_record_method_forwards_every_other_call_downstream() {
        let mut chain = Double(Recorder::default());
        chain.emit(3, 0).unwrap();
        chain.watermark(10).unwrap();
        chain.idle(true).unwrap();
        chain.processing_time(20).unwrap();
        chain.flush().unwrap();
        let mut state = Vec::new();
        chain.checkpoint(7, ALIGNED, &mut state).unwrap();
        chain.checkpoint_complete(7).unwrap();
        chain.end_input().unwrap();
        assert_eq!(chain.next_processing_time(), Some(42));
        assert_eq!(
            chain.0 .0,
            [
                "record 6",
                "watermark 10",
                "idle true",
                "processing time 20",
                "flush",
                "snapshot 7",
                "complete 7",
                "end"
            ]
        );
        assert!(state.is_empty());
    }

    #[test]
    fn an_operators_own_checkpoint_hooks_run_before_the_rest_of_the_chain_sees_the_checkpoint() {
        let mut chain = Stateful(Double(Recorder::default()));
        let mut state = Vec::new();
        chain.checkpoint(3, ALIGNED, &mut state).unwrap();
        chain.checkpoint_complete(3).unwrap();
        assert_eq!(
            (chain.0).0 .0,
            [
                "own snapshot 3",
                "snapshot 3",
                "own complete 3",
                "complete 3"
            ]
        );
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn the_end_of_a_chain_swallows_the_calls_it_does_not_override() {
        struct End;
        impl Lifecycle for End {}
        let mut end = End;
        end.watermark(1).unwrap();
        end.end_input().unwrap();
        end.checkpoint(1, ALIGNED, &mut Vec::new()).unwrap();
        assert_eq!(end.next_processing_time(), None);
    }
}
