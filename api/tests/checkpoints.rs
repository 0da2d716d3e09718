//! Checkpoints taken while jobs run on the mini-cluster: sources are triggered, barriers
//! align across the network, keyed operators snapshot their state, tasks upload it, and
//! the JobManager completes checkpoints on storage and keeps only the retained ones.

mod common;

use common::fail_once_after_checkpoint;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weir_api::checkpoint::{CheckpointStorage, KeyedStateData, OperatorSnapshot};
use weir_api::sink::{SinkContext, SinkFunction, SinkWriter};
use weir_api::{GeneratorSource, StreamExecutionEnvironment, TaskError, Timestamp};

#[derive(Clone, Default)]
struct Count(Arc<AtomicU64>, Arc<AtomicU64>);

impl SinkFunction<(u64, u64)> for Count {
    fn create_writer(
        &self,
        _ctx: &SinkContext,
    ) -> Result<Box<dyn SinkWriter<(u64, u64)>>, TaskError> {
        Ok(Box::new(self.clone()))
    }
}

impl SinkWriter<(u64, u64)> for Count {
    fn write(&mut self, v: (u64, u64), _ts: Timestamp) -> Result<(), TaskError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        self.1.fetch_max(v.1, Ordering::Relaxed);
        Ok(())
    }
}

fn env(dir: &std::path::Path, retained: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_local_taskmanagers(2);
    env.enable_checkpointing(
        Duration::from_millis(50),
        &format!("file://{}", dir.display()),
    );
    env.configure(|s| {
        if let Some(c) = s.job.checkpointing.as_mut() {
            c.retained = retained;
        }
    });
    env
}

#[test]
fn a_running_job_completes_checkpoints_with_the_keyed_state_of_every_subtask() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path(), 2);
    let sink = Count::default();
    // 12,000 records at 10,000 per second: checkpoints every 50 ms while it runs.
    env.from_generator(
        GeneratorSource::new(Some(12_000), |i| (i % 100, 1u64)).with_rate_limit(10_000),
    )
    .key_by(|r: &(u64, u64)| r.0)
    .reduce(|a, b| (a.0, a.1 + b.1))
    .uid("counter")
    .add_sink(sink.clone());
    let result = env.execute("checkpointed-count").unwrap();
    assert_eq!(sink.0.load(Ordering::Relaxed), 12_000);
    assert_eq!(
        sink.1.load(Ordering::Relaxed),
        120,
        "every key counted 120 times"
    );

    let storage = CheckpointStorage::open(&format!("file://{}", dir.path().display())).unwrap();
    let completed = storage.completed(result.job_id).unwrap();
    assert_eq!(
        completed.len(),
        2,
        "two retained checkpoints: {completed:?}"
    );
    assert_eq!(
        storage.checkpoints(result.job_id).unwrap(),
        completed,
        "no incomplete checkpoint is left behind"
    );
    let m = storage.latest_usable(result.job_id).unwrap();
    let counter = m
        .operators
        .iter()
        .find(|o| o.uid == "counter")
        .expect("the keyed reduce's state is in the checkpoint");
    assert_eq!(counter.parallelism, 2);
    let ranges: Vec<_> = counter
        .subtasks
        .iter()
        .map(|h| (h.subtask, h.key_group_start, h.key_group_end))
        .collect();
    assert_eq!(ranges, vec![(0, 0, 64), (1, 64, 128)]);
    let mut keys_with_state = 0;
    for h in &counter.subtasks {
        let bytes = storage.read_state(result.job_id, m.checkpoint, h).unwrap();
        let state = OperatorSnapshot::decode_keyed(&bytes).unwrap();
        let KeyedStateData::Full(keyed) = state.keyed else {
            panic!("the memory backend snapshots in full");
        };
        keys_with_state += keyed.states.iter().flat_map(|s| &s.key_groups).count();
    }
    assert!(keys_with_state > 0, "the snapshot holds the counts");
    // The generator's read positions are there too: operator state, no key groups.
    let source = m
        .operators
        .iter()
        .find(|o| o.uid.starts_with("Generator"))
        .expect("the source's position is in the checkpoint");
    assert_eq!(source.subtasks.len(), 2);
    for h in &source.subtasks {
        assert_eq!((h.key_group_start, h.key_group_end), (0, 0));
        let bytes = storage.read_state(result.job_id, m.checkpoint, h).unwrap();
        // One split per subtask (none once it was read to its end): next, step, remaining.
        let splits = OperatorSnapshot::decode_list(&bytes).unwrap();
        assert!(splits.len() <= 1, "{splits:?}");
        for split in splits {
            let ((_next, _step, remaining), _): ((u64, u64, Option<u64>), usize) =
                weir_state_backends::decode_from(&split).unwrap();
            assert!(remaining.is_some_and(|r| r <= 6_000), "{remaining:?}");
        }
    }
}

#[test]
fn barriers_align_across_a_fast_and_a_slow_input_and_no_record_is_lost_or_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path(), 1);
    // Both run for about a second, so checkpoints complete while they run; the slow
    // input's barriers trail the fast one's, whose channels are held back meanwhile.
    let fast = env.from_generator(
        GeneratorSource::new(Some(200_000), |i| (i % 50, 1u64)).with_rate_limit(200_000),
    );
    let slow = env.from_generator(
        GeneratorSource::new(Some(1_000), |i| (i % 50, 1u64)).with_rate_limit(1_000),
    );
    let sink = Count::default();
    fast.union(&[&slow])
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("sum")
        .add_sink(sink.clone());
    let result = env.execute("aligned").unwrap();
    assert_eq!(sink.0.load(Ordering::Relaxed), 201_000);
    assert_eq!(sink.1.load(Ordering::Relaxed), 201_000 / 50);
    let storage = CheckpointStorage::open(&format!("file://{}", dir.path().display())).unwrap();
    let completed = storage.completed(result.job_id).unwrap();
    assert_eq!(completed.len(), 1, "one retained checkpoint: {completed:?}");
    assert_eq!(storage.checkpoints(result.job_id).unwrap(), completed);
}

#[test]
fn a_checkpoint_directory_that_is_not_a_supported_url_fails_the_submission() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_millis(50), "s3://bucket/checkpoints");
    env.from_collection(vec![(1u64, 1u64)])
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .add_sink(Count::default());
    let err = env.execute("bad-storage").unwrap_err().to_string();
    assert!(err.contains("s3://bucket/checkpoints"), "{err}");
}

/// Keeps the largest value seen per key, across restarts.
#[derive(Clone, Default)]
struct MaxPerKey(Arc<std::sync::Mutex<std::collections::HashMap<u64, u64>>>);

impl SinkFunction<(u64, u64)> for MaxPerKey {
    fn create_writer(
        &self,
        _ctx: &SinkContext,
    ) -> Result<Box<dyn SinkWriter<(u64, u64)>>, TaskError> {
        Ok(Box::new(self.clone()))
    }
}

impl SinkWriter<(u64, u64)> for MaxPerKey {
    fn write(&mut self, v: (u64, u64), _ts: Timestamp) -> Result<(), TaskError> {
        let mut m = self.0.lock().unwrap();
        let e = m.entry(v.0).or_insert(0);
        *e = (*e).max(v.1);
        Ok(())
    }
}

#[test]
fn after_an_injected_failure_the_job_restores_state_and_rewinds_its_source_exactly_once() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    const N: u64 = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path(), 1);
    env.configure(restart_quickly);
    let sink = MaxPerKey::default();
    // 30,000 records over about two seconds; the fail point fires once, half-way.
    env.from_generator(GeneratorSource::new(Some(N), |i| (i % 100, 1u64)).with_rate_limit(15_000))
        .map(fail_once_after_checkpoint(
            &SEEN,
            &FAILED,
            N / 2,
            dir.path(),
        ))
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("counter")
        .add_sink(sink.clone());
    env.execute("recovering-count").unwrap();
    assert!(FAILED.load(Ordering::SeqCst), "the failure was injected");
    let counts = sink.0.lock().unwrap().clone();
    assert_eq!(counts.len(), 100);
    // Exactly-once state: every key ends at its true count, neither lower (state lost)
    // nor higher (records counted twice).
    assert!(counts.values().all(|c| *c == N / 100), "{counts:?}");
    // The restart resumed from a checkpoint, not from the beginning: the records read
    // again are fewer than a full replay.
    let seen = SEEN.load(Ordering::SeqCst);
    assert!(
        seen < N + N / 2,
        "{seen} records read: the source restarted from scratch"
    );
}

#[test]
fn a_job_that_keeps_failing_fails_once_its_restarts_are_used_up_naming_the_cause() {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path(), 1);
    env.configure(|s| {
        s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
            attempts: 2,
            delay: Duration::from_millis(10),
        })
    });
    env.from_collection((0..100u64).map(|i| (i, 1u64)).collect())
        .map(|r: (u64, u64)| {
            if r.0 == 50 {
                RUNS.fetch_add(1, Ordering::SeqCst);
                panic!("always fails at 50");
            }
            r
        })
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .add_sink(Count::default());
    let err = env.execute("hopeless").unwrap_err().to_string();
    assert!(err.contains("always fails at 50"), "{err}");
    assert_eq!(RUNS.load(Ordering::SeqCst), 3, "one run and two restarts");
}

/// Restarts a failed job after 100 ms, twice at most.
fn restart_quickly(s: &mut weir_api::EnvSettings) {
    s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
        attempts: 2,
        delay: Duration::from_millis(100),
    });
}

fn visible_lines(dir: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut hidden = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            hidden.push(name);
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    (lines, hidden)
}

#[test]
fn the_file_sink_commits_on_checkpoints_so_output_is_exactly_once_across_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    const N: u64 = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let env = env(dir.path(), 1);
    env.configure(restart_quickly);
    env.from_generator(GeneratorSource::new(Some(N), |i| (i % 100, 1u64)).with_rate_limit(15_000))
        .map(fail_once_after_checkpoint(
            &SEEN,
            &FAILED,
            N / 2,
            dir.path(),
        ))
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("counter")
        .sink_to_files(weir_api::sink::FileSink::new(
            out.path(),
            |(k, c): &(u64, u64), line: &mut String| {
                use std::fmt::Write;
                let _ = write!(line, "{k},{c}");
            },
        ))
        .uid("files");
    env.execute("exactly-once-files").unwrap();
    assert!(FAILED.load(Ordering::SeqCst), "the failure was injected");
    let (lines, hidden) = visible_lines(out.path());
    let mut want: Vec<String> = (0..100u64)
        .flat_map(|k| (1..=N / 100).map(move |c| format!("{k},{c}")))
        .collect();
    want.sort();
    assert_eq!(lines.len(), want.len(), "every running count exactly once");
    assert!(
        lines == want,
        "the output differs from the failure-free run"
    );
    assert!(hidden.is_empty(), "nothing left pending: {hidden:?}");
}

#[test]
fn at_least_once_checkpoints_do_not_align_and_lose_nothing_across_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    const N: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path(), 1);
    env.configure(|s| {
        if let Some(c) = s.job.checkpointing.as_mut() {
            c.mode = weir_api::CheckpointingMode::AtLeastOnce;
        }
        restart_quickly(s);
    });
    let sink = MaxPerKey::default();
    let fast = env
        .from_generator(GeneratorSource::new(Some(N), |i| (i % 100, 1u64)).with_rate_limit(20_000));
    let slow = env.from_generator(
        GeneratorSource::new(Some(500), |i| (1_000 + i % 10, 1u64)).with_rate_limit(500),
    );
    fast.union(&[&slow])
        .map(fail_once_after_checkpoint(
            &SEEN,
            &FAILED,
            N / 2,
            dir.path(),
        ))
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("counter")
        .add_sink(sink.clone());
    env.execute("at-least-once").unwrap();
    assert!(FAILED.load(Ordering::SeqCst), "the failure was injected");
    let counts = sink.0.lock().unwrap().clone();
    assert_eq!(counts.len(), 110);
    // Nothing is lost: every key reaches at least its true count (replayed records may
    // count twice without alignment).
    for (k, c) in &counts {
        let want = if *k >= 1_000 { 50 } else { N / 100 };
        assert!(*c >= want, "key {k}: {c} < {want}");
    }
}

/// Counts per key like [`MaxPerKey`]; at the barrier of checkpoint 4 its first subtask
/// corrupts a state file of checkpoint 3 (complete by then: checkpoints run one at a time)
/// and fails, once.
#[derive(Clone)]
struct CorruptThenFail {
    counts: MaxPerKey,
    dir: std::path::PathBuf,
    subtask: u16,
}

static CORRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl SinkFunction<(u64, u64)> for CorruptThenFail {
    fn create_writer(
        &self,
        ctx: &SinkContext,
    ) -> Result<Box<dyn SinkWriter<(u64, u64)>>, TaskError> {
        let mut w = self.clone();
        w.subtask = ctx.subtask;
        Ok(Box::new(w))
    }
}

impl SinkWriter<(u64, u64)> for CorruptThenFail {
    fn write(&mut self, v: (u64, u64), ts: Timestamp) -> Result<(), TaskError> {
        self.counts.write(v, ts)
    }
    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>, TaskError> {
        if checkpoint == 4 && self.subtask == 0 && !CORRUPTED.swap(true, Ordering::SeqCst) {
            let job_dir = std::fs::read_dir(&self.dir)
                .unwrap()
                .next()
                .unwrap()
                .unwrap();
            let chk3 = job_dir.path().join("chk-3");
            let victim = std::fs::read_dir(&chk3)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.file_name().unwrap() != "_metadata")
                .expect("checkpoint 3 has state files");
            let mut bytes = std::fs::read(&victim).unwrap();
            bytes[10] ^= 0xff;
            std::fs::write(&victim, bytes).unwrap();
            panic!("injected failure after corrupting {}", victim.display());
        }
        Ok(None)
    }
}

#[test]
fn a_restart_skips_a_corrupt_latest_checkpoint_and_restores_the_previous_one() {
    const N: u64 = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path(), 3);
    env.configure(restart_quickly);
    let sink = CorruptThenFail {
        counts: MaxPerKey::default(),
        dir: dir.path().to_path_buf(),
        subtask: 0,
    };
    env.from_generator(GeneratorSource::new(Some(N), |i| (i % 100, 1u64)).with_rate_limit(15_000))
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("counter")
        .add_sink(sink.clone());
    let result = env.execute("corrupt-latest").unwrap();
    assert!(CORRUPTED.load(Ordering::SeqCst), "the failure was injected");
    assert_eq!(
        result.restored_from,
        vec![Some(2)],
        "checkpoint 3 is corrupt, so the restart restored checkpoint 2"
    );
    let counts = sink.counts.0.lock().unwrap().clone();
    assert_eq!(counts.len(), 100);
    assert!(counts.values().all(|c| *c == N / 100), "{counts:?}");
}

#[test]
fn output_committed_by_a_task_whose_input_ended_is_not_repeated_when_another_task_fails_later() {
    static QUICK_DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    const N: u64 = 4_000;
    let dir = tempfile::tempdir().unwrap();
    let (quick_out, slow_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = env(dir.path(), 1);
    env.configure(restart_quickly);
    let files = |d: &std::path::Path| {
        weir_api::sink::FileSink::new(d, |v: &u64, line: &mut String| {
            use std::fmt::Write;
            let _ = write!(line, "{v}");
        })
    };
    // A quick pipeline whose input ends at once, beside a slow one that fails half-way,
    // only once the quick one's input has ended.
    env.from_collection((0..100u64).collect())
        .map(|v: u64| {
            if v == 99 {
                QUICK_DONE.store(true, Ordering::SeqCst);
            }
            v
        })
        .sink_to_files(files(quick_out.path()))
        .uid("quick-files");
    env.from_generator(GeneratorSource::new(Some(N), |i| i).with_rate_limit(4_000))
        .map(|v: u64| {
            if SEEN.fetch_add(1, Ordering::SeqCst) + 1 >= N / 2
                && QUICK_DONE.load(Ordering::SeqCst)
                && !FAILED.swap(true, Ordering::SeqCst)
            {
                panic!("injected failure");
            }
            v
        })
        .sink_to_files(files(slow_out.path()))
        .uid("slow-files");
    env.execute("ended-and-failing").unwrap();
    assert!(FAILED.load(Ordering::SeqCst), "the failure was injected");
    let sorted = |r: std::ops::Range<u64>| {
        let mut v: Vec<String> = r.map(|i| i.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(
        visible_lines(quick_out.path()).0,
        sorted(0..100),
        "the quick pipeline's output exactly once"
    );
    assert_eq!(
        visible_lines(slow_out.path()).0,
        sorted(0..N),
        "the slow pipeline's output exactly once"
    );
}

#[test]
fn a_bounded_job_commits_its_last_records_with_the_final_checkpoint_it_takes_once_every_input_ended(
) {
    const N: u64 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_local_taskmanagers(2);
    // No periodic checkpoint falls within the job: the only one is the final checkpoint.
    env.enable_checkpointing(
        Duration::from_secs(3600),
        &format!("file://{}", dir.path().display()),
    );
    env.from_generator(GeneratorSource::new(Some(N), |i| i))
        .rebalance()
        .sink_to_files(weir_api::sink::FileSink::new(
            out.path(),
            |v: &u64, line: &mut String| {
                use std::fmt::Write;
                let _ = write!(line, "{v}");
            },
        ))
        .uid("files");
    env.execute("final-checkpoint").unwrap();
    let (lines, hidden) = visible_lines(out.path());
    let mut want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    want.sort();
    assert!(lines == want, "{} of {N} records committed", lines.len());
    assert!(hidden.is_empty(), "nothing left pending: {hidden:?}");
    let metadata: Vec<String> = walk(dir.path())
        .into_iter()
        .filter(|p| p.ends_with("_metadata"))
        .map(|p| {
            p.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        metadata,
        vec!["chk-1".to_string()],
        "one checkpoint, the final one"
    );
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}
