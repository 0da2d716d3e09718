//! Checkpoints and savepoints asked for (savepoints, stops, checkpoints on request) and
//! the checkpoint history they leave.

use super::*;
#[test]
fn a_savepoint_waits_for_the_pending_checkpoint_and_a_failed_one_is_answered_not_counted() {
    let mut c = coordinator(config());
    let t0 = Instant::now();
    assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
    let request = c
        .request_savepoint(SavepointRequest {
            target: Some("memory://".into()),
            drain: false,
            stop: false,
        })
        .unwrap();
    // Checkpoint 1 is pending: neither the savepoint nor a periodic checkpoint starts.
    assert_eq!(triggered(&c.tick(t0 + Duration::from_millis(250), 0)), None);
    let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
    c.acknowledge(t0, task(0), 1, s0, 0);
    c.acknowledge(t0, task(1), 1, s1, 0);
    let actions = c.tick(t0 + Duration::from_millis(260), 0);
    match &actions[..] {
        [CoordinatorAction::Trigger {
            checkpoint: 2,
            options,
            ..
        }] => {
            assert!(options.savepoint && options.aligned && !options.stop)
        }
        other => panic!("unexpected {other:?}"),
    }
    let (s0, s1) = (state(&c, 2, 0), state(&c, 2, 1));
    c.acknowledge(t0, task(0), 2, s0, 0);
    let actions = c.acknowledge(t0, task(1), 2, s1, 0);
    let answer = actions.iter().find_map(|a| match a {
        CoordinatorAction::SavepointDone { request: r, result } if *r == request => {
            Some(result.clone())
        }
        _ => None,
    });
    let url = answer.expect("the request is answered").unwrap();
    assert!(
        url.starts_with("memory://") && url.ends_with(&format!("savepoint-{JOB}-2")),
        "{url}"
    );

    // A declined stop-with-savepoint is answered with the reason, tells the tasks to
    // resume, and does not fail the job (no failure is tolerated by this config).
    let request = c
        .request_savepoint(SavepointRequest {
            target: Some("memory://".into()),
            drain: false,
            stop: true,
        })
        .unwrap();
    assert_eq!(
        triggered(&c.tick(t0 + Duration::from_millis(270), 0)),
        Some(3)
    );
    let actions = c.decline(task(0), 3, "source not running");
    assert!(!actions.iter().any(is_fail), "{actions:?}");
    assert!(actions.contains(&CoordinatorAction::NotifyAborted { checkpoint: 3 }));
    assert!(actions.iter().any(|a| matches!(a,
        CoordinatorAction::SavepointDone { request: r, result: Err(e) }
            if *r == request && e.to_string().contains("source not running"))));
}

fn answer(actions: &[CoordinatorAction], request: u64) -> Option<Result<String, SavepointError>> {
    actions.iter().find_map(|a| match a {
        CoordinatorAction::SavepointDone { request: r, result } if *r == request => {
            Some(result.clone())
        }
        _ => None,
    })
}

fn stop_request(c: &mut Harness) -> u64 {
    c.request_savepoint(SavepointRequest {
        target: Some("memory://".into()),
        drain: false,
        stop: true,
    })
    .unwrap()
}

#[test]
fn a_stop_savepoint_dropped_because_a_task_finished_is_answered_and_resumes_the_tasks() {
    let mut c = coordinator(config());
    let t0 = Instant::now();
    let request = stop_request(&mut c);
    assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
    let s0 = state(&c, 1, 0);
    assert!(c.acknowledge(t0, task(0), 1, s0, 0).is_empty());
    let actions = c.task_finished(Instant::now(), task(0));
    assert!(actions.contains(&CoordinatorAction::NotifyAborted { checkpoint: 1 }));
    let answer = answer(&actions, request)
        .expect("answered")
        .unwrap_err()
        .to_string();
    assert!(answer.contains("a task of the job finished"), "{answer}");
    assert!(c.pending().is_empty());
}

#[test]
fn a_completed_stop_savepoint_is_answered_when_the_job_ends_and_a_failure_while_stopping_resumes_checkpoints(
) {
    let mut c = coordinator(config());
    let t0 = Instant::now();
    let request = stop_request(&mut c);
    assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
    let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
    c.acknowledge(t0, task(0), 1, s0, 0);
    let actions = c.acknowledge(t0, task(1), 1, s1, 0);
    assert_eq!(
        actions,
        vec![CoordinatorAction::NotifyComplete {
            checkpoint: 1,
            last: false
        }],
        "the stop is answered once the job has ended"
    );
    assert!(stop_request_refused(&mut c));
    assert!(c.tick(t0 + Duration::from_secs(1), 0).is_empty());
    // A sink's commit fails: the job restarts and the stop is answered as failed,
    // naming the savepoint, which stays usable.
    let actions = c.pause("commit failed");
    let err = answer(&actions, request)
        .expect("answered")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("savepoint-{JOB}-1")) && err.contains("commit failed"),
        "{err}"
    );
    assert!(c.storage().completed(JOB).unwrap().contains(&1));
    c.resume();
    // The restarted job can be stopped again, and this time it finishes.
    let request = stop_request(&mut c);
    assert_eq!(triggered(&c.tick(t0 + Duration::from_secs(2), 0)), Some(2));
    let (s0, s1) = (state(&c, 2, 0), state(&c, 2, 1));
    c.acknowledge(t0, task(0), 2, s0, 0);
    c.acknowledge(t0, task(1), 2, s1, 0);
    assert!(
        c.task_finished(Instant::now(), task(0)).is_empty(),
        "tasks end one by one"
    );
    let url = answer(&c.ended(None), request).expect("answered").unwrap();
    assert!(url.ends_with(&format!("savepoint-{JOB}-2")), "{url}");
    assert!(c.ended(None).is_empty(), "answered once");
}

fn stop_request_refused(c: &mut Harness) -> bool {
    c.request_savepoint(SavepointRequest {
        target: Some("memory://".into()),
        drain: false,
        stop: false,
    })
    .is_err()
}

#[test]
fn a_savepoint_request_withdrawn_before_its_trigger_is_never_triggered() {
    let mut c = coordinator(config());
    let t0 = Instant::now();
    assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
    let request = stop_request(&mut c);
    assert!(c.withdraw(request));
    assert!(!c.withdraw(request), "withdrawn once");
    let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
    c.acknowledge(t0, task(0), 1, s0, 0);
    c.acknowledge(t0, task(1), 1, s1, 0);
    match &c.tick(t0 + Duration::from_secs(1), 0)[..] {
        [CoordinatorAction::Trigger { options, .. }] => {
            assert!(
                !options.savepoint,
                "a periodic checkpoint, not the savepoint"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_checkpoint_asked_for_is_an_ordinary_checkpoint_answered_with_its_location() {
    let mut c = coordinator(config());
    let t0 = Instant::now();
    let request = c
        .request_savepoint(SavepointRequest {
            target: None,
            stop: false,
            drain: false,
        })
        .unwrap();
    let actions = c.tick(t0, 7);
    match &actions[..] {
        [CoordinatorAction::Trigger {
            checkpoint: 1,
            options,
            ..
        }] => assert!(!options.savepoint && !options.stop && !options.drain),
        other => panic!("unexpected {other:?}"),
    }
    let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
    c.acknowledge(t0, task(0), 1, s0, 0);
    let actions = c.acknowledge(t0, task(1), 1, s1, 0);
    let location = answer(&actions, request).expect("answered").unwrap();
    assert!(location.ends_with(&format!("{JOB}/chk-1")), "{location}");
    assert_eq!(c.completed().len(), 1);
    let h = c.history();
    assert_eq!((h.triggered, h.completed, h.failed), (1, 1, 0));
    let e = h.entries().next().unwrap();
    assert_eq!(e.state, history::CheckpointState::Completed);
    assert_eq!(e.trigger_timestamp_ms, 7);
    assert_eq!(e.external_path.as_deref(), Some(location.as_str()));
    assert!(!e.savepoint);
}

#[test]
fn a_drained_stop_marks_its_barrier_and_failed_checkpoints_stay_in_the_history() {
    let mut c = coordinator(config());
    let t0 = Instant::now();
    assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
    c.decline(task(0), 1, "not ready");
    let request = c
        .request_savepoint(SavepointRequest {
            target: Some("memory://".into()),
            stop: true,
            drain: true,
        })
        .unwrap();
    let actions = c.tick(t0 + Duration::from_millis(10), 0);
    match &actions[..] {
        [CoordinatorAction::Trigger {
            checkpoint: 2,
            options,
            ..
        }] => assert!(options.savepoint && options.stop && options.drain),
        other => panic!("unexpected {other:?}"),
    }
    let h = c.history();
    assert_eq!((h.triggered, h.failed, h.in_progress()), (2, 1, 1));
    let failed = h.entries().next().unwrap();
    assert_eq!(failed.state, history::CheckpointState::Failed);
    assert!(failed.failure.as_deref().unwrap().contains("not ready"));
    assert!(h.entries().nth(1).unwrap().savepoint);
    assert!(answer(&c.pause("a task failed"), request).is_some());
    assert_eq!(
        c.history().in_progress(),
        0,
        "a restart fails what was pending"
    );
}

#[test]
fn checkpoints_overtake_at_once_or_after_the_aligned_timeout_and_savepoints_always_align() {
    let trigger_options = |c: &mut Harness, at: Instant| match &c.tick(at, 0)[..] {
        [CoordinatorAction::Trigger { options, .. }] => *options,
        other => panic!("unexpected {other:?}"),
    };
    let t0 = Instant::now();
    let mut unaligned = config();
    unaligned.unaligned = true;
    let o = trigger_options(&mut coordinator(unaligned.clone()), t0);
    assert!(o.aligned && o.unaligned && !o.timeout);

    let mut timeout = unaligned;
    timeout.aligned_timeout = Duration::from_millis(200);
    let mut c = coordinator(timeout);
    let o = trigger_options(&mut c, t0);
    assert!(
        o.aligned && !o.unaligned && o.timeout,
        "starts aligned: {o:?}"
    );
    let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
    c.acknowledge(t0, task(0), 1, s0, 0);
    c.acknowledge(t0, task(1), 1, s1, 0);
    c.request_savepoint(SavepointRequest {
        target: Some("memory://".into()),
        drain: false,
        stop: false,
    })
    .unwrap();
    let o = trigger_options(&mut c, t0 + Duration::from_millis(10));
    assert!(
        o.savepoint && o.aligned && !o.unaligned && !o.timeout,
        "{o:?}"
    );
}
