//! Checks the committed output of the sequence job (`weir-chaos-job`) record by record
//! and window by window, wherever the job wrote it: part files, a PostgreSQL table, a
//! Kafka topic.
//!
//! Invariants: every line of every committed part file (hidden in-progress files are not
//! committed and are skipped), row of the table and committed record of the topic is
//! counted once; a key's sequence number seen zero times is
//! lost, seen `n > 1` times is duplicated `n - 1` times, and so is a window's line; a
//! window line whose count or sum differs from the failure-free one is a violation; a line
//! that is no `key,seq` or window of the job's range, or a violation line the job's state
//! check wrote, is reported, never ignored.

use crate::connectors::Connectors;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use weir_bench::chaos_job::{expected_window, records_of_key, window_line, windows_of, WINDOW};

/// What the output held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// `key,seq` lines read.
    pub records_checked: u64,
    /// Window lines read.
    pub windows_checked: u64,
    /// Sequence numbers of the input, and windows, missing from the output.
    pub lost: u64,
    /// Extra copies of sequence numbers, and of windows, in the output.
    pub duplicated: u64,
    /// Lines the job's state check wrote (a key's sequence number that did not follow the
    /// one in its state), and windows whose count or sum is not the failure-free one.
    pub violations: u64,
    /// The first few problems, with their keys and values.
    pub examples: Vec<String>,
}

impl Verdict {
    /// Whether nothing was lost, duplicated or out of order.
    pub fn exact(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.violations == 0
    }

    fn note(&mut self, problem: String) {
        if self.examples.len() < 10 {
            self.examples.push(problem);
        }
    }
}

/// Checks the job's committed output against `records` records over `keys` keys: the
/// part files in `dir` (unless the job wrote everything to servers) and the lines
/// committed to the `connectors`' servers.
pub fn check(dir: &Path, connectors: &Connectors, records: u64, keys: u64) -> Result<Verdict> {
    let mut tally = Tally::new(records, keys);
    if !connectors.take_all_output() {
        tally.files(dir)?;
    }
    connectors.committed_lines(|line| tally.line(line))?;
    Ok(tally.finish())
}

/// How often each sequence number and window was seen so far.
struct Tally {
    records: u64,
    keys: u64,
    seen: Vec<Vec<u32>>,
    windows: HashMap<(u64, u64), u32>,
    v: Verdict,
}

impl Tally {
    fn new(records: u64, keys: u64) -> Self {
        let seen = (0..keys)
            .map(|k| vec![0; records_of_key(records, keys, k) as usize])
            .collect();
        Self {
            records,
            keys,
            seen,
            windows: HashMap::new(),
            v: Verdict::default(),
        }
    }

    /// Counts the lines of every committed part file in `dir`.
    fn files(&mut self, dir: &Path) -> Result<()> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the job's output {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let text = std::fs::read_to_string(entry.path())
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            for line in text.lines() {
                self.line(line)
                    .with_context(|| format!("in {}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    /// Counts one committed line.
    fn line(&mut self, line: &str) -> Result<()> {
        let scope = (self.records, self.keys);
        match line.strip_prefix("window,") {
            Some(window) => tally_window(window, scope, &mut self.windows, &mut self.v),
            None => tally(line, &mut self.seen, &mut self.v),
        }
    }

    /// The verdict: what was seen against what the input holds.
    fn finish(mut self) -> Verdict {
        let v = &mut self.v;
        count_windows(&self.windows, (self.records, self.keys), v);
        for (key, counts) in self.seen.iter().enumerate() {
            for (i, &n) in counts.iter().enumerate() {
                match n {
                    0 => {
                        v.lost += 1;
                        v.note(format!("key {key}: seq {} lost", i + 1));
                    }
                    1 => {}
                    n => {
                        v.duplicated += u64::from(n - 1);
                        v.note(format!("key {key}: seq {} written {n} times", i + 1));
                    }
                }
            }
        }
        self.v
    }
}

/// Counts window line `window,<rest>` in `windows` (by key and start) if its count and
/// sum are the failure-free ones, as a violation if not.
fn tally_window(
    rest: &str,
    (records, keys): (u64, u64),
    windows: &mut HashMap<(u64, u64), u32>,
    v: &mut Verdict,
) -> Result<()> {
    let fields: Option<Vec<u64>> = rest.split(',').map(|f| f.parse().ok()).collect();
    let four: Option<[u64; 4]> = fields.as_deref().and_then(|f| f.try_into().ok());
    let Some([key, start, count, sum]) = four else {
        bail!("malformed output line \"window,{rest}\": expected window,key,start,count,sum");
    };
    let expected = (key < keys)
        .then(|| expected_window(records_of_key(records, keys, key), start))
        .flatten();
    let Some(expected) = expected else {
        bail!("output line \"window,{rest}\" is outside the job's keys and windows");
    };
    v.windows_checked += 1;
    if expected != (count, sum) {
        v.violations += 1;
        let want = window_line(key, start, expected.0, expected.1);
        v.note(format!(
            "window: \"window,{rest}\", failure-free \"{want}\""
        ));
        return Ok(());
    }
    *windows.entry((key, start)).or_default() += 1;
    Ok(())
}

/// Adds the windows of every key missing from `windows` (or there more than once) to
/// the lost (duplicated) ones.
fn count_windows(windows: &HashMap<(u64, u64), u32>, (records, keys): (u64, u64), v: &mut Verdict) {
    for key in 0..keys {
        for w in 0..windows_of(records_of_key(records, keys, key)) {
            match windows.get(&(key, w * WINDOW)).copied().unwrap_or(0) {
                0 => {
                    v.lost += 1;
                    v.note(format!("key {key}: window {} lost", w * WINDOW));
                }
                1 => {}
                n => {
                    v.duplicated += u64::from(n - 1);
                    v.note(format!(
                        "key {key}: window {} written {n} times",
                        w * WINDOW
                    ));
                }
            }
        }
    }
}

fn tally(line: &str, seen: &mut [Vec<u32>], v: &mut Verdict) -> Result<()> {
    if line.starts_with("violation,") {
        v.violations += 1;
        v.note(format!("state check: {line}"));
        return Ok(());
    }
    let parsed = line
        .split_once(',')
        .and_then(|(k, s)| Some((k.parse::<usize>().ok()?, s.parse::<usize>().ok()?)));
    let Some((key, seq)) = parsed else {
        bail!("malformed output line {line:?}: expected key,seq");
    };
    match seen
        .get_mut(key)
        .and_then(|c| c.get_mut(seq.wrapping_sub(1)))
    {
        Some(n) => *n += 1,
        None => bail!("output line {line:?} is outside the job's keys and sequence numbers"),
    }
    v.records_checked += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(files: &[(&str, &str)], records: u64, keys: u64) -> Result<Verdict> {
        let dir = tempfile::tempdir()?;
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text)?;
        }
        let mut tally = Tally::new(records, keys);
        tally.files(dir.path())?;
        Ok(tally.finish())
    }

    /// The window lines of an exact run over `records` records and `keys` keys.
    fn windows(records: u64, keys: u64) -> String {
        let mut out = String::new();
        for key in 0..keys {
            let n = records_of_key(records, keys, key);
            for start in (0..windows_of(n)).map(|w| w * WINDOW) {
                let (count, sum) = expected_window(n, start).unwrap();
                out.push_str(&window_line(key, start, count, sum));
                out.push('\n');
            }
        }
        out
    }

    #[test]
    fn an_exact_output_has_nothing_lost_or_duplicated() {
        let files = [
            ("part-0-0", "0,1\n1,1\n"),
            ("part-1-0", "0,2\n"),
            ("part-1-1", &windows(3, 2)),
        ];
        let v = verdict(&files, 3, 2).unwrap();
        assert!(v.exact(), "{v:?}");
        assert_eq!((v.records_checked, v.windows_checked), (3, 2));
    }

    #[test]
    fn windows_lost_repeated_or_different_from_the_failure_free_run_are_counted() {
        let records = 2 * (WINDOW + 10);
        let sequences: String = (0..records)
            .map(|i| format!("{},{}\n", i % 2, i / 2 + 1))
            .collect();
        let exact = windows(records, 2);
        let mut lines: Vec<&str> = exact.lines().collect();
        assert_eq!(lines.len(), 4, "two windows per key");
        lines.remove(0);
        lines.push(lines[0]);
        let wrong = lines[1].replace(",99,", ",98,");
        assert_ne!(wrong, lines[1]);
        lines[1] = &wrong;
        let files = [
            ("part-0-0", sequences.as_str()),
            ("part-0-1", &lines.join("\n")),
        ];
        let v = verdict(&files, records, 2).unwrap();
        // The wrong window counts as lost, too: its failure-free line is not there.
        assert_eq!((v.lost, v.duplicated, v.violations), (2, 1, 1), "{v:?}");
        assert!(
            v.examples.iter().any(|e| e.contains("window 0 lost")),
            "{v:?}"
        );
        assert!(
            v.examples.iter().any(|e| e.contains("failure-free")),
            "{v:?}"
        );
        let e = verdict(&[("part-0-0", "window,0,50,1,1\n")], records, 2).unwrap_err();
        assert!(format!("{e:#}").contains("window,0,50,1,1"), "{e:#}");
        for malformed in ["window,0,0,99,4950,junk", "window,0,0,99"] {
            let e = verdict(&[("part-0-0", &format!("{malformed}\n"))], records, 2).unwrap_err();
            assert!(format!("{e:#}").contains("malformed"), "{malformed}: {e:#}");
        }
    }

    #[test]
    fn gaps_repeats_and_violations_are_counted_with_their_keys() {
        let files = [
            ("part-0-0", "0,1\n0,1\n1,2\nviolation,1,0,2\n"),
            (".part-0-1.inprogress", "1,1\n"),
            ("part-1-0", &windows(4, 2)),
        ];
        let v = verdict(&files, 4, 2).unwrap();
        assert_eq!((v.lost, v.duplicated, v.violations), (2, 1, 1), "{v:?}");
        assert!(v.examples.iter().any(|e| e == "key 0: seq 2 lost"), "{v:?}");
        assert!(v.examples.iter().any(|e| e == "key 1: seq 1 lost"), "{v:?}");
    }

    #[test]
    fn a_malformed_or_foreign_line_is_an_error_naming_it() {
        let e = verdict(&[("part-0-0", "0;1\n")], 2, 2).unwrap_err();
        assert!(format!("{e:#}").contains("\"0;1\""), "{e:#}");
        let e = verdict(&[("part-0-0", "5,1\n")], 2, 2).unwrap_err();
        assert!(format!("{e:#}").contains("\"5,1\""), "{e:#}");
    }
}
