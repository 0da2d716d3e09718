//! Storage faults: damage to the job's latest complete checkpoint.
//!
//! Invariants: only a checkpoint whose `_metadata` exists (a complete one) is damaged, one
//! file of it, in a way drawn from the fault's target (truncated to half its length, one
//! byte flipped in the middle, or deleted); what was done is returned so that it can be
//! printed and replayed.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Damages one file of the newest complete checkpoint of `job` under `checkpoints`;
/// returns what it did, or `None` when there is no complete checkpoint.
pub fn damage_latest(checkpoints: &Path, job: &str, target: u64) -> Result<Option<String>> {
    let Some(dir) = latest_complete(&checkpoints.join(job))? else {
        return Ok(None);
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_file())
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    files.sort();
    let n = files.len() as u64;
    let file = &files[(target % n) as usize];
    let what = match (target / n) % 3 {
        0 => {
            let len = std::fs::metadata(file)?.len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(file)?
                .set_len(len / 2)?;
            "truncated"
        }
        1 => {
            let mut bytes = std::fs::read(file)?;
            let middle = bytes.len() / 2;
            if let Some(b) = bytes.get_mut(middle) {
                *b ^= 0x5A;
            }
            std::fs::write(file, bytes)?;
            "corrupted"
        }
        _ => {
            std::fs::remove_file(file)?;
            "deleted"
        }
    };
    Ok(Some(format!("{what} {}", file.display())))
}

/// The `chk-<n>` directory with the highest `n` that holds `_metadata`.
fn latest_complete(job_dir: &Path) -> Result<Option<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(job_dir) else {
        return Ok(None);
    };
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in entries {
        let path = entry?.path();
        let n = path
            .file_name()
            .and_then(|n| n.to_str()?.strip_prefix("chk-")?.parse::<u64>().ok());
        if let Some(n) = n {
            if path.join("_metadata").is_file() && best.as_ref().is_none_or(|(b, _)| n > *b) {
                best = Some((n, path));
            }
        }
    }
    Ok(best.map(|(_, p)| p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(root: &Path, n: u64, complete: bool) -> PathBuf {
        let dir = root.join("job").join(format!("chk-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("state-0"), b"0123456789").unwrap();
        if complete {
            std::fs::write(dir.join("_metadata"), b"meta").unwrap();
        }
        dir
    }

    #[test]
    fn the_newest_complete_checkpoint_is_damaged_as_the_target_says() {
        let root = tempfile::tempdir().unwrap();
        checkpoint(root.path(), 3, true);
        let newest = checkpoint(root.path(), 12, true);
        checkpoint(root.path(), 13, false);
        // Two files (_metadata, state-0): target 1 is state-0, truncated.
        let what = damage_latest(root.path(), "job", 1).unwrap().unwrap();
        assert!(
            what.starts_with("truncated") && what.contains("chk-12"),
            "{what}"
        );
        assert_eq!(std::fs::read(newest.join("state-0")).unwrap(), b"01234");
        // Target 3: state-0 again, a byte flipped.
        damage_latest(root.path(), "job", 3).unwrap().unwrap();
        assert_ne!(std::fs::read(newest.join("state-0")).unwrap(), b"01234");
        // Target 5: deleted.
        let what = damage_latest(root.path(), "job", 5).unwrap().unwrap();
        assert!(what.starts_with("deleted"), "{what}");
        assert!(!newest.join("state-0").exists());
    }

    #[test]
    fn without_a_complete_checkpoint_nothing_is_damaged() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(damage_latest(root.path(), "job", 0).unwrap(), None);
        checkpoint(root.path(), 1, false);
        assert_eq!(damage_latest(root.path(), "job", 0).unwrap(), None);
    }
}
