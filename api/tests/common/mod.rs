//! Helpers shared by the API's integration tests.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

use std::path::Path;

/// The lines of every committed file a file sink wrote into `dir`, sorted; panics if a
/// file is still hidden (in progress or pending), as none may be once the job ended.
pub fn committed_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "{name} in {} is not committed",
            dir.display()
        );
        let text = std::fs::read_to_string(e.path()).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    lines
}

/// The state backends this build has: memory, and RocksDB with the `rocksdb` feature.
pub fn backends() -> Vec<weir_api::StateBackendKind> {
    let mut kinds = vec![weir_api::StateBackendKind::Memory];
    if cfg!(feature = "rocksdb") {
        kinds.push(weir_api::StateBackendKind::RocksDb);
    }
    kinds
}

/// Parallelism 2 on two TaskManagers with `backend`, every watermark emitted at once.
pub fn env_on(backend: weir_api::StateBackendKind) -> weir_api::StreamExecutionEnvironment {
    let env = weir_api::StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_local_taskmanagers(2)
        .set_state_backend(backend)
        .set_auto_watermark_interval(std::time::Duration::ZERO);
    env
}

/// Adds to `env` checkpoints every 50 ms into `dir` and up to two restarts 100 ms apart.
pub fn checkpoint_and_restart(env: &weir_api::StreamExecutionEnvironment, dir: &Path) {
    env.configure(|s| {
        s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
            attempts: 2,
            delay: std::time::Duration::from_millis(100),
        });
    });
    env.enable_checkpointing(
        std::time::Duration::from_millis(50),
        &format!("file://{}", dir.display()),
    );
}

/// A pass-through that panics once (`failed`), at the first record from the `at`-th on
/// (counted in `seen` across restarts) that passes once a checkpoint of the job is complete
/// in `dir`: the restart is from a checkpoint however slowly the first one completes.
///
/// Until that checkpoint is complete, every record from the `at`-th on is held for
/// [`HOLD_PER_RECORD`], so a bounded source cannot run out of records before its first
/// checkpoint on a loaded machine (barriers still pass between the source's batches).
pub fn fail_once_after_checkpoint<T>(
    seen: &'static std::sync::atomic::AtomicU64,
    failed: &'static std::sync::atomic::AtomicBool,
    at: u64,
    dir: &Path,
) -> impl Fn(T) -> T + Send + Sync + 'static {
    use std::sync::atomic::Ordering;
    let dir = dir.to_path_buf();
    move |e| {
        let due = seen.fetch_add(1, Ordering::SeqCst) + 1 >= at && !failed.load(Ordering::SeqCst);
        if due {
            if !checkpoint_complete(&dir) {
                std::thread::sleep(HOLD_PER_RECORD);
            }
            if checkpoint_complete(&dir) && !failed.swap(true, Ordering::SeqCst) {
                panic!("injected failure");
            }
        }
        e
    }
}

/// How long [`fail_once_after_checkpoint`] holds each due record while no checkpoint is
/// complete: a few thousand records give the first checkpoint seconds.
const HOLD_PER_RECORD: std::time::Duration = std::time::Duration::from_millis(2);

/// Whether a checkpoint of any job in the checkpoint directory `dir` is complete (has its
/// metadata).
fn checkpoint_complete(dir: &Path) -> bool {
    let Ok(jobs) = std::fs::read_dir(dir) else {
        return false;
    };
    jobs.filter_map(Result::ok).any(|job| {
        std::fs::read_dir(job.path()).is_ok_and(|chks| {
            chks.filter_map(Result::ok)
                .any(|c| c.path().join("_metadata").is_file())
        })
    })
}

/// Panics unless the injected failure fired (`failed`) and the job restarted once, from a
/// checkpoint; `run` names the run in the message.
pub fn assert_restored_once(
    result: &weir_api::JobExecutionResult,
    failed: &std::sync::atomic::AtomicBool,
    run: impl std::fmt::Debug,
) {
    assert!(
        failed.load(std::sync::atomic::Ordering::SeqCst),
        "{run:?}: the failure was injected"
    );
    assert!(
        matches!(result.restored_from.as_slice(), [Some(_)]),
        "{run:?}: one restart, from a checkpoint: {:?}",
        result.restored_from
    );
}

/// Writes `lines` into committed files in `out` (operator uid `files`), runs the job `name`
/// of `env`, and panics unless the injected failure (`failed`) restarted it once from a
/// checkpoint and the committed lines are exactly `expected` (sorted); `run` names the run.
pub fn sink_and_check_exactly_once(
    env: &weir_api::StreamExecutionEnvironment,
    lines: weir_api::DataStream<String>,
    out: &Path,
    name: &str,
    failed: &std::sync::atomic::AtomicBool,
    run: impl std::fmt::Debug,
    expected: &[String],
) {
    lines
        .sink_to_files(weir_api::sink::FileSink::with_formatter(
            out,
            |l: &String| l.clone(),
        ))
        .uid("files");
    let result = env.execute(name).unwrap();
    assert_restored_once(&result, failed, &run);
    let committed = committed_lines(out);
    assert!(
        committed == expected,
        "{run:?}: {} lines against {}",
        committed.len(),
        expected.len()
    );
}

/// A source that emits its records one per poll; a record marked `true` waits (at most
/// 30 s, then the task fails) until the gate opens.
pub struct Gated<T>(
    pub Vec<(T, bool)>,
    pub &'static std::sync::atomic::AtomicBool,
);

struct GatedReader<T> {
    records: std::vec::IntoIter<(T, bool)>,
    waiting: Option<(T, bool)>,
    gate: &'static std::sync::atomic::AtomicBool,
    since: std::time::Instant,
}

impl<T: weir_api::Record + Clone + Sync> weir_api::source::SourceFunction<T> for Gated<T> {
    fn create_reader(
        &self,
        _: &weir_api::source::SourceContext,
    ) -> Result<Box<dyn weir_api::source::SourceReader<T>>, weir_api::TaskError> {
        Ok(Box::new(GatedReader {
            records: self.0.clone().into_iter(),
            waiting: None,
            gate: self.1,
            since: std::time::Instant::now(),
        }))
    }
}

impl<T: weir_api::Record> weir_api::source::SourceReader<T> for GatedReader<T> {
    fn poll(
        &mut self,
        out: &mut dyn weir_api::Output<T>,
        _: usize,
    ) -> Result<weir_api::SourceStep, weir_api::TaskError> {
        use std::sync::atomic::Ordering;
        let Some((record, gated)) = self.waiting.take().or_else(|| self.records.next()) else {
            return Ok(weir_api::SourceStep::Finished);
        };
        if gated && !self.gate.load(Ordering::SeqCst) {
            if self.since.elapsed() > std::time::Duration::from_secs(30) {
                return Err(weir_api::TaskError::user(
                    "gated source",
                    "the gate never opened",
                ));
            }
            self.waiting = Some((record, gated));
            return Ok(weir_api::SourceStep::Idle(
                std::time::Duration::from_millis(1),
            ));
        }
        out.emit(record, weir_api::NO_TIMESTAMP)?;
        Ok(weir_api::SourceStep::More)
    }

    fn snapshot_splits(
        &mut self,
        _: weir_runtime::CheckpointId,
    ) -> Result<Option<Vec<Vec<u8>>>, weir_api::TaskError> {
        Ok(None)
    }

    fn restore_splits(&mut self, _: Vec<Vec<u8>>) -> Result<(), weir_api::TaskError> {
        Ok(())
    }
}
