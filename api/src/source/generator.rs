//! A deterministic data generator over sequence numbers, as Flink's `DataGeneratorSource`
//! and `NumberSequenceSource`.
//!
//! The generator maps every sequence number `seq` (and the source's seed) to one record with
//! a user function, so the same configuration always produces the same records.
//!
//! Invariants:
//! - A bounded generator of `n` records emits every sequence number in `[0, n)` exactly
//!   once. Subtask `i` of `p` reads the contiguous range `[i*n/p, (i+1)*n/p)` in ascending
//!   order (as Flink's `NumberSequenceSource` splits), so the ranges of all subtasks tile
//!   `[0, n)` without gaps or overlaps.
//! - An unbounded generator's subtask `i` of `p` emits `i, i + p, i + 2p, ...`; so does a
//!   bounded one with interleaved splits (below `n`), so its subtasks go through the
//!   sequence together (what event time derived from it needs).
//! - Each subtask's share is one split (its range or its stride) whose position is
//!   checkpointed; after a restore at another parallelism a subtask reads the splits it was
//!   given in turn, a batch from each, so every sequence number is still emitted once.
//! - A rate limit is a total across all subtasks: each subtask emits at most its share
//!   (`rate / p` records per second, measured from its first poll). A subtask ahead of
//!   schedule returns [`SourceStep::Idle`] with a bounded wait; it never sleeps itself.
//! - Records carry [`NO_TIMESTAMP`]; a poll emits in a tight loop and allocates nothing
//!   beyond what the user function does.

use super::{SourceContext, SourceFunction, SourceReader};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_runtime::{Output, SourceStep, TaskError, NO_TIMESTAMP};

/// The longest wait a rate-limited subtask asks for in one step.
const MAX_IDLE: Duration = Duration::from_millis(50);

/// The user function: `(sequence number, seed) -> record`.
type GenFn<T> = Arc<dyn Fn(u64, u64) -> T + Send + Sync>;

/// Generates records from sequence numbers, optionally bounded and rate-limited.
///
/// ```
/// use weir_api::source::GeneratorSource;
/// // 1,000 records "event-0" .. "event-999", at most 500 records per second in total.
/// let gen = GeneratorSource::new(Some(1_000), |seq| format!("event-{seq}")).with_rate_limit(500);
/// // A seeded generator sees the seed next to the sequence number.
/// let noisy = GeneratorSource::seeded(None, 42, |seq, seed| seq.wrapping_mul(seed | 1));
/// # let _ = (gen, noisy);
/// ```
pub struct GeneratorSource<T> {
    count: Option<u64>,
    interleaved: bool,
    rate: Option<u64>,
    seed: u64,
    f: GenFn<T>,
}

impl<T> Clone for GeneratorSource<T> {
    fn clone(&self) -> Self {
        Self {
            count: self.count,
            interleaved: self.interleaved,
            rate: self.rate,
            seed: self.seed,
            f: self.f.clone(),
        }
    }
}

impl<T: 'static> GeneratorSource<T> {
    /// Creates a generator of `count` records (`None`: unbounded); record `seq` is `f(seq)`.
    pub fn new(count: Option<u64>, f: impl Fn(u64) -> T + Send + Sync + 'static) -> Self {
        Self::seeded(count, 0, move |seq, _seed| f(seq))
    }

    /// Creates a generator of `count` records (`None`: unbounded) whose function also gets
    /// the seed: record `seq` is `f(seq, seed)`. Derive pseudo-random fields from both to
    /// get data that is random-looking yet reproducible.
    pub fn seeded(
        count: Option<u64>,
        seed: u64,
        f: impl Fn(u64, u64) -> T + Send + Sync + 'static,
    ) -> Self {
        Self {
            count,
            interleaved: false,
            rate: None,
            seed,
            f: Arc::new(f),
        }
    }

    /// Replaces the seed passed to a [`GeneratorSource::seeded`] function (a function made
    /// with [`GeneratorSource::new`] ignores it).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Makes a bounded generator's subtask `i` of `p` read `i, i + p, i + 2p, ...` (below
    /// the count) instead of a contiguous range, so all subtasks go through the sequence
    /// together: records whose event time grows with the sequence number then reach a
    /// downstream operator about in time order.
    pub fn with_interleaved_splits(mut self) -> Self {
        self.interleaved = true;
        self
    }

    /// Limits the generator to `records_per_sec` records per second in total across all
    /// subtasks (`0` removes the limit).
    pub fn with_rate_limit(mut self, records_per_sec: u64) -> Self {
        self.rate = (records_per_sec > 0).then_some(records_per_sec);
        self
    }

    /// Returns the number of records (`None`: unbounded).
    pub fn count(&self) -> Option<u64> {
        self.count
    }

    /// Returns the total rate limit in records per second, if any.
    pub fn rate_limit(&self) -> Option<u64> {
        self.rate
    }

    /// Returns the seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl GeneratorSource<u64> {
    /// Creates the bounded sequence `from..=to` (empty when `to < from`), as Flink's
    /// `fromSequence`. The full range `0..=u64::MAX` is capped at `u64::MAX` records.
    pub fn sequence(from: u64, to: u64) -> Self {
        let count = if to < from {
            0
        } else {
            (to - from).saturating_add(1)
        };
        Self::new(Some(count), move |seq| from.wrapping_add(seq))
    }
}

impl<T: Send + 'static> SourceFunction<T> for GeneratorSource<T> {
    fn create_reader(&self, ctx: &SourceContext) -> Result<Box<dyn SourceReader<T>>, TaskError> {
        let i = u64::from(ctx.subtask);
        let p = u64::from(ctx.parallelism.max(1));
        let split = match self.count {
            Some(n) if self.interleaved => Split {
                next: i,
                step: p,
                remaining: Some(n.saturating_sub(i).div_ceil(p)),
            },
            Some(n) => {
                let start = split_point(n, i, p);
                let end = split_point(n, i + 1, p);
                Split {
                    next: start,
                    step: 1,
                    remaining: Some(end - start),
                }
            }
            None => Split {
                next: i,
                step: p,
                remaining: None,
            },
        };
        Ok(Box::new(GeneratorReader {
            f: self.f.clone(),
            seed: self.seed,
            splits: if split.remaining == Some(0) {
                Vec::new()
            } else {
                vec![split]
            },
            current: 0,
            limiter: self.rate.map(|rate| RateLimiter::new(rate, p)),
        }))
    }
}

/// Returns `i * n / p` without overflow.
fn split_point(n: u64, i: u64, p: u64) -> u64 {
    (u128::from(n) * u128::from(i) / u128::from(p)) as u64
}

/// Paces one subtask to its share of the total rate.
struct RateLimiter {
    /// Total records per second across all subtasks.
    rate: u128,
    /// The source's parallelism (each subtask gets `rate / parallelism`).
    parallelism: u128,
    /// When this subtask first polled.
    start: Option<Instant>,
    /// Records emitted since `start`.
    emitted: u128,
}

impl RateLimiter {
    fn new(rate: u64, parallelism: u64) -> Self {
        Self {
            rate: u128::from(rate),
            parallelism: u128::from(parallelism),
            start: None,
            emitted: 0,
        }
    }

    /// Returns how many records may be emitted now, or how long to wait when none.
    fn allowance(&mut self) -> Result<u64, Duration> {
        let start = *self.start.get_or_insert_with(Instant::now);
        let elapsed = start.elapsed().as_nanos();
        // The first record is due at once; record k (0-based) is due at k * p / rate seconds.
        let due = elapsed * self.rate / (self.parallelism * 1_000_000_000) + 1;
        if due > self.emitted {
            return Ok(u64::try_from(due - self.emitted).unwrap_or(u64::MAX));
        }
        let next_due_ns = (self.emitted * self.parallelism * 1_000_000_000).div_ceil(self.rate);
        let wait = u64::try_from(next_due_ns.saturating_sub(elapsed)).unwrap_or(u64::MAX);
        Err(Duration::from_nanos(wait).clamp(Duration::from_micros(100), MAX_IDLE))
    }

    fn record(&mut self, n: u64) {
        self.emitted += u128::from(n);
    }
}

/// A part of the sequence one reader emits in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Split {
    next: u64,
    step: u64,
    /// Records left (`None`: unbounded); never `Some(0)` while the split is held.
    remaining: Option<u64>,
}

struct GeneratorReader<T> {
    f: GenFn<T>,
    seed: u64,
    /// The splits left to read.
    splits: Vec<Split>,
    /// The split the next poll reads.
    current: usize,
    limiter: Option<RateLimiter>,
}

impl<T> SourceReader<T> for GeneratorReader<T> {
    fn snapshot_splits(
        &mut self,
        _checkpoint: weir_runtime::CheckpointId,
    ) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        super::encode_splits(&self.splits)
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), TaskError> {
        let mut restored: Vec<Split> = super::decode_splits(&splits, "the generator")?;
        restored.retain(|s| s.remaining != Some(0));
        self.splits = restored;
        self.current = 0;
        Ok(())
    }

    fn poll(&mut self, out: &mut dyn Output<T>, max: usize) -> Result<SourceStep, TaskError> {
        if self.splits.is_empty() {
            return Ok(SourceStep::Finished);
        }
        let i = self.current % self.splits.len();
        let split = &mut self.splits[i];
        let mut n = u64::try_from(max).unwrap_or(u64::MAX);
        if let Some(rem) = split.remaining {
            n = n.min(rem);
        }
        if let Some(limiter) = &mut self.limiter {
            match limiter.allowance() {
                Ok(allowed) => n = n.min(allowed),
                Err(wait) => return Ok(SourceStep::Idle(wait)),
            }
        }
        let (f, seed, step) = (&*self.f, self.seed, split.step);
        let mut seq = split.next;
        for _ in 0..n {
            out.emit(f(seq, seed), NO_TIMESTAMP)?;
            seq = seq.wrapping_add(step);
        }
        split.next = seq;
        if let Some(limiter) = &mut self.limiter {
            limiter.record(n);
        }
        if let Some(rem) = &mut split.remaining {
            *rem -= n;
            if *rem == 0 {
                self.splits.remove(i);
                if self.splits.is_empty() {
                    return Ok(SourceStep::Finished);
                }
            }
        }
        self.current = i + 1;
        Ok(SourceStep::More)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_runtime::{Lifecycle, Timestamp};

    struct VecOut(Vec<u64>);

    impl Lifecycle for VecOut {}

    impl Output<u64> for VecOut {
        fn emit(&mut self, value: u64, ts: Timestamp) -> Result<(), TaskError> {
            assert_eq!(ts, NO_TIMESTAMP);
            self.0.push(value);
            Ok(())
        }
    }

    fn drain(src: &GeneratorSource<u64>, subtask: u16, parallelism: u16, limit: usize) -> Vec<u64> {
        let ctx = SourceContext {
            name: "gen".into(),
            subtask,
            parallelism,
        };
        let mut reader = src.create_reader(&ctx).unwrap();
        let mut out = VecOut(Vec::new());
        while out.0.len() < limit {
            match reader.poll(&mut out, 7).unwrap() {
                SourceStep::Finished => break,
                SourceStep::More => {}
                SourceStep::Idle(d) => std::thread::sleep(d),
            }
        }
        out.0
    }

    #[test]
    fn bounded_subtasks_read_contiguous_ranges_that_tile_the_sequence() {
        let src = GeneratorSource::new(Some(10), |s| s);
        assert_eq!(drain(&src, 0, 3, usize::MAX), vec![0, 1, 2]);
        assert_eq!(drain(&src, 1, 3, usize::MAX), vec![3, 4, 5]);
        assert_eq!(drain(&src, 2, 3, usize::MAX), vec![6, 7, 8, 9]);
    }

    #[test]
    fn interleaved_bounded_subtasks_stride_through_the_sequence_below_the_count() {
        let src = GeneratorSource::new(Some(10), |s| s).with_interleaved_splits();
        assert_eq!(drain(&src, 0, 3, usize::MAX), vec![0, 3, 6, 9]);
        assert_eq!(drain(&src, 1, 3, usize::MAX), vec![1, 4, 7]);
        assert_eq!(drain(&src, 2, 3, usize::MAX), vec![2, 5, 8]);
        let tiny = GeneratorSource::new(Some(1), |s| s).with_interleaved_splits();
        assert!(drain(&tiny, 2, 3, usize::MAX).is_empty());
    }

    #[test]
    fn a_bounded_source_smaller_than_its_parallelism_leaves_some_subtasks_empty() {
        let src = GeneratorSource::new(Some(1), |s| s);
        let all: Vec<u64> = (0..4).flat_map(|i| drain(&src, i, 4, usize::MAX)).collect();
        assert_eq!(all, vec![0]);
    }

    #[test]
    fn unbounded_subtasks_interleave_by_parallelism() {
        let src = GeneratorSource::new(None, |s| s);
        assert_eq!(drain(&src, 1, 3, 4)[..4], [1, 4, 7, 10]);
    }

    #[test]
    fn splits_snapshotted_at_one_parallelism_are_each_read_once_at_another() {
        let src = GeneratorSource::new(Some(1_000), |s| s);
        for (from, to) in [(2u16, 3u16), (3, 1), (2, 5)] {
            let mut seen = Vec::new();
            let mut positions = Vec::new();
            for i in 0..from {
                let ctx = SourceContext {
                    name: "gen".into(),
                    subtask: i,
                    parallelism: from,
                };
                let mut reader = src.create_reader(&ctx).unwrap();
                let mut out = VecOut(Vec::new());
                reader.poll(&mut out, 7 * (usize::from(i) + 1)).unwrap();
                seen.extend(out.0);
                positions.extend(reader.snapshot_splits(1).unwrap().unwrap());
            }
            for j in 0..to {
                let ctx = SourceContext {
                    name: "gen".into(),
                    subtask: j,
                    parallelism: to,
                };
                let mut reader = src.create_reader(&ctx).unwrap();
                let mine = positions
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| k % usize::from(to) == usize::from(j))
                    .map(|(_, p)| p.clone())
                    .collect();
                reader.restore_splits(mine).unwrap();
                let mut out = VecOut(Vec::new());
                while reader.poll(&mut out, 13).unwrap() != SourceStep::Finished {}
                seen.extend(out.0);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..1_000).collect::<Vec<_>>(), "{from} -> {to}");
        }
    }

    #[test]
    fn seeded_functions_see_the_configured_seed() {
        let src = GeneratorSource::seeded(Some(2), 1, |seq, seed| seq * 100 + seed).with_seed(7);
        assert_eq!(drain(&src, 0, 1, usize::MAX), vec![7, 107]);
    }

    #[test]
    fn sequence_is_inclusive_and_empty_when_reversed() {
        assert_eq!(
            drain(&GeneratorSource::sequence(5, 8), 0, 1, usize::MAX),
            vec![5, 6, 7, 8]
        );
        assert!(drain(&GeneratorSource::sequence(8, 5), 0, 1, usize::MAX).is_empty());
        assert_eq!(
            GeneratorSource::sequence(0, u64::MAX).count(),
            Some(u64::MAX)
        );
    }

    #[test]
    fn a_rate_limited_reader_idles_when_ahead_of_schedule() {
        let src = GeneratorSource::new(Some(1_000), |s| s).with_rate_limit(1);
        let ctx = SourceContext {
            name: "gen".into(),
            subtask: 0,
            parallelism: 1,
        };
        let mut reader = src.create_reader(&ctx).unwrap();
        let mut out = VecOut(Vec::new());
        assert!(matches!(
            reader.poll(&mut out, 100).unwrap(),
            SourceStep::More
        ));
        assert_eq!(out.0, vec![0]);
        match reader.poll(&mut out, 100).unwrap() {
            SourceStep::Idle(d) => assert!(d <= MAX_IDLE && !d.is_zero()),
            other => panic!("expected Idle, got {other:?}"),
        }
    }
}
