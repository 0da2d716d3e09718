//! Storage faults: damage to the job's latest complete checkpoint, and checkpoint storage
//! that fills up.
//!
//! Invariants: only a checkpoint whose `_metadata` exists (a complete one) is damaged, one
//! file of it, in a way drawn from the fault's target (truncated to half its length, one
//! byte flipped in the middle, or deleted); what was done is returned so that it can be
//! printed and replayed. A full storage is a volume of its own (a `tmpfs` here, or the
//! loop device's ext4 of `slow_storage.rs` when the run also slows storage), filled by a
//! ballast file that is removed after the fault, and unmounted when its guard drops.

use anyhow::{bail, Context, Result};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A `tmpfs` mounted for the run's checkpoints, unmounted when dropped.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a `tmpfs` of `mib` MiB on `path` (created if missing).
    pub fn mount(path: &Path, mib: u64) -> Result<Self> {
        std::fs::create_dir_all(path)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .output()
            .context("cannot run mount")?;
        if !out.status.success() {
            bail!(
                "cannot mount a tmpfs on {} for the full-storage faults (they need root): {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

impl Tmpfs {
    /// Copies what the tmpfs holds into `dest` (which goes with the run's directory); a
    /// failure is reported, not fatal.
    pub fn copy_to(&self, dest: &Path) {
        crate::system::copy_kept(&self.path, dest);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Workers exit shortly after their TaskManagers and may still hold files open:
        // retry for a while, then detach the mount lazily (freed once they are gone).
        for _ in 0..50 {
            let out = Command::new("umount").arg(&self.path).output();
            if out.is_ok_and(|o| o.status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let lazy = Command::new("umount").arg("-l").arg(&self.path).output();
        if !lazy.is_ok_and(|o| o.status.success()) {
            eprintln!(
                "weir-chaos: cannot unmount the tmpfs on {}",
                self.path.display()
            );
        }
    }
}

/// Fills the file system of `dir` with a ballast file until no byte is left and keeps it
/// full for `hold` (space that others free meanwhile is taken too), then removes the
/// ballast.
pub fn fill_for(dir: &Path, hold: Duration) -> Result<()> {
    let ballast = dir.join("ballast");
    let mut file = std::fs::File::create(&ballast)
        .with_context(|| format!("cannot create {}", ballast.display()))?;
    let zeros = vec![0u8; 1 << 20];
    let until = Instant::now() + hold;
    let mut chunk = zeros.len();
    loop {
        match file.write_all(&zeros[..chunk]).and_then(|()| file.flush()) {
            Ok(()) => continue,
            Err(e) if e.kind() == ErrorKind::StorageFull && chunk > 512 => chunk /= 2,
            Err(e) if e.kind() == ErrorKind::StorageFull => {
                // Full: top up every few milliseconds until the hold is over.
                if Instant::now() >= until {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot fill {}", dir.display())),
        }
    }
    drop(file);
    std::fs::remove_file(&ballast).with_context(|| format!("cannot remove {}", ballast.display()))
}

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
    let damage = || -> std::io::Result<&str> {
        Ok(match (target / n) % 3 {
            0 => {
                let len = std::fs::metadata(file)?.len();
                let f = std::fs::OpenOptions::new().write(true).open(file)?;
                f.set_len(len / 2)?;
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
        })
    };
    let what = damage().with_context(|| format!("cannot damage {}", file.display()))?;
    Ok(Some(format!("{what} {}", file.display())))
}

/// The `chk-<n>` directories of `job` under `checkpoints` without `_metadata`, each with
/// the number of files in it: what failed, aborted or unfinished checkpoints left behind.
pub fn incomplete(checkpoints: &Path, job: &str) -> Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(checkpoints.join(job)) else {
        return Ok(Vec::new());
    };
    let mut left = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("chk-") && !path.join("_metadata").is_file() {
            let files = std::fs::read_dir(&path).map_or(0, Iterator::count);
            left.push(format!("{name} ({files} files)"));
        }
    }
    left.sort();
    Ok(left)
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
    fn a_full_storage_refuses_writes_until_its_ballast_goes() {
        let root = tempfile::tempdir().unwrap();
        let Ok(_tmpfs) = Tmpfs::mount(root.path(), 1) else {
            // Mounting needs root; the chaos run reports that itself.
            return;
        };
        let dir = root.path().to_path_buf();
        let filler = std::thread::spawn(move || fill_for(&dir, Duration::from_millis(500)));
        let probe = root.path().join("probe");
        let mut refused = false;
        for _ in 0..400 {
            if let Err(e) = std::fs::write(&probe, vec![1u8; 64 << 10]) {
                assert_eq!(e.kind(), ErrorKind::StorageFull, "{e}");
                refused = true;
                break;
            }
            let _ = std::fs::remove_file(&probe);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(refused, "no write into the tmpfs failed while it was full");
        filler.join().unwrap().unwrap();
        std::fs::write(&probe, vec![1u8; 64 << 10]).expect("room again once the ballast went");
    }

    #[test]
    fn checkpoints_without_metadata_are_left_overs() {
        let root = tempfile::tempdir().unwrap();
        assert!(incomplete(root.path(), "job").unwrap().is_empty());
        checkpoint(root.path(), 4, true);
        checkpoint(root.path(), 5, false);
        assert_eq!(incomplete(root.path(), "job").unwrap(), ["chk-5 (1 files)"]);
    }

    #[test]
    fn without_a_complete_checkpoint_nothing_is_damaged() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(damage_latest(root.path(), "job", 0).unwrap(), None);
        checkpoint(root.path(), 1, false);
        assert_eq!(damage_latest(root.path(), "job", 0).unwrap(), None);
    }
}
