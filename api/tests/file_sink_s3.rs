//! The file sink on S3 (`s3://bucket/dir`, a real S3-compatible server that checks
//! signatures, started by `scripts/s3.sh`): parts are multipart uploads, a part larger than
//! an upload part goes up in several, every record is in exactly one visible part (also
//! when a savepoint is restored into another directory: the earlier parts stay where they
//! were written), and a missing bucket fails the job naming it. (Exactly-once through failures on S3:
//! `examples/tests/sensor_pipeline_s3.rs`.)

#[path = "../../runtime/tests/s3/mod.rs"]
mod s3;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_api::sink::FileSink;
use weir_api::{GeneratorSource, SavepointRestoreSettings, StreamExecutionEnvironment};
use weir_runtime::checkpoint::PART_SIZE;

/// An environment whose S3 settings lead to this binary's server.
fn env() -> StreamExecutionEnvironment {
    let s = s3::server();
    let properties = [
        format!("s3.endpoint={}", s.endpoint),
        format!("s3.region={}", s.region),
        format!("s3.access-key={}", s.access_key),
        format!("s3.secret-key={}", s.secret_key),
    ];
    let env = StreamExecutionEnvironment::with_properties(&properties).unwrap();
    env.set_local_taskmanagers(1);
    env
}

const LINE: usize = 200;

/// Record `i` as a line of `LINE - 1` characters plus the newline.
fn line(i: &u64, out: &mut String) {
    let _ = write!(out, "{i:>12}");
    out.extend(std::iter::repeat_n('x', LINE - 13));
}

#[test]
fn without_checkpoints_parts_are_completed_and_a_large_part_goes_up_in_several() {
    let records = (2 * PART_SIZE + PART_SIZE / 2) as u64 / LINE as u64;
    let env = env();
    env.set_parallelism(1);
    env.from_generator(GeneratorSource::new(Some(records), |i| i))
        .sink_to_files(
            FileSink::new("s3://weir/plain", line).with_max_part_size(2 * PART_SIZE as u64),
        );
    env.execute("plain").unwrap();

    let server = s3::server();
    let objects = server.objects("plain");
    let names: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["plain/part-0-0", "plain/part-0-1"],
        "two parts, nothing else"
    );
    let e_tag = &objects[0].1;
    assert!(
        e_tag.trim_matches('"').ends_with("-2"),
        "16 MiB in two upload parts: {e_tag}"
    );
    let lines = server.part_lines("plain");
    assert_eq!(lines.len() as u64, records);
    let mut expected: Vec<String> = (0..records)
        .map(|i| {
            let mut s = String::new();
            line(&i, &mut s);
            s
        })
        .collect();
    expected.sort();
    assert!(lines == expected, "every record exactly once");
}

#[test]
fn a_missing_bucket_fails_the_job_naming_it() {
    let env = env();
    env.set_parallelism(1);
    env.from_collection(vec![1u64, 2, 3])
        .sink_to_files(FileSink::new("s3://no-such-bucket/out", line));
    let e = env.execute("missing").unwrap_err().to_string();
    assert!(e.contains("s3://no-such-bucket/out"), "{e}");
    assert!(e.contains("bucket 'no-such-bucket' does not exist"), "{e}");
    assert!(!e.contains(&s3::server().secret_key), "{e}");
}

/// Counts the records that passed, to stop the job part-way.
fn counted(seen: &Arc<AtomicU64>) -> impl Fn(u64) -> u64 + Send + Sync + Clone + 'static {
    let seen = seen.clone();
    move |i| {
        seen.fetch_add(1, Ordering::Relaxed);
        i
    }
}

fn numbers(env: &StreamExecutionEnvironment, out: &str, seen: &Arc<AtomicU64>, rate: u64) {
    env.from_generator(GeneratorSource::new(Some(NUMBERS), |i| i).with_rate_limit(rate))
        .uid("numbers")
        .map(counted(seen))
        .uid("tap")
        .sink_to_files(FileSink::new(out, |i: &u64, l: &mut String| {
            let _ = write!(l, "{i}");
        }))
        .uid("files");
}

const NUMBERS: u64 = 20_000;

#[test]
fn a_savepoint_restored_into_another_s3_directory_keeps_earlier_parts_where_they_were_written() {
    let chk = tempfile::tempdir().unwrap();
    let checkpoints = format!("file://{}", chk.path().display());
    let seen = Arc::new(AtomicU64::new(0));
    let first = env();
    first.set_parallelism(2);
    first.enable_checkpointing(Duration::from_millis(100), &checkpoints);
    numbers(&first, "s3://weir/moved/first", &seen, 10_000);
    let client = first.execute_async("numbers").unwrap();
    let wait_for = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "the job did not get going");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(2_000);
    let savepoint = client
        .trigger_savepoint(Some(&format!("{checkpoints}/savepoints")))
        .unwrap();
    // Later checkpoints complete more parts under `first` before the job is cancelled.
    wait_for(6_000);
    client.cancel().unwrap();
    let _ = client.wait();

    let env = env();
    env.set_parallelism(3);
    env.enable_checkpointing(Duration::from_millis(100), &checkpoints);
    env.restore_from_savepoint(SavepointRestoreSettings::new(&savepoint));
    numbers(
        &env,
        "s3://weir/moved/second",
        &Arc::new(AtomicU64::new(0)),
        0,
    );
    env.execute("numbers").unwrap();

    let server = s3::server();
    let (first, second) = (
        server.part_lines("moved/first"),
        server.part_lines("moved/second"),
    );
    assert!(
        !first.is_empty() && !second.is_empty(),
        "both directories hold output"
    );
    let mut all: Vec<u64> = first
        .iter()
        .chain(&second)
        .map(|l| l.parse().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..NUMBERS).collect::<Vec<_>>(),
        "every number exactly once"
    );
}

#[test]
fn a_restart_without_state_aborts_the_uploads_an_earlier_attempt_left_open() {
    use weir_api::sink::{SinkContext, SinkFunction};
    let _ = env(); // installs the S3 settings
    let sink = FileSink::new("s3://weir/restarted", line);
    let ctx = SinkContext {
        name: "files".into(),
        subtask: 0,
        parallelism: 1,
        checkpointing: true,
        job: weir_runtime::JobId(7),
        uid: "files".into(),
        side_outputs: Default::default(),
    };
    let server = s3::server();
    let markers = || -> Vec<String> {
        server
            .list("restarted")
            .into_iter()
            .filter(|k| k.ends_with(".upload"))
            .collect()
    };
    // An attempt that fails with a part open: its upload and marker stay behind.
    let mut first = sink.create_writer(&ctx).unwrap();
    first.start_without_state().unwrap();
    first.write(1, 0).unwrap();
    drop(first);
    assert_eq!(markers(), ["restarted/.part-0-0.upload"]);
    // The next attempt, before any checkpoint completed, starts without state.
    let mut second = sink.create_writer(&ctx).unwrap();
    second.start_without_state().unwrap();
    assert!(markers().is_empty(), "{:?}", markers());
    second.write(2, 0).unwrap();
    assert!(second.pre_commit(1).unwrap().is_some());
    second.commit(1).unwrap();
    assert!(markers().is_empty(), "{:?}", markers());
    assert_eq!(server.part_lines("restarted").len(), 1);
}
