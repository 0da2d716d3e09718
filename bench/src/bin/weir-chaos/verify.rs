//! Checks the committed output of the sequence job (`weir-chaos-job`) record by record.
//!
//! Invariants: every line of every committed part file (hidden in-progress files are not
//! committed and are skipped) is counted once; a key's sequence number seen zero times is
//! lost, seen `n > 1` times is duplicated `n - 1` times; a line that is no `key,seq` of the
//! job's range, or a violation line the job's state check wrote, is reported, never
//! ignored.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// What the output held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// `key,seq` lines read.
    pub records_checked: u64,
    /// Sequence numbers of the input missing from the output.
    pub lost: u64,
    /// Extra copies of sequence numbers in the output.
    pub duplicated: u64,
    /// Lines the job's state check wrote (a key's sequence number that did not follow the
    /// one in its state).
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

/// Sequence numbers of key `key` among `records` records over `keys` keys.
pub fn records_of_key(records: u64, keys: u64, key: u64) -> u64 {
    (records + keys - 1 - key) / keys
}

/// Checks the committed part files in `dir` against `records` records over `keys` keys.
pub fn check(dir: &Path, records: u64, keys: u64) -> Result<Verdict> {
    let mut seen: Vec<Vec<u32>> = (0..keys)
        .map(|k| vec![0; records_of_key(records, keys, k) as usize])
        .collect();
    let mut v = Verdict::default();
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
            tally(line, &mut seen, &mut v)
                .with_context(|| format!("in {}", entry.path().display()))?;
        }
    }
    for (key, counts) in seen.iter().enumerate() {
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
    Ok(v)
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
        check(dir.path(), records, keys)
    }

    #[test]
    fn an_exact_output_has_nothing_lost_or_duplicated() {
        let v = verdict(&[("part-0-0", "0,1\n1,1\n"), ("part-1-0", "0,2\n")], 3, 2).unwrap();
        assert!(v.exact(), "{v:?}");
        assert_eq!(v.records_checked, 3);
    }

    #[test]
    fn gaps_repeats_and_violations_are_counted_with_their_keys() {
        let files = [
            ("part-0-0", "0,1\n0,1\n1,2\nviolation,1,0,2\n"),
            (".part-0-1.inprogress", "1,1\n"),
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

    #[test]
    fn keys_share_the_records_round_robin() {
        assert_eq!((0..4).map(|k| records_of_key(10, 4, k)).sum::<u64>(), 10);
        assert_eq!(records_of_key(10, 4, 1), 3);
        assert_eq!(records_of_key(10, 4, 3), 2);
    }
}
