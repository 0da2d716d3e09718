//! Helpers shared by the CLI tests: locating the example binaries, running them with a
//! bounded wait, reading their part files, and comparing result rows with golden rows.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a job that ends by itself may run before the test kills it. Generous: a job whose
/// source fails at start-up can take the runtime's 30 s gate-lookup timeout to be reported.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(180);

/// Returns the path of the example binary `name`, built by `cargo test` next to the test
/// executable (`<target>/<profile>/deps/<test>-<hash>` → `<target>/<profile>/examples/<name>`).
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("test executable {} is not in <profile>/deps", exe.display()));
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "example binary {} is missing: build it with `cargo test -p weir-examples` (which builds \
         the examples) or `cargo build -p weir-examples --examples`",
        bin.display()
    );
    bin
}

/// What a finished process left behind.
#[derive(Debug)]
pub struct Outcome {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Outcome {
    /// Panics unless the process exited with status 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "expected success, got {}\n{self}",
            self.status
        );
        self
    }

    /// Panics unless the process exited with a non-zero status (and was not killed).
    pub fn assert_failure(&self) -> &Self {
        assert!(
            matches!(self.status.code(), Some(c) if c != 0),
            "expected a non-zero exit code, got {}\n{self}",
            self.status
        );
        self
    }

    /// Panics unless standard output has a line equal to `line` (surrounding spaces ignored).
    pub fn assert_stdout_line(&self, line: &str) -> &Self {
        assert!(
            self.stdout.lines().any(|l| l.trim() == line),
            "stdout has no line {line:?}\n{self}"
        );
        self
    }

    /// Panics unless standard error contains `text`.
    pub fn assert_stderr_contains(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr does not contain {text:?}\n{self}"
        );
        self
    }

    /// Panics unless at least `n` fail points fired (`--fail-randomly`).
    pub fn assert_failures_injected(&self, n: usize) -> &Self {
        let injected = self.stderr.matches("injected failure at reading").count();
        assert!(
            injected >= n,
            "{n} fail points fired, not {injected}: {self}"
        );
        self
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// A running example process. Its standard output arrives line by line; dropping it kills
/// the process, so a failing test never leaves one behind.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    /// The standard output lines received so far.
    pub seen: Vec<String>,
    stdout_open: bool,
    stderr: Option<JoinHandle<String>>,
}

/// Starts `bin` with `args` (standard input closed, the default log filter).
pub fn spawn<S: AsRef<std::ffi::OsStr>>(bin: &Path, args: &[S]) -> Running {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    spawn_command(cmd)
}

/// Starts `cmd` (standard input closed, the default log filter unless `cmd` sets one).
pub fn spawn_command(mut cmd: Command) -> Running {
    let bin = PathBuf::from(cmd.get_program());
    if !cmd.get_envs().any(|(k, v)| k == "RUST_LOG" && v.is_some()) {
        cmd.env_remove("RUST_LOG");
    }
    let mut child = cmd
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    Running {
        child,
        lines,
        seen: Vec::new(),
        stdout_open: true,
        stderr: Some(stderr),
    }
}

/// Runs `bin` with `args` to completion, killing it (and failing the test) after
/// [`JOB_TIMEOUT`].
pub fn run<S: AsRef<std::ffi::OsStr>>(bin: &Path, args: &[S]) -> Outcome {
    spawn(bin, args).finish(JOB_TIMEOUT)
}

impl Running {
    /// Receives standard output lines until `done(lines so far)` holds; panics (the process
    /// is killed on drop) if that takes longer than `timeout` or the output ends first.
    pub fn wait_for_output(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[String]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "timed out waiting for {what}; stdout so far: {:?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.stdout_open = false;
                    let stderr = self.kill_and_stderr();
                    panic!(
                        "stdout ended before {what}; stdout: {:?}\n--- stderr ---\n{stderr}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Returns whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the process and returns its standard error.
    pub fn kill_and_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Waits (at most `timeout`) for the process to exit and for its output to end.
    pub fn finish(&mut self, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => panic!("cannot wait for the process: {e}"),
            }
            // Take output while waiting: the process must never block on a full pipe.
            if self.stdout_open {
                match self.lines.recv_timeout(Duration::from_millis(20)) {
                    Ok(line) => self.seen.push(line),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.stdout_open = false,
                }
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
            if Instant::now() >= deadline {
                let stderr = self.kill_and_stderr();
                panic!(
                    "the process did not exit within {timeout:?}; killed it\n--- stdout ---\n{}\n\
                     --- stderr ---\n{stderr}",
                    self.seen.join("\n")
                );
            }
        };
        // The process has exited, so its output ends soon.
        while self.stdout_open {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => self.stdout_open = false,
                Err(RecvTimeoutError::Timeout) => panic!("stdout did not end after exit"),
            }
        }
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().expect("stderr reader"))
            .unwrap_or_default();
        Outcome {
            status,
            stdout: self.seen.join("\n"),
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Ends a process a failing test left running; a no-op once it exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs example `name` with `args` and `--output` into a fresh directory; returns its
/// result lines, sorted.
pub fn sorted_output_of(name: &str, args: &[String]) -> Vec<String> {
    let out = tempfile::tempdir().unwrap();
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--output", out.path().to_str().unwrap()]);
    run(&example_bin(name), &all).assert_success();
    let mut lines = part_lines(out.path());
    lines.sort();
    lines
}

/// Asserts that `lines` are `expected`, naming `what` and the counts (not megabytes of
/// lines) when they differ.
pub fn assert_same_lines(lines: &[String], expected: &[String], what: &str) {
    if lines == expected {
        return;
    }
    let first = lines.iter().zip(expected).position(|(l, e)| l != e);
    let at = first.unwrap_or(lines.len().min(expected.len()));
    panic!(
        "{what}: {} lines against {} expected; they first differ at line {at}: {:?} against {:?}",
        lines.len(),
        expected.len(),
        lines.get(at),
        expected.get(at)
    );
}

/// Returns the lines of the result files in `dir`, checking the part-file contract: every
/// result file (a name not starting with `.` or `_`) is a plain file named `part-*`.
pub fn part_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list output directory {}: {e}", dir.display()))
    {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        assert!(
            name.starts_with("part-"),
            "result file {name} in {} is not named part-*",
            dir.display()
        );
        assert!(
            entry.file_type().expect("file type").is_file(),
            "{name} in {} is not a plain file",
            dir.display()
        );
        let text = std::fs::read_to_string(entry.path()).expect("a readable part file");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "part file {name} does not end with a newline: {text:?}"
        );
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

/// Returns the names of all entries of `dir`, hidden ones included, sorted.
pub fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Compares CSV result lines with golden lines as sets of rows: rows are sorted by their
/// non-float fields (which must identify a row), those compare exactly, and the fields at
/// `float_cols` compare as `f64` within 1e-9.
pub fn assert_rows_match(what: &str, actual: &[String], golden: &[&str], float_cols: &[usize]) {
    let parse = |lines: Vec<&str>| -> Vec<Vec<String>> {
        let mut rows: Vec<Vec<String>> = lines
            .into_iter()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        let key = |r: &Vec<String>| -> Vec<String> {
            r.iter()
                .enumerate()
                .filter(|(i, _)| !float_cols.contains(i))
                .map(|(_, f)| f.clone())
                .collect()
        };
        rows.sort_by_key(key);
        rows
    };
    let got = parse(actual.iter().map(String::as_str).collect());
    let want = parse(golden.to_vec());
    let show = |rows: &[Vec<String>]| {
        rows.iter()
            .map(|r| format!("  {}", r.join(",")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let report = || {
        format!(
            "{what}: output differs from the golden rows\n--- got ({} rows) ---\n{}\n--- want ({} rows) ---\n{}",
            got.len(),
            show(&got),
            want.len(),
            show(&want)
        )
    };
    assert_eq!(got.len(), want.len(), "{}", report());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.len(), w.len(), "{}", report());
        for (i, (gf, wf)) in g.iter().zip(w).enumerate() {
            if float_cols.contains(&i) {
                let gv: f64 = gf
                    .parse()
                    .unwrap_or_else(|_| panic!("field {i} {gf:?} is not a number\n{}", report()));
                let wv: f64 = wf.parse().expect("golden float");
                assert!((gv - wv).abs() <= 1e-9, "{}", report());
            } else {
                assert_eq!(gf, wf, "{}", report());
            }
        }
    }
}

/// Returns whether `text` names line `n` as `line=N`, `line N` or `line: N`.
pub fn mentions_line(text: &str, n: u64) -> bool {
    let n = n.to_string();
    text.match_indices("line").any(|(i, _)| {
        let rest = text[i + 4..].trim_start_matches(['=', ':', ' ']);
        rest.starts_with(&n) && !rest[n.len()..].starts_with(|c: char| c.is_ascii_digit())
    })
}

/// Parses `word,count` lines into per-word count sequences, in output order.
pub fn counts_by_word(lines: &[String]) -> BTreeMap<String, Vec<u64>> {
    let mut by_word: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in lines {
        let (word, count) = line
            .rsplit_once(',')
            .unwrap_or_else(|| panic!("{line:?} is not a word,count line"));
        let count = count
            .parse()
            .unwrap_or_else(|_| panic!("{line:?}: the count is not a number"));
        by_word.entry(word.to_string()).or_default().push(count);
    }
    by_word
}

/// Runs the sensor example `bin` with `args` then `extra` and its window, alert and top-ten
/// outputs in `dir/<tag>-windows`, `-alerts` and `-top`; returns the outcome and each
/// output's lines, sorted.
pub fn run_sensor_outputs(
    bin: &Path,
    dir: &Path,
    tag: &str,
    args: &[&str],
    extra: &[String],
) -> (Outcome, [Vec<String>; 3]) {
    run_sensor_outputs_with_env(bin, dir, tag, args, extra, &[])
}

/// As [`run_sensor_outputs`], with the environment variables `env` set for the process.
pub fn run_sensor_outputs_with_env(
    bin: &Path,
    dir: &Path,
    tag: &str,
    args: &[&str],
    extra: &[String],
    env: &[(String, String)],
) -> (Outcome, [Vec<String>; 3]) {
    let out = |kind: &str| dir.join(format!("{tag}-{kind}"));
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend_from_slice(extra);
    for (flag, kind) in [
        ("--output", "windows"),
        ("--alerts-output", "alerts"),
        ("--top-output", "top"),
    ] {
        all.push(flag.into());
        all.push(out(kind).to_str().expect("temp paths are UTF-8").into());
    }
    let mut cmd = Command::new(bin);
    cmd.args(&all).envs(env.iter().map(|(k, v)| (k, v)));
    let outcome = spawn_command(cmd).finish(JOB_TIMEOUT);
    let lines = ["windows", "alerts", "top"].map(|k| {
        let mut l = if out(k).exists() {
            part_lines(&out(k))
        } else {
            Vec::new()
        };
        l.sort();
        l
    });
    (outcome, lines)
}

/// Checks that the window results, alerts and top ten `got` equal `want`, those of the
/// `reference` run (such as "failure-free"), line for line.
pub fn assert_same_outputs(got: &[Vec<String>; 3], want: &[Vec<String>; 3], reference: &str) {
    for (kind, (g, w)) in ["windows", "alerts", "top ten"]
        .iter()
        .zip(got.iter().zip(want))
    {
        assert_eq!(
            g.len(),
            w.len(),
            "{kind}: as many lines as the {reference} run"
        );
        assert!(g == w, "{kind}: the lines differ from the {reference} run");
    }
}
