//! Savepoints: taken on a running job, stop-with-savepoint, and jobs started from one,
//! matched by operator `uid`, at the same or another parallelism (rescaling).
//!
//! The job counts records per key with a rolling reduce and writes `key,count` lines
//! through the transactional file sink, so its complete output is known in advance: for
//! every key `k`, the lines `k,1` .. `k,n_k` exactly once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_api::sink::{FileSink, SinkContext, SinkFunction, SinkWriter};
use weir_api::{
    ApiError, CheckpointId, GeneratorSource, JobClient, SavepointRestoreSettings,
    StreamExecutionEnvironment, TaskError, Timestamp,
};

const RECORDS: u64 = 20_000;
const KEYS: u64 = 50;

struct Job {
    /// Records that reached the counter (the test stops the job once enough have).
    seen: Arc<AtomicU64>,
}

/// Defines the counting job at `parallelism`, writing into `out`; `prefix` names its uids
/// (another prefix makes another job).
fn counting_job(env: &StreamExecutionEnvironment, out: &Path, prefix: &str, rate: u64) -> Job {
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    env.from_generator(
        GeneratorSource::new(Some(RECORDS), |i| (i % KEYS, 1u64)).with_rate_limit(rate),
    )
    .uid(&format!("{prefix}-source"))
    .map(move |r: (u64, u64)| {
        s.fetch_add(1, Ordering::Relaxed);
        r
    })
    .uid(&format!("{prefix}-tap"))
    .key_by(|r: &(u64, u64)| r.0)
    .reduce(|a, b| (a.0, a.1 + b.1))
    .uid(&format!("{prefix}-count"))
    .sink_to_files(FileSink::with_formatter(out, |(k, c): &(u64, u64)| {
        format!("{k},{c}")
    }))
    .uid(&format!("{prefix}-sink"));
    Job { seen }
}

fn checkpointed_env(parallelism: u16, checkpoints: &Path) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism).set_local_taskmanagers(2);
    env.enable_checkpointing(
        Duration::from_millis(100),
        &format!("file://{}", checkpoints.display()),
    );
    env
}

/// Parallelism 2, checkpoint storage in `checkpoints` but an hour between checkpoints,
/// and one restart 10 ms after a failure.
fn no_periodic_checkpoints_one_restart(checkpoints: &Path) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_local_taskmanagers(2);
    env.enable_checkpointing(
        Duration::from_secs(3600),
        &format!("file://{}", checkpoints.display()),
    );
    env.configure(|s| {
        s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
            attempts: 1,
            delay: Duration::from_millis(10),
        })
    });
    env
}

/// Waits (bounded) until the job has counted `n` records.
fn wait_for_records(job: &Job, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while job.seen.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < deadline, "the job did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `key,count` lines of every visible part file in `dir`, counted.
fn lines(dir: &Path) -> BTreeMap<(u64, u64), u32> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        for l in std::fs::read_to_string(e.path()).unwrap().lines() {
            let (k, c) = l.split_once(',').unwrap();
            *out.entry((k.parse().unwrap(), c.parse().unwrap()))
                .or_insert(0) += 1;
        }
    }
    out
}

/// The output, checkpoint and savepoint directories of a test.
fn dirs(tmp: &tempfile::TempDir) -> (PathBuf, PathBuf, PathBuf) {
    let p = |name: &str| tmp.path().join(name);
    (p("out"), p("chk"), p("sp"))
}

fn expected() -> BTreeMap<(u64, u64), u32> {
    (0..KEYS)
        .flat_map(|k| (1..=RECORDS / KEYS).map(move |c| ((k, c), 1)))
        .collect()
}

/// Runs the job at `from` parallelism, stops it with a savepoint mid-run, and returns the
/// savepoint and how many records the first run counted.
fn stop_midway(from: u16, out: &Path, checkpoints: &Path, savepoints: &Path) -> (String, u64) {
    let env = checkpointed_env(from, checkpoints);
    let job = counting_job(&env, out, "counting", 10_000);
    let client: JobClient = env.execute_async("counting").unwrap();
    wait_for_records(&job, 2_000);
    let savepoint = client
        .stop_with_savepoint(Some(&savepoints.display().to_string()))
        .unwrap();
    let result = client.wait().unwrap();
    let counted = job.seen.load(Ordering::Relaxed);
    assert!(
        counted < RECORDS,
        "the job stopped before its end ({counted} records)"
    );
    assert!(result.checkpoints.len() <= 100);
    (savepoint, counted)
}

fn rescale(from: u16, to: u16) {
    let tmp = tempfile::tempdir().unwrap();
    let (out, chk, sp) = dirs(&tmp);
    let (savepoint, _) = stop_midway(from, &out, &chk, &sp);
    assert!(
        savepoint.starts_with(&format!("file://{}/savepoint-", sp.display())),
        "{savepoint}"
    );
    let first_run = lines(&out);
    assert!(!first_run.is_empty() && first_run.len() < expected().len());

    let env = checkpointed_env(to, &chk);
    env.restore_from_savepoint(SavepointRestoreSettings::new(&savepoint));
    counting_job(&env, &out, "counting", 0);
    env.execute("counting").unwrap();
    assert_eq!(
        lines(&out),
        expected(),
        "stopped at parallelism {from} and resumed at {to}: every count exactly once"
    );
}

#[test]
fn stop_with_savepoint_and_restore_at_parallelism_2_to_3_gives_the_failure_free_output() {
    rescale(2, 3);
}

#[test]
fn stop_with_savepoint_and_restore_at_parallelism_3_to_1_gives_the_failure_free_output() {
    rescale(3, 1);
}

#[test]
fn a_savepoint_of_a_running_job_leaves_it_running_and_restores_after_being_moved() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, chk, sp) = dirs(&tmp);
    let env = checkpointed_env(2, &chk);
    let job = counting_job(&env, &out, "counting", 10_000);
    let client = env.execute_async("counting").unwrap();
    wait_for_records(&job, 2_000);
    let savepoint = client
        .trigger_savepoint(Some(&sp.display().to_string()))
        .unwrap();
    client.wait().unwrap();
    assert_eq!(lines(&out), expected(), "the job ran to its end");

    // Relocatable: move the savepoint elsewhere and restore from a plain path, into the
    // same output. The parts written after the savepoint are replaced by the replay, and
    // the counts go on from the savepoint's: without its state or source positions, counts
    // would repeat.
    let moved = tmp.path().join("moved-savepoint");
    let original = savepoint.strip_prefix("file://").unwrap();
    std::fs::rename(original, &moved).unwrap();
    let env = checkpointed_env(2, &chk);
    env.restore_from_savepoint(SavepointRestoreSettings::new(moved.display().to_string()));
    counting_job(&env, &out, "counting", 0);
    let resumed = env.execute("counting").unwrap();
    assert!(resumed.restored_from.is_empty(), "no failure");
    assert_eq!(lines(&out), expected(), "every count exactly once");
}

#[test]
fn a_savepoint_of_another_job_is_refused_unless_non_restored_state_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, chk, sp) = dirs(&tmp);
    let (savepoint, _) = stop_midway(2, &out, &chk, &sp);

    let other = tmp.path().join("other");
    let env = checkpointed_env(2, &chk);
    env.restore_from_savepoint(SavepointRestoreSettings::new(&savepoint));
    counting_job(&env, &other, "other", 0);
    match env.execute("other") {
        Err(ApiError::Savepoint(m)) => {
            assert!(
                m.contains("counting-count")
                    && m.contains("does not have")
                    && m.contains("other-count")
                    && m.contains(&savepoint),
                "{m}"
            );
        }
        other => panic!("expected a savepoint error, got {other:?}"),
    }
    assert!(!other.exists(), "nothing ran");

    let env = checkpointed_env(2, &chk);
    env.restore_from_savepoint(SavepointRestoreSettings {
        path: savepoint,
        allow_non_restored_state: true,
    });
    counting_job(&env, &other, "other", 0);
    env.execute("other").unwrap();
    assert_eq!(
        lines(&other),
        expected(),
        "started without the skipped state"
    );
}

#[test]
fn a_missing_or_corrupt_savepoint_is_refused_with_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, chk, sp) = dirs(&tmp);
    let missing = tmp.path().join("no-such-savepoint");
    let env = checkpointed_env(2, &chk);
    env.restore_from_savepoint(SavepointRestoreSettings::new(missing.display().to_string()));
    counting_job(&env, &out, "counting", 0);
    match env.execute("counting") {
        Err(ApiError::Savepoint(m)) => assert!(
            m.contains("no-such-savepoint") && m.contains("no such directory"),
            "{m}"
        ),
        other => panic!("expected a savepoint error, got {other:?}"),
    }

    let (savepoint, _) = stop_midway(2, &out, &chk, &sp);
    let dir = Path::new(savepoint.strip_prefix("file://").unwrap());
    let victim = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap() != "_metadata")
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let env = checkpointed_env(2, &chk);
    env.restore_from_savepoint(SavepointRestoreSettings::new(&savepoint));
    counting_job(&env, &tmp.path().join("x"), "counting", 0);
    match env.execute("counting") {
        Err(ApiError::Savepoint(m)) => assert!(
            m.contains(&victim.file_name().unwrap().to_string_lossy().to_string()),
            "{m}"
        ),
        other => panic!("expected a savepoint error, got {other:?}"),
    }
}

#[test]
fn a_savepoint_of_a_job_without_checkpoint_storage_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    let job = counting_job(&env, &tmp.path().join("out"), "plain", 10_000);
    let client = env.execute_async("plain").unwrap();
    wait_for_records(&job, 10);
    match client.trigger_savepoint(Some(&tmp.path().display().to_string())) {
        Err(ApiError::Savepoint(m)) => assert!(m.contains("state.checkpoints.dir"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    client.cancel().unwrap();
    assert!(client.wait().is_err(), "cancelled");
}

#[test]
fn a_failure_before_the_first_checkpoint_after_a_savepoint_restores_the_savepoint_again() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let tmp = tempfile::tempdir().unwrap();
    let (out, chk, sp) = dirs(&tmp);
    let (savepoint, _) = stop_midway(2, &out, &chk, &sp);
    let id: u64 = savepoint.rsplit('-').next().unwrap().parse().unwrap();

    // No checkpoint completes before the failure: the interval is far longer than the run.
    let env = no_periodic_checkpoints_one_restart(&chk);
    env.restore_from_savepoint(SavepointRestoreSettings::new(&savepoint));
    env.from_generator(GeneratorSource::new(Some(RECORDS), |i| (i % KEYS, 1u64)))
        .uid("counting-source")
        .map(|r: (u64, u64)| {
            if SEEN.fetch_add(1, Ordering::SeqCst) == 100 {
                panic!("injected failure before any checkpoint");
            }
            r
        })
        .uid("counting-tap")
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("counting-count")
        .sink_to_files(FileSink::with_formatter(&out, |(k, c): &(u64, u64)| {
            format!("{k},{c}")
        }))
        .uid("counting-sink");
    let result = env.execute("counting").unwrap();
    assert_eq!(result.restored_from, vec![Some(id)], "the savepoint again");
    assert_eq!(lines(&out), expected(), "every count exactly once");
}

#[test]
fn a_savepoint_restored_with_another_output_directory_keeps_the_earlier_parts_where_they_were_written(
) {
    let tmp = tempfile::tempdir().unwrap();
    let (out, chk, sp) = dirs(&tmp);
    let env = checkpointed_env(2, &chk);
    let job = counting_job(&env, &out, "counting", 10_000);
    let client = env.execute_async("counting").unwrap();
    wait_for_records(&job, 2_000);
    let savepoint = client
        .trigger_savepoint(Some(&sp.display().to_string()))
        .unwrap();
    // Later checkpoints commit more parts into `out` before the job is cancelled.
    wait_for_records(&job, 6_000);
    client.cancel().unwrap();
    let _ = client.wait();

    // Restored at another parallelism into another directory: the parts the savepoint
    // covers stay in `out`, those written after it go (their records are replayed), and
    // the rest of the output goes into the new directory.
    let moved = tmp.path().join("moved-output");
    let env = checkpointed_env(3, &chk);
    env.restore_from_savepoint(SavepointRestoreSettings::new(&savepoint));
    counting_job(&env, &moved, "counting", 0);
    env.execute("counting").unwrap();
    let (before, after) = (lines(&out), lines(&moved));
    assert!(
        !before.is_empty() && !after.is_empty(),
        "both directories hold output"
    );
    let mut all = before;
    for (line, n) in after {
        *all.entry(line).or_insert(0) += n;
    }
    assert_eq!(
        all,
        expected(),
        "every count exactly once across both directories"
    );
}

#[test]
fn a_savepoint_whose_output_directory_was_removed_fails_the_job_at_once_naming_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, chk, sp) = dirs(&tmp);
    // The stop savepoint is the job's only checkpoint: every part the sinks wrote is
    // pending in it, and its commit publishes them in `out`.
    let env = no_periodic_checkpoints_one_restart(&chk);
    let job = counting_job(&env, &out, "counting", 10_000);
    let client = env.execute_async("counting").unwrap();
    wait_for_records(&job, 2_000);
    let savepoint = client
        .stop_with_savepoint(Some(&sp.display().to_string()))
        .unwrap();
    client.wait().unwrap();
    std::fs::remove_dir_all(&out).unwrap();

    // The sinks cannot find the parts the savepoint holds: every run would fail the same
    // way, so the job fails at once although its restart strategy allows a hundred
    // restarts.
    let env = checkpointed_env(2, &chk);
    env.configure(|s| {
        s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
            attempts: 100,
            delay: Duration::from_millis(10),
        })
    });
    env.restore_from_savepoint(SavepointRestoreSettings::new(&savepoint));
    counting_job(&env, &tmp.path().join("new-output"), "counting", 0);
    let message = env.execute("counting").unwrap_err().to_string();
    assert!(
        message.contains("file sink cannot commit part")
            && message.contains(&out.display().to_string())
            && message.contains("task '")
            && message.contains("a restored-state failure")
            && message.contains("was not restarted"),
        "{message}"
    );
}

/// A transactional sink whose next commit fails once armed.
#[derive(Clone, Default)]
struct FailingCommit {
    armed: Arc<AtomicBool>,
    recovered: Arc<AtomicU64>,
}

impl SinkFunction<(u64, u64)> for FailingCommit {
    fn create_writer(
        &self,
        _ctx: &SinkContext,
    ) -> Result<Box<dyn SinkWriter<(u64, u64)>>, TaskError> {
        Ok(Box::new(self.clone()))
    }
}

impl SinkWriter<(u64, u64)> for FailingCommit {
    fn write(&mut self, _: (u64, u64), _: Timestamp) -> Result<(), TaskError> {
        Ok(())
    }
    fn pre_commit(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>, TaskError> {
        Ok(Some(checkpoint.to_le_bytes().to_vec()))
    }
    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            return Err(TaskError::Io(format!(
                "injected commit failure of checkpoint {checkpoint}"
            )));
        }
        Ok(())
    }
    fn recover(&mut self, states: Vec<Vec<u8>>) -> Result<(), TaskError> {
        self.recovered
            .fetch_add(states.len() as u64, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_commit_failing_after_a_stop_savepoint_completed_restarts_the_job_and_the_stop_fails_naming_the_savepoint(
) {
    let tmp = tempfile::tempdir().unwrap();
    let (_, chk, sp) = dirs(&tmp);
    // No periodic checkpoint: the savepoints are the only checkpoints.
    let env = no_periodic_checkpoints_one_restart(&chk);
    let sink = FailingCommit::default();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    env.from_generator(GeneratorSource::new(None, |i| (i % KEYS, 1u64)).with_rate_limit(10_000))
        .uid("endless-source")
        .map(move |r: (u64, u64)| {
            s.fetch_add(1, Ordering::Relaxed);
            r
        })
        .uid("endless-tap")
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("endless-count")
        .add_sink(sink.clone())
        .uid("endless-sink");
    let client = env.execute_async("endless").unwrap();
    let job = Job { seen };
    wait_for_records(&job, 1_000);

    sink.armed.store(true, Ordering::SeqCst);
    let target = sp.display().to_string();
    let first = match client.stop_with_savepoint(Some(&target)) {
        Err(ApiError::Savepoint(m)) => m,
        other => panic!("expected the stop to fail, got {other:?}"),
    };
    assert!(
        first.contains("is complete, but the job failed while stopping")
            && first.contains("injected commit failure of checkpoint 1")
            && first.contains(&format!("file://{}/savepoint-", sp.display())),
        "{first}"
    );
    let savepoint = first
        .split_whitespace()
        .find(|w| w.starts_with("file://"))
        .unwrap();
    let dir = Path::new(savepoint.strip_prefix("file://").unwrap());
    assert!(dir.join("_metadata").is_file(), "{first}");

    // The job restarted from the savepoint's checkpoint, recovering both sink subtasks'
    // transactions, and runs on until it is stopped again.
    let restarted = job.seen.load(Ordering::Relaxed);
    wait_for_records(&job, restarted + 1_000);
    let second = client.stop_with_savepoint(Some(&target)).unwrap();
    assert!(second.ends_with("-2"), "{second}");
    let result = client.wait().unwrap();
    assert_eq!(result.restored_from, vec![Some(1)]);
    assert_eq!(sink.recovered.load(Ordering::SeqCst), 2);
}
