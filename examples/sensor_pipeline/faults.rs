//! The sensor pipeline's fail points and throttles: readings are counted across the whole
//! process, so each fail point fires exactly once whatever restarts happen.

use std::time::{Duration, Instant};

pub fn parse_fail_randomly(s: &str) -> Result<(u64, u64), String> {
    let (seed, count) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not SEED:COUNT"))?;
    let seed = seed
        .parse()
        .map_err(|e| format!("bad seed '{seed}' in '{s}': {e}"))?;
    let count = count
        .parse()
        .map_err(|e| format!("bad count '{count}' in '{s}': {e}"))?;
    Ok((seed, count))
}

/// The fail points and the throttle of one run: readings are counted across the whole
/// process (every subtask, every restart), so each fail point fires exactly once.
pub struct Faults {
    pub seen: std::sync::atomic::AtomicU64,
    /// Fail points, ascending.
    pub points: Vec<u64>,
    /// Index of the next fail point.
    pub next: std::sync::atomic::AtomicUsize,
    pub rate: Option<u64>,
    pub started: Instant,
}

impl Faults {
    pub fn pass(&self) {
        use std::sync::atomic::Ordering;
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let i = self.next.load(Ordering::Relaxed);
        if self.points.get(i) == Some(&n)
            && self
                .next
                .compare_exchange(i, i + 1, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            panic!("fail point: injected failure at reading {n}");
        }
        if let Some(rate) = self.rate {
            let due = Duration::from_secs_f64(n as f64 / rate as f64);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
    }
}

/// Returns `count` distinct pseudo-random readings in `1..total`, from `seed`.
pub fn random_points(seed: u64, count: u64, total: u64) -> Vec<u64> {
    let mut points = std::collections::BTreeSet::new();
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let span = total.saturating_sub(1).max(1);
    let mut guard = 0;
    while (points.len() as u64) < count.min(span) && guard < count * 100 + 100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        points.insert(1 + x % span);
        guard += 1;
    }
    points.into_iter().collect()
}

/// Whether the one failure of `--fail-before-commit` happened (process-wide).
static FAILED_BEFORE_COMMIT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Wraps a sink with the faults of a run: `throttle` slows each of its subtasks down to
/// that many records per second (back-pressure on demand); `fail_before_commit`, for a
/// two-phase-commit sink, fails once per process between a checkpoint's completion and its
/// commit, at the first commit whose transaction holds records of this subtask: those
/// records were flushed to the brokers in a transaction that the restore aborts and
/// commits anew, so consumers that read uncommitted data see them twice.
pub struct SinkFaults<S> {
    pub sink: S,
    pub fail_before_commit: bool,
    pub throttle: Option<u64>,
}

/// `sink`, its subtasks slowed down to `rate` records per second if set.
pub fn throttled<S>(sink: S, rate: Option<u64>) -> SinkFaults<S> {
    SinkFaults {
        sink,
        fail_before_commit: false,
        throttle: rate,
    }
}

impl<T: 'static, S: weir_api::sink::SinkFunction<T>> weir_api::sink::SinkFunction<T>
    for SinkFaults<S>
{
    fn create_writer(
        &self,
        ctx: &weir_api::sink::SinkContext,
    ) -> Result<Box<dyn weir_api::sink::SinkWriter<T>>, weir_api::TaskError> {
        let inner = self.sink.create_writer(ctx)?;
        if !self.fail_before_commit && self.throttle.is_none() {
            return Ok(inner);
        }
        Ok(Box::new(FailingWriter {
            inner,
            written: 0,
            prepared: Vec::new(),
            fail_before_commit: self.fail_before_commit,
            throttle: self.throttle.map(|rate| (rate, 0, Instant::now())),
        }))
    }

    fn check(&self, name: &str, job: &weir_api::JobConfig) -> Result<(), weir_api::TaskError> {
        self.sink.check(name, job)
    }
}

/// The writer of [`SinkFaults`]: counts the records of each prepared transaction, and
/// paces its writes.
struct FailingWriter<T> {
    inner: Box<dyn weir_api::sink::SinkWriter<T>>,
    /// Records written since the last barrier.
    written: u64,
    /// (checkpoint, records) of each prepared transaction not committed yet.
    prepared: Vec<(weir_api::CheckpointId, u64)>,
    fail_before_commit: bool,
    /// Records per second, records written, and when the writer started.
    throttle: Option<(u64, u64, Instant)>,
}

impl<T> weir_api::sink::SinkWriter<T> for FailingWriter<T> {
    fn write(&mut self, value: T, ts: weir_api::Timestamp) -> Result<(), weir_api::TaskError> {
        self.written += 1;
        if let Some((rate, written, started)) = &mut self.throttle {
            *written += 1;
            let due = Duration::from_secs_f64(*written as f64 / *rate as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        self.inner.write(value, ts)
    }
    fn flush(&mut self) -> Result<(), weir_api::TaskError> {
        self.inner.flush()
    }
    fn finish(&mut self) -> Result<(), weir_api::TaskError> {
        self.inner.finish()
    }
    fn pre_commit(
        &mut self,
        checkpoint: weir_api::CheckpointId,
    ) -> Result<Option<Vec<u8>>, weir_api::TaskError> {
        self.prepared
            .push((checkpoint, std::mem::take(&mut self.written)));
        self.inner.pre_commit(checkpoint)
    }
    fn commit(&mut self, checkpoint: weir_api::CheckpointId) -> Result<(), weir_api::TaskError> {
        let records: u64 = self
            .prepared
            .iter()
            .filter(|(c, _)| *c <= checkpoint)
            .map(|(_, n)| n)
            .sum();
        if self.fail_before_commit
            && records > 0
            && !FAILED_BEFORE_COMMIT.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(weir_api::TaskError::User {
                operator: "fail point".into(),
                message: format!(
                    "injected failure before committing checkpoint {checkpoint} ({records} records)"
                ),
            });
        }
        self.prepared.retain(|(c, _)| *c > checkpoint);
        self.inner.commit(checkpoint)
    }
    fn recover(&mut self, states: Vec<Vec<u8>>) -> Result<(), weir_api::TaskError> {
        self.inner.recover(states)
    }
}
