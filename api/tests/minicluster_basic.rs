//! Jobs on the local mini-cluster with two TaskManagers: data crosses loopback TCP.

use weir_api::{ApiError, StreamExecutionEnvironment};

fn env(parallelism: u16) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism).set_local_taskmanagers(2);
    env
}

#[test]
fn map_filter_flat_map_across_two_taskmanagers_loses_and_duplicates_nothing() {
    let env = env(2);
    let input: Vec<u64> = (0..10_000).collect();
    let out = env
        .from_collection(input)
        .rebalance()
        .map(|x| x * 3)
        .filter(|x| x % 2 == 0)
        .flat_map(|x| vec![x, x + 1])
        .rebalance()
        .collect();
    env.execute("smoke").unwrap();
    let mut got = out.take();
    got.sort();
    let mut want: Vec<u64> = (0..10_000u64)
        .map(|x| x * 3)
        .filter(|x| x % 2 == 0)
        .flat_map(|x| [x, x + 1])
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn union_merges_streams_of_different_parallelism() {
    let env = env(2);
    let a = env.from_collection((0..100u32).collect());
    let b = env
        .from_collection((100..250u32).collect())
        .map(|x| x)
        .set_parallelism(2);
    let out = a.union(&[&b]).collect();
    env.execute("union").unwrap();
    let mut got = out.take();
    got.sort();
    assert_eq!(got, (0..250).collect::<Vec<_>>());
}

#[test]
fn a_panicking_user_function_fails_the_job_naming_operator_subtask_and_cause() {
    let env = env(2);
    let _ = env
        .from_collection((0..100u32).collect())
        .rebalance()
        .map(|x| if x == 42 { panic!("bad record {x}") } else { x })
        .name("fragile-map")
        .collect();
    let err = env.execute("failing").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ApiError::JobFailed { .. }), "{msg}");
    assert!(msg.contains("fragile-map"), "{msg}");
    assert!(msg.contains("subtask"), "{msg}");
    assert!(msg.contains("bad record 42"), "{msg}");
}

#[test]
fn a_job_without_a_sink_is_rejected_before_it_runs() {
    let env = env(1);
    let _ = env.from_collection(vec![1u8]).map(|x| x);
    let err = env.execute("no-sink").unwrap_err();
    assert!(err.to_string().contains("has no sink"), "{err}");
}

#[test]
fn parallelism_zero_or_above_max_parallelism_is_rejected_at_build_time() {
    let env = env(1);
    let _ = env
        .from_collection(vec![1u8])
        .map(|x| x)
        .set_parallelism(0)
        .collect();
    let err = env.execute("zero").unwrap_err();
    assert!(err.to_string().contains("parallelism 0"), "{err}");

    let env2 = env_with_max(4);
    let _ = env2
        .from_collection(vec![1u8])
        .map(|x| x)
        .set_parallelism(5)
        .collect();
    let err = env2.execute("too-many").unwrap_err();
    assert!(err.to_string().contains("max parallelism 4"), "{err}");
}

fn env_with_max(max: u16) -> StreamExecutionEnvironment {
    let e = env(1);
    e.set_max_parallelism(max);
    e
}

#[test]
fn duplicate_uids_are_rejected_at_build_time() {
    let env = env(1);
    let s = env.from_collection(vec![1u8]).uid("same");
    let _ = s.map(|x| x).uid("same").collect();
    let err = env.execute("dup").unwrap_err();
    assert!(err.to_string().contains("duplicate uid 'same'"), "{err}");
}

#[test]
fn broadcast_sends_every_record_to_every_subtask_across_taskmanagers() {
    let env = env(2);
    let out = env
        .from_collection((0..1000u32).collect())
        .broadcast()
        .map(|x| x)
        .set_parallelism(2)
        .collect();
    env.execute("broadcast").unwrap();
    let mut got = out.take();
    got.sort();
    let want: Vec<u32> = (0..1000).flat_map(|x| [x, x]).collect();
    assert_eq!(got, want);
}

#[test]
fn a_cluster_running_one_job_after_another_keeps_no_finished_task_threads() {
    let cluster = weir_api::LocalMiniCluster::start(2, 2).unwrap();
    for round in 0..3u32 {
        let env = env(2);
        let out = env
            .from_collection((0..100u32).collect())
            .rebalance()
            .map(move |x| x + round)
            .collect();
        cluster.run(env.job_graph("again").unwrap()).unwrap();
        assert_eq!(out.take().len(), 100);
    }
    // Threads end right after reporting their final state: wait for them, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cluster.running_tasks() > 0 {
        assert!(std::time::Instant::now() < deadline, "task threads linger");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn every_network_buffer_comes_back_after_finished_and_failed_jobs() {
    let cluster = weir_api::LocalMiniCluster::start(2, 2).unwrap();
    let all_returned = |when: &str| {
        for (tm, (reserved, total)) in cluster.network_buffers().into_iter().enumerate() {
            assert_eq!(
                reserved, 0,
                "taskmanager {tm} still has {reserved} of {total} buffers reserved {when}"
            );
        }
    };
    for round in 0..3u64 {
        let env = env(2);
        let out = env
            .from_collection((0..20_000u64).collect())
            .map(move |x| x + round)
            .key_by(|x: &u64| x % 17)
            .reduce(|a, b| a.max(b))
            .collect();
        cluster.run(env.job_graph("buffers").unwrap()).unwrap();
        assert_eq!(out.take().len(), 20_000);
        all_returned("after a finished job");
    }
    let env = env(2);
    env.from_collection((0..20_000u64).collect())
        .rebalance()
        .map(|x| {
            assert!(x != 12_345, "boom");
            x
        })
        .key_by(|x: &u64| x % 17)
        .reduce(|a, b| a.max(b))
        .collect();
    let err = cluster.run(env.job_graph("failing").unwrap()).unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    // Cancelled producers tell the consumer side to forget their channels as they stop;
    // the consumer's TaskManager reads that message on its own thread, so wait for it,
    // bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cluster
        .network_buffers()
        .iter()
        .any(|(reserved, _)| *reserved > 0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    all_returned("after a failed job");
}

#[test]
fn an_invalid_network_buffer_size_is_rejected_at_build_time_naming_the_setting() {
    let env = env(2);
    env.configure(|s| s.job.buffer_size = 0);
    env.from_collection(vec![1u32]).rebalance().collect();
    let err = env.job_graph("bad-buffers").unwrap_err().to_string();
    assert!(err.contains("taskmanager.network.buffer-size"), "{err}");
}
