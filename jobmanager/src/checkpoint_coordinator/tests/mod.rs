use super::*;
use std::time::Duration;
use weir_runtime::checkpoint::CheckpointStorage;

mod requests;
mod shared_uploads;

/// The coordinator with its storage, whose storage actions are carried out as its JobMaster
/// carries them out; every method returns the remaining actions (messages and answers).
struct Harness {
    c: CheckpointCoordinator,
    storage: CheckpointStorage,
}

impl std::ops::Deref for Harness {
    type Target = CheckpointCoordinator;
    fn deref(&self) -> &CheckpointCoordinator {
        &self.c
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut CheckpointCoordinator {
        &mut self.c
    }
}

impl Harness {
    fn new(config: CheckpointConfig, storage: CheckpointStorage, tasks: &[SubtaskId]) -> Self {
        let shared = crate::checkpoint_io::registry(&storage, JOB);
        let c = CheckpointCoordinator::new(JOB, "job", config, shared, tasks.iter().copied(), 1);
        Self { c, storage }
    }

    fn with_sources(mut self, sources: impl IntoIterator<Item = SubtaskId>) -> Self {
        self.c = self.c.with_sources(sources);
        self
    }

    fn storage(&self) -> &CheckpointStorage {
        &self.storage
    }

    fn run(&mut self, now: Instant, actions: Vec<CoordinatorAction>) -> Vec<CoordinatorAction> {
        crate::checkpoint_io::perform(&mut self.c, &self.storage, None, now, actions)
    }

    fn tick(&mut self, now: Instant, timestamp_ms: i64) -> Vec<CoordinatorAction> {
        let a = self.c.tick(now, timestamp_ms);
        self.run(now, a)
    }

    fn acknowledge(
        &mut self,
        now: Instant,
        subtask: SubtaskId,
        checkpoint: CheckpointId,
        state: Vec<OperatorSubtaskState>,
        alignment_ms: u64,
    ) -> Vec<CoordinatorAction> {
        let a = self
            .c
            .acknowledge(subtask, checkpoint, state, alignment_ms, false);
        self.run(now, a)
    }

    fn decline(
        &mut self,
        subtask: SubtaskId,
        checkpoint: CheckpointId,
        reason: &str,
    ) -> Vec<CoordinatorAction> {
        let a = self.c.decline(subtask, checkpoint, reason);
        self.run(Instant::now(), a)
    }

    fn task_finished(&mut self, now: Instant, subtask: SubtaskId) -> Vec<CoordinatorAction> {
        let a = self.c.task_finished(subtask);
        self.run(now, a)
    }

    fn pause(&mut self, failure: &str) -> Vec<CoordinatorAction> {
        let a = self.c.pause(failure);
        self.run(Instant::now(), a)
    }

    fn ended(&mut self, failure: Option<&str>) -> Vec<CoordinatorAction> {
        let a = self.c.ended(failure);
        self.run(Instant::now(), a)
    }

    fn shutdown(&mut self) -> Vec<CoordinatorAction> {
        let a = self.c.shutdown();
        self.run(Instant::now(), a)
    }
}

const JOB: JobId = JobId(3);

fn task(i: u16) -> SubtaskId {
    SubtaskId {
        job: JOB,
        vertex: 1,
        subtask: i,
    }
}

/// A coordinator whose run started long enough ago for the first checkpoint to be due.
fn coordinator(config: CheckpointConfig) -> Harness {
    let storage = CheckpointStorage::open("memory://").unwrap();
    let mut c = Harness::new(config, storage, &[task(0), task(1)]);
    let started = Instant::now().checked_sub(Duration::from_secs(10)).unwrap();
    assert!(
        c.tick(started, 0).is_empty(),
        "nothing is due as the run starts"
    );
    c
}

fn config() -> CheckpointConfig {
    CheckpointConfig::new(Duration::from_millis(100), "memory://")
}

/// Uploads a state file for `subtask` and returns its acknowledgement payload.
fn state(c: &Harness, checkpoint: CheckpointId, i: u16) -> Vec<OperatorSubtaskState> {
    let handle = c
        .storage()
        .write_state(
            JOB,
            checkpoint,
            &format!("count-{i}"),
            i,
            (i * 64, i * 64 + 63),
            b"counts",
        )
        .unwrap();
    vec![OperatorSubtaskState {
        uid: "count".into(),
        parallelism: 2,
        max_parallelism: 128,
        handle,
    }]
}

fn triggered(actions: &[CoordinatorAction]) -> Option<CheckpointId> {
    actions.iter().find_map(|a| match a {
        CoordinatorAction::Trigger { checkpoint, .. } => Some(*checkpoint),
        _ => None,
    })
}

#[test]
fn a_checkpoint_completes_when_every_task_acknowledged_and_its_metadata_lists_them() {
    let mut c = coordinator(config());
    let t0 = Instant::now();
    let id = triggered(&c.tick(t0, 1_000)).unwrap();
    assert_eq!(id, 1);
    let s0 = state(&c, id, 0);
    assert!(c.acknowledge(t0, task(0), id, s0, 3).is_empty());
    let s1 = state(&c, id, 1);
    let actions = c.acknowledge(t0 + Duration::from_millis(40), task(1), id, s1, 7);
    assert_eq!(
        actions,
        vec![CoordinatorAction::NotifyComplete {
            checkpoint: 1,
            last: false
        }]
    );
    let m = c.storage().latest_usable(JOB).unwrap();
    assert_eq!(m.checkpoint, 1);
    assert_eq!(m.operators.len(), 1);
    assert_eq!(m.operators[0].subtasks.len(), 2);
    let done = &c.completed()[0];
    assert_eq!(
        (done.max_alignment_ms, done.duration),
        (7, Duration::from_millis(40))
    );
    assert!(done.size > 0);
}

/// Stores the shared files `files` (each `name` holds `name` as bytes) and a state file
/// for `subtask` referencing them; returns its acknowledgement payload.
fn shared_state(
    c: &Harness,
    checkpoint: CheckpointId,
    i: u16,
    files: &[&str],
) -> Vec<OperatorSubtaskState> {
    let mut s = state(c, checkpoint, i);
    for name in files {
        let path = CheckpointStorage::shared_path(JOB, name);
        c.storage()
            .write_shared(&path, name.as_bytes().to_vec())
            .unwrap();
        s[0].handle
            .shared
            .push(weir_runtime::checkpoint::SharedStateFile {
                local: format!("{name}.sst"),
                path,
                size: name.len() as u64,
                checksum: crc32fast::hash(name.as_bytes()),
            });
    }
    s
}

fn stored(c: &Harness, name: &str) -> bool {
    let path = CheckpointStorage::shared_path(JOB, name);
    let file = weir_runtime::checkpoint::SharedStateFile {
        local: String::new(),
        path,
        size: name.len() as u64,
        checksum: crc32fast::hash(name.as_bytes()),
    };
    c.storage().read_shared(&file).is_ok()
}

#[test]
fn shared_files_are_deleted_exactly_when_the_last_retained_checkpoint_using_them_is_subsumed() {
    let mut cfg = config();
    cfg.retained = 2;
    let mut c = coordinator(cfg);
    let mut now = Instant::now();
    let mut run = |c: &mut Harness, t0: &[&str], t1: &[&str]| {
        now += Duration::from_secs(1);
        let id = triggered(&c.tick(now, 0)).expect("due");
        let (s0, s1) = (shared_state(c, id, 0, t0), shared_state(c, id, 1, t1));
        c.acknowledge(now, task(0), id, s0, 0);
        let actions = c.acknowledge(now, task(1), id, s1, 0);
        assert!(actions.contains(&CoordinatorAction::NotifyComplete {
            checkpoint: id,
            last: false
        }));
        id
    };
    run(&mut c, &["aaaa", "bb"], &["xxxxxxxx"]);
    run(&mut c, &["aaaa", "ccc"], &["xxxxxxxx"]);
    let second = c.completed()[1].clone();
    assert_eq!(
        second.size - second.incremental_size,
        12,
        "aaaa and xxxxxxxx were stored by checkpoint 1"
    );
    let all = ["aaaa", "bb", "ccc", "ddddd", "xxxxxxxx", "yy"];
    let present =
        |c: &Harness| -> Vec<&str> { all.iter().copied().filter(|f| stored(c, f)).collect() };
    assert_eq!(present(&c), ["aaaa", "bb", "ccc", "xxxxxxxx"]);
    // Checkpoint 1 is subsumed: only bb was used by it alone.
    run(&mut c, &["ccc", "ddddd"], &["yy"]);
    assert_eq!(present(&c), ["aaaa", "ccc", "ddddd", "xxxxxxxx", "yy"]);
    // Checkpoint 2 is subsumed: aaaa and xxxxxxxx go, ccc stays for checkpoint 3.
    run(&mut c, &["ddddd"], &["yy"]);
    assert_eq!(present(&c), ["ccc", "ddddd", "yy"]);
    assert_eq!(c.shared_state().checkpoints().collect::<Vec<_>>(), [3, 4]);

    // An aborted checkpoint's new file is deleted; the retained ones' files stay.
    now += Duration::from_secs(1);
    let id = triggered(&c.tick(now, 0)).unwrap();
    let s0 = shared_state(&c, id, 0, &["ddddd", "eeeeee"]);
    c.acknowledge(now, task(0), id, s0, 0);
    assert!(stored(&c, "eeeeee"));
    c.decline(task(1), id, "test");
    assert!(!stored(&c, "eeeeee"));
    // So is one a late acknowledgement of the aborted checkpoint brings.
    let late = shared_state(&c, id, 1, &["ffff", "yy"]);
    assert!(c.acknowledge(now, task(1), id, late, 0).is_empty());
    assert_eq!(present(&c), ["ccc", "ddddd", "yy"]);
    assert!(!stored(&c, "ffff"));

    // The job ends: the retained checkpoints keep their files.
    assert!(c.shutdown().is_empty(), "nothing left to send");
    assert_eq!(present(&c), ["ccc", "ddddd", "yy"]);
}

#[test]
fn checkpoints_go_on_without_finished_subtasks_until_a_whole_source_finished() {
    let storage = CheckpointStorage::open("memory://").unwrap();
    let (s0, s1, sink) = (
        task(0),
        task(1),
        SubtaskId {
            vertex: 2,
            ..task(0)
        },
    );
    let mut c = Harness::new(config(), storage, &[s0, s1, sink]).with_sources([s0, s1]);
    let t0 = Instant::now();
    c.tick(t0, 0);
    let mut now = t0 + Duration::from_secs(1);
    let id = triggered(&c.tick(now, 0)).unwrap();
    c.acknowledge(now, s0, id, Vec::new(), 0);
    c.acknowledge(now, sink, id, Vec::new(), 0);
    // Source subtask 1 finishes before the barrier reached it: the checkpoint completes.
    let actions = c.task_finished(now, s1);
    assert_eq!(
        actions,
        vec![CoordinatorAction::NotifyComplete {
            checkpoint: id,
            last: false
        }]
    );
    // The next checkpoint waits for the running subtasks only.
    now += Duration::from_secs(1);
    let next = triggered(&c.tick(now, 0)).unwrap();
    c.acknowledge(now, s0, next, Vec::new(), 0);
    let actions = c.acknowledge(now, sink, next, Vec::new(), 0);
    assert!(actions.contains(&CoordinatorAction::NotifyComplete {
        checkpoint: next,
        last: false
    }));
    // The last subtask of the source finishing ends checkpointing.
    now += Duration::from_secs(1);
    let last = triggered(&c.tick(now, 0)).unwrap();
    c.task_finished(now, s0);
    assert!(c.pending().is_empty(), "checkpoint {last} dropped");
    assert_eq!(triggered(&c.tick(now + Duration::from_secs(9), 0)), None);
    // A restarted job checkpoints with every subtask again.
    c.resume();
    c.tick(now, 0);
    now += Duration::from_secs(10);
    let again = triggered(&c.tick(now, 0)).unwrap();
    c.acknowledge(now, s0, again, Vec::new(), 0);
    assert!(c.acknowledge(now, sink, again, Vec::new(), 0).is_empty());
    assert_eq!(c.pending(), [again], "waits for source subtask 1 again");
}

#[test]
fn triggers_follow_the_interval_the_minimum_pause_and_the_concurrency_limit() {
    let mut cfg = config();
    cfg.min_pause = Duration::from_millis(300);
    let mut c = coordinator(cfg);
    let t0 = Instant::now();
    assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
    // One pending already (max 1), and the interval has not passed.
    assert_eq!(triggered(&c.tick(t0 + Duration::from_millis(50), 0)), None);
    assert_eq!(triggered(&c.tick(t0 + Duration::from_millis(150), 0)), None);
    let done_at = t0 + Duration::from_millis(200);
    let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
    c.acknowledge(done_at, task(0), 1, s0, 0);
    c.acknowledge(done_at, task(1), 1, s1, 0);
    // The interval passed, but the minimum pause after completion did not.
    assert_eq!(
        triggered(&c.tick(done_at + Duration::from_millis(200), 0)),
        None
    );
    assert_eq!(
        triggered(&c.tick(done_at + Duration::from_millis(300), 0)),
        Some(2)
    );
}

/// A coordinator whose checkpoint 1, acknowledged by task 0 only, timed out (a failure,
/// within `tolerable_failures`) and whose checkpoint 2 was triggered.
fn first_checkpoint_timed_out(tolerable_failures: u32) -> (Harness, Instant) {
    let mut cfg = config();
    cfg.timeout = Duration::from_millis(500);
    cfg.tolerable_failures = tolerable_failures;
    let mut c = coordinator(cfg);
    let t0 = Instant::now();
    c.tick(t0, 0);
    let s0 = state(&c, 1, 0);
    c.acknowledge(t0, task(0), 1, s0, 0);
    let actions = c.tick(t0 + Duration::from_millis(500), 0);
    assert_eq!(triggered(&actions), Some(2));
    assert!(!actions.iter().any(is_fail));
    (c, t0)
}

#[test]
fn a_timed_out_checkpoint_is_aborted_its_files_deleted_and_the_job_fails_past_the_tolerance() {
    let (mut c, t0) = first_checkpoint_timed_out(1);
    assert!(c.storage().completed(JOB).unwrap().is_empty());
    // A late acknowledgement of the aborted checkpoint changes nothing.
    assert!(c.acknowledge(t0, task(1), 1, Vec::new(), 0).is_empty());
    // Checkpoint 2 is declined: a second failure in a row fails the job.
    let actions = c.decline(task(1), 2, "source not running");
    match &actions[..] {
        [CoordinatorAction::FailJob { reason }] => {
            assert!(
                reason.contains("declined by subtask 1") && reason.contains("tolerable"),
                "{reason}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn files_an_upload_writes_after_its_checkpoint_was_aborted_go_with_the_next_abort() {
    // Checkpoint 1 timed out; its files went. Then task 1's upload for it ends.
    let (mut c, t0) = first_checkpoint_timed_out(10);
    assert!(c.storage().checkpoints(JOB).unwrap().is_empty());
    state(&c, 1, 1);
    // Checkpoint 2 is declined: its files and checkpoint 1's late ones go.
    state(&c, 2, 0);
    c.decline(task(1), 2, "disk full");
    assert!(c.storage().checkpoints(JOB).unwrap().is_empty());
    // A restart drops checkpoint 3 in flight, and whatever 2 got late.
    let id = triggered(&c.tick(t0 + Duration::from_millis(700), 0)).unwrap();
    state(&c, id, 0);
    state(&c, 2, 1);
    c.pause("a task failed");
    assert!(c.storage().checkpoints(JOB).unwrap().is_empty());
}

#[test]
fn an_abort_keeps_the_checkpoints_in_flight_and_the_complete_ones() {
    let mut cfg = config();
    cfg.max_concurrent = 2;
    cfg.min_pause = Duration::ZERO;
    cfg.tolerable_failures = 10;
    let mut c = coordinator(cfg);
    let t0 = Instant::now();
    assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
    let two = t0 + Duration::from_millis(100);
    assert_eq!(triggered(&c.tick(two, 0)), Some(2));
    let s0 = state(&c, 2, 0);
    c.acknowledge(two, task(0), 2, s0, 0);
    // Checkpoint 1 is declined while 2 is in flight with a file: 2 stays and completes.
    state(&c, 1, 0);
    c.decline(task(1), 1, "disk full");
    assert_eq!(c.storage().checkpoints(JOB).unwrap(), vec![2]);
    let s1 = state(&c, 2, 1);
    c.acknowledge(two, task(1), 2, s1, 0);
    assert_eq!(c.storage().completed(JOB).unwrap(), vec![2]);
    // Checkpoint 3 is declined: complete checkpoint 2 stays.
    assert_eq!(
        triggered(&c.tick(two + Duration::from_millis(100), 0)),
        Some(3)
    );
    c.decline(task(0), 3, "disk full");
    assert_eq!(c.storage().checkpoints(JOB).unwrap(), vec![2]);
}

#[test]
fn only_the_retained_checkpoints_remain_after_fifty_and_shutdown_removes_pending_ones() {
    let mut cfg = config();
    cfg.retained = 2;
    let mut c = coordinator(cfg);
    let mut now = Instant::now();
    for _ in 0..50 {
        now += Duration::from_millis(100);
        let id = triggered(&c.tick(now, 0)).unwrap();
        let (s0, s1) = (state(&c, id, 0), state(&c, id, 1));
        c.acknowledge(now, task(0), id, s0, 0);
        c.acknowledge(now, task(1), id, s1, 0);
    }
    assert_eq!(c.storage().completed(JOB).unwrap(), vec![49, 50]);
    now += Duration::from_millis(100);
    let id = triggered(&c.tick(now, 0)).unwrap();
    let s0 = state(&c, id, 0);
    c.acknowledge(now, task(0), id, s0, 0);
    assert!(c.shutdown().is_empty(), "nothing left to send");
    assert_eq!(c.storage().checkpoints(JOB).unwrap(), vec![49, 50]);
    let h = c.history();
    assert_eq!(
        (h.completed, h.failed, h.in_progress()),
        (50, 1, 0),
        "{h:?}"
    );
    let dropped = h.entries().last().unwrap();
    assert_eq!(
        dropped.failure.as_deref(),
        Some("the job ended before it completed")
    );
}

#[test]
fn the_coordinator_asks_for_storage_work_and_completes_only_once_it_is_done() {
    let mut h = coordinator(config());
    let t0 = Instant::now();
    let id = triggered(&h.tick(t0, 0)).expect("due");
    let (s0, s1) = (state(&h, id, 0), state(&h, id, 1));
    assert!(h.c.acknowledge(task(0), id, s0, 0, false).is_empty());
    let actions = h.c.acknowledge(task(1), id, s1, 0, false);
    assert!(
        matches!(actions.as_slice(), [CoordinatorAction::Store { checkpoint, .. }] if *checkpoint == id),
        "{actions:?}"
    );
    assert!(
        h.storage().completed(JOB).unwrap().is_empty(),
        "the coordinator wrote nothing"
    );
    assert!(h.completed().is_empty());
    let rest = h.run(t0, actions);
    assert!(rest.contains(&CoordinatorAction::NotifyComplete {
        checkpoint: id,
        last: false
    }));
    assert_eq!(h.storage().completed(JOB).unwrap(), vec![id]);
    assert_eq!(h.completed().len(), 1);
}

#[test]
fn metadata_that_cannot_be_stored_fails_the_checkpoint_and_counts_against_the_tolerance() {
    let mut h = coordinator(config());
    let t0 = Instant::now();
    let id = triggered(&h.tick(t0, 0)).expect("due");
    let (s0, s1) = (state(&h, id, 0), state(&h, id, 1));
    h.c.acknowledge(task(0), id, s0, 0, false);
    let actions = h.c.acknowledge(task(1), id, s1, 0, false);
    let Some(CoordinatorAction::Store { metadata, .. }) = actions.into_iter().next() else {
        panic!("the last acknowledgement asks to store the metadata");
    };
    let outcome = StoreOutcome::MetadataFailed("the disk is full".into());
    let actions = h.c.stored(t0, &metadata, outcome);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, CoordinatorAction::FailJob { reason }
            if reason.contains("cannot complete: the disk is full"))),
        "{actions:?}"
    );
    assert!(!actions.contains(&CoordinatorAction::NotifyComplete {
        checkpoint: id,
        last: false
    }));
    assert!(h.completed().is_empty());
}

#[test]
fn a_checkpoint_every_task_took_after_its_input_ended_is_the_final_one_and_ends_triggering() {
    let mut h = coordinator(config());
    let t0 = Instant::now();
    // One task's input had ended, the other's not: an ordinary checkpoint.
    let id = triggered(&h.tick(t0, 0)).expect("due");
    let (s0, s1) = (state(&h, id, 0), state(&h, id, 1));
    h.c.acknowledge(task(0), id, s0, 0, true);
    let actions = h.c.acknowledge(task(1), id, s1, 0, false);
    let rest = h.run(t0, actions);
    assert!(rest.contains(&CoordinatorAction::NotifyComplete {
        checkpoint: id,
        last: false
    }));
    // Both inputs ended before the next one: it is the final checkpoint.
    let now = t0 + Duration::from_secs(1);
    let last = triggered(&h.tick(now, 0)).expect("due");
    let (s0, s1) = (state(&h, last, 0), state(&h, last, 1));
    h.c.acknowledge(task(0), last, s0, 0, true);
    let actions = h.c.acknowledge(task(1), last, s1, 0, true);
    let rest = h.run(now, actions);
    assert!(rest.contains(&CoordinatorAction::NotifyComplete {
        checkpoint: last,
        last: true
    }));
    assert_eq!(
        triggered(&h.tick(now + Duration::from_secs(5), 0)),
        None,
        "no checkpoint after the final one"
    );
}
