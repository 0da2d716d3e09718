//! The built-in sources (generator, CSV, text file, socket) and the file sink, in real jobs
//! on the local mini-cluster with parallelism 2 and two TaskManagers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weir_api::sink::{SinkContext, SinkFunction, SinkWriter};
use weir_api::source::SocketTextSource;
use weir_api::{
    ApiError, BadRecordPolicy, CsvSource, FileSink, GeneratorSource, StreamExecutionEnvironment,
    Timestamp,
};
use weir_runtime::TaskError;

fn env() -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_local_taskmanagers(2);
    env
}

/// What one sink subtask saw: its records in arrival order, and when the first and the last
/// arrived.
struct SubtaskLog<T> {
    values: Vec<T>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl<T> Default for SubtaskLog<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            first: None,
            last: None,
        }
    }
}

type Logs<T> = Arc<Mutex<BTreeMap<u16, SubtaskLog<T>>>>;

/// A sink that keeps every subtask's records apart, in arrival order.
struct PerSubtaskSink<T> {
    logs: Logs<T>,
}

impl<T> Clone for PerSubtaskSink<T> {
    fn clone(&self) -> Self {
        Self {
            logs: self.logs.clone(),
        }
    }
}

impl<T> PerSubtaskSink<T> {
    fn new() -> Self {
        Self {
            logs: Arc::default(),
        }
    }

    /// Returns the records of `subtask`, in arrival order.
    fn values(&self, subtask: u16) -> Vec<T>
    where
        T: Clone,
    {
        self.logs.lock().unwrap()[&subtask].values.clone()
    }
}

impl<T: Send + 'static> SinkFunction<T> for PerSubtaskSink<T> {
    fn create_writer(&self, ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError> {
        Ok(Box::new(PerSubtaskWriter {
            logs: self.logs.clone(),
            subtask: ctx.subtask,
            log: SubtaskLog::default(),
        }))
    }
}

struct PerSubtaskWriter<T> {
    logs: Logs<T>,
    subtask: u16,
    log: SubtaskLog<T>,
}

impl<T> SinkWriter<T> for PerSubtaskWriter<T> {
    fn write(&mut self, value: T, _ts: Timestamp) -> Result<(), TaskError> {
        let now = Instant::now();
        self.log.first.get_or_insert(now);
        self.log.last = Some(now);
        self.log.values.push(value);
        Ok(())
    }
    fn finish(&mut self) -> Result<(), TaskError> {
        let log = std::mem::take(&mut self.log);
        self.logs.lock().unwrap().insert(self.subtask, log);
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    id: u64,
    name: String,
    score: f64,
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_bounded_generator_emits_every_sequence_number_once_with_contiguous_ranges_per_subtask() {
    let env = env();
    let sink = PerSubtaskSink::<u64>::new();
    env.from_generator(GeneratorSource::new(Some(10_001), |seq| seq * 2))
        .add_sink(sink.clone());
    env.execute("generator").unwrap();

    let logs = sink.logs.lock().unwrap();
    assert_eq!(logs.len(), 2);
    // Subtask i of 2 reads [i*n/2, (i+1)*n/2) in order (records are seq * 2).
    assert_eq!(
        logs[&0].values,
        (0..5_000).map(|s| s * 2).collect::<Vec<_>>()
    );
    assert_eq!(
        logs[&1].values,
        (5_000..10_001).map(|s| s * 2).collect::<Vec<_>>()
    );
    let all: Vec<u64> = logs
        .values()
        .flat_map(|l| l.values.iter().copied())
        .collect();
    assert_eq!(all.len(), 10_001);
    assert_eq!(all.iter().sum::<u64>(), 2 * (10_000 * 10_001 / 2));
}

#[test]
fn from_sequence_is_inclusive_and_seeded_generators_see_their_seed() {
    let env = env();
    let seq = env.from_sequence(1, 100).collect();
    let seeded = env
        .from_generator(
            GeneratorSource::seeded(Some(4), 0, |seq, seed| seq + seed).with_seed(1_000),
        )
        .collect();
    env.execute("sequence").unwrap();
    let mut got = seq.take();
    got.sort();
    assert_eq!(got, (1..=100).collect::<Vec<u64>>());
    let mut got = seeded.take();
    got.sort();
    assert_eq!(got, vec![1_000, 1_001, 1_002, 1_003]);
}

#[test]
fn a_rate_limited_generator_takes_at_least_count_divided_by_rate() {
    let env = env();
    let sink = PerSubtaskSink::<u64>::new();
    env.from_generator(GeneratorSource::new(Some(2_000), |seq| seq).with_rate_limit(20_000))
        .add_sink(sink.clone());
    env.execute("rate-limited").unwrap();

    let logs = sink.logs.lock().unwrap();
    let first = logs.values().filter_map(|l| l.first).min().unwrap();
    let last = logs.values().filter_map(|l| l.last).max().unwrap();
    let count: usize = logs.values().map(|l| l.values.len()).sum();
    assert_eq!(count, 2_000);
    // 2,000 records at 20,000 records/s need ~100 ms; only a lower bound is asserted.
    let elapsed = last - first;
    assert!(
        elapsed >= Duration::from_millis(80),
        "took only {elapsed:?}"
    );
}

#[test]
fn csv_rows_with_a_header_become_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "rows.csv",
        "id,name,score\n1,ann,1.5\n2,bob,2.0\n3,cy,-3\n",
    );
    let env = env();
    let out = env.read_csv::<Row>(&path).collect();
    env.execute("csv").unwrap();
    let mut got = out.take();
    got.sort_by_key(|r| r.id);
    let row = |id, name: &str, score| Row {
        id,
        name: name.into(),
        score,
    };
    assert_eq!(
        got,
        vec![row(1, "ann", 1.5), row(2, "bob", 2.0), row(3, "cy", -3.0)]
    );
}

#[test]
fn csv_without_a_header_maps_columns_by_position_with_a_custom_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "rows.tsv", "7\tzed\t0.25\n");
    let env = env();
    let out = env
        .read_csv_with(
            CsvSource::<Row>::new(&path)
                .has_headers(false)
                .with_delimiter(b'\t'),
        )
        .collect();
    env.execute("tsv").unwrap();
    assert_eq!(
        out.take(),
        vec![Row {
            id: 7,
            name: "zed".into(),
            score: 0.25
        }]
    );
}

#[test]
fn malformed_csv_rows_are_skipped_and_counted_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let text = "id,name,score\n1,ann,1.5\nnot-a-number,bob,2\n3,cy\n4,dee,4.5\n";
    let path = write_file(dir.path(), "dirty.csv", text);
    let source = CsvSource::<Row>::new(&path);
    assert_eq!(source.bad_record_policy(), BadRecordPolicy::Skip);
    let skipped = source.skipped_counter();
    let env = env();
    let out = env.read_csv_with(source).collect();
    env.execute("dirty-csv").unwrap();
    let mut ids: Vec<u64> = out.take().into_iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 4]);
    assert_eq!(skipped.load(Ordering::Relaxed), 2);
}

#[test]
fn a_malformed_csv_row_under_the_fail_policy_fails_the_job_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "strict.csv",
        "id,name,score\n1,ann,1.5\n2,bob,oops\n",
    );
    let env = env();
    let _ = env
        .read_csv_with(CsvSource::<Row>::new(&path).on_bad_record(BadRecordPolicy::Fail))
        .collect();
    let err = env.execute("strict-csv").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ApiError::JobFailed { .. }), "{msg}");
    assert!(msg.contains(&path), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("score") || msg.contains("float"), "{msg}");
}

#[test]
fn a_missing_input_file_fails_the_job_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("absent.csv").display().to_string();
    let env = env();
    let _ = env.read_csv::<Row>(&csv).collect();
    let msg = env.execute("missing-csv").unwrap_err().to_string();
    assert!(msg.contains(&csv), "{msg}");

    let text = dir.path().join("absent.txt").display().to_string();
    let env = self::env();
    let _ = env.read_text_file(&text).collect();
    let msg = env.execute("missing-text").unwrap_err().to_string();
    assert!(msg.contains(&text), "{msg}");
}

#[test]
fn a_text_file_becomes_one_record_per_line_without_terminators() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "in.txt",
        "alpha\r\nbeta\n\ngamma delta\nlast-without-newline",
    );
    let env = env();
    let sink = PerSubtaskSink::<String>::new();
    env.read_text_file(&path)
        .add_sink(sink.clone())
        .set_parallelism(1);
    env.execute("text").unwrap();
    // One reader, forwarded to one sink subtask: file order is kept.
    assert_eq!(
        sink.values(0),
        vec!["alpha", "beta", "", "gamma delta", "last-without-newline"]
    );
}

#[test]
fn a_socket_stream_emits_every_line_and_ends_when_the_server_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"one\r\ntwo\nthr").unwrap();
        conn.flush().unwrap();
        // A pause longer than the read timeout, in the middle of a line.
        std::thread::sleep(Duration::from_millis(150));
        conn.write_all(b"ee\n").unwrap();
        for i in 0..1_000 {
            writeln!(conn, "line {i}").unwrap();
        }
        conn.write_all(b"tail").unwrap();
        // Dropping the connection closes it.
    });
    let env = env();
    let stream = env.socket_text_stream("127.0.0.1", port);
    assert_eq!(stream.parallelism(), 1);
    let sink = PerSubtaskSink::<String>::new();
    stream.add_sink(sink.clone()).set_parallelism(1);
    env.execute("socket").unwrap();
    server.join().unwrap();
    let mut want: Vec<String> = vec!["one".into(), "two".into(), "three".into()];
    want.extend((0..1_000).map(|i| format!("line {i}")));
    want.push("tail".into());
    assert_eq!(sink.values(0), want);
}

#[test]
fn a_refused_socket_connection_fails_the_job_naming_host_and_port() {
    // Port 1 (tcpmux) on loopback: nothing listens there. A port freed by this test could be
    // taken at once by a server of a test running beside it.
    let port = 1;
    let env = env();
    let _ = env
        .add_socket_text_stream(
            SocketTextSource::new("127.0.0.1", port).with_connect_timeout(Duration::from_secs(2)),
        )
        .collect();
    let msg = env.execute("refused").unwrap_err().to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
}

/// Returns the names of the files in `dir`.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Returns every line of the visible `part-*` files in `dir`, sorted.
fn part_lines(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = file_names(dir)
        .iter()
        .filter(|n| n.starts_with("part-"))
        .flat_map(|n| {
            std::fs::read_to_string(dir.join(n))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn the_file_sink_writes_rolling_part_files_whose_lines_are_the_input_and_leaves_nothing_in_progress(
) {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out").join("nested");
    let env = env();
    env.from_sequence(0, 9_999)
        .sink_to_files(FileSink::display(&out_dir).with_max_part_size(4_096));
    env.execute("file-sink").unwrap();

    let names = file_names(&out_dir);
    assert!(names.iter().all(|n| n.starts_with("part-")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("inprogress")), "{names:?}");
    // Both subtasks wrote, and each rolled over to several parts.
    for subtask in 0..2 {
        let parts = names
            .iter()
            .filter(|n| n.starts_with(&format!("part-{subtask}-")))
            .count();
        assert!(parts > 1, "subtask {subtask}: {names:?}");
    }
    for n in &names {
        let size = std::fs::metadata(out_dir.join(n)).unwrap().len();
        assert!(size <= 4_096 + 5, "{n} has {size} bytes");
    }
    let mut want: Vec<String> = (0..10_000u64).map(|i| i.to_string()).collect();
    want.sort();
    assert_eq!(part_lines(&out_dir), want);
}

#[test]
fn the_file_sink_formats_with_an_appending_formatter_and_write_as_text_uses_display() {
    let dir = tempfile::tempdir().unwrap();
    let env = env();
    let rows = env.from_collection((0..100u32).map(|i| (i, format!("n{i}"))).collect());
    rows.sink_to_files(FileSink::new(
        dir.path().join("pairs"),
        |(k, v): &(u32, String), line: &mut String| {
            line.push_str(&k.to_string());
            line.push(',');
            line.push_str(v);
        },
    ));
    env.from_collection(vec![1.5f64, 2.5])
        .write_as_text(dir.path().join("floats"));
    env.execute("formatters").unwrap();

    let mut want: Vec<String> = (0..100).map(|i| format!("{i},n{i}")).collect();
    want.sort();
    assert_eq!(part_lines(&dir.path().join("pairs")), want);
    assert_eq!(part_lines(&dir.path().join("floats")), vec!["1.5", "2.5"]);
}
