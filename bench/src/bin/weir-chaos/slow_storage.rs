//! Slow checkpoint storage: an ext4 file system on a loop device, whose writes the block
//! I/O controller (cgroup v1 `blkio.throttle`) holds to a trickle for a while.
//!
//! A `tmpfs` cannot be slowed (it has no block device), so a run whose schedule slows
//! storage keeps its checkpoints on a [`LoopVolume`] instead; the full-storage faults fill
//! it with a ballast file as they fill a `tmpfs`. Checkpoint files are fsynced, so a
//! throttled device slows every checkpoint, not just the page cache's write-back.
//!
//! Invariants: the throttle is set on the root cgroup for the loop device only (its
//! `major:minor`), so nothing else on the machine is slowed; it is lifted after each
//! fault and again before the volume goes; the volume is unmounted and its loop device
//! detached when the guard drops. In cgroup v1 a root group's limit covers the I/O of
//! processes in the root `blkio` group (where the harness and its cluster run unless
//! something moved them); processes in other groups would write around it.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the root cgroup's write limits per device are set.
const WRITE_BPS: &str = "/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device";
/// Where the root cgroup's write operation limits per device are set.
const WRITE_IOPS: &str = "/sys/fs/cgroup/blkio/blkio.throttle.write_iops_device";
/// Bytes per second a slowed volume accepts.
const SLOW_BPS: u64 = 128 << 10;
/// Write operations per second a slowed volume accepts.
const SLOW_IOPS: u64 = 16;

/// An ext4 file system in an image file, mounted through a loop device.
pub struct LoopVolume {
    mount: PathBuf,
    device: String,
    throttle: Throttle,
}

/// The write throttle of one block device, by its `major:minor`.
#[derive(Clone, Debug)]
pub struct Throttle {
    numbers: String,
}

impl LoopVolume {
    /// Creates an image of `mib` MiB at `image`, formats it ext4 (no reserved blocks) and
    /// mounts it on `path` (created if missing). Needs root and loop devices.
    pub fn mount(image: &Path, path: &Path, mib: u64) -> Result<Self> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::fs::File::create(image)
            .and_then(|f| f.set_len(mib << 20))
            .with_context(|| format!("cannot create the {mib} MiB image {}", image.display()))?;
        let image = image.to_string_lossy();
        run("mkfs.ext4", &["-q", "-F", "-m", "0", &image])?;
        let device = run("losetup", &["--find", "--show", &image])?;
        let numbers = run("lsblk", &["-dno", "MAJ:MIN", &device]).and_then(|n| {
            let n = n.replace(' ', "");
            let valid = n.split_once(':').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
            if valid {
                Ok(n)
            } else {
                bail!("lsblk gave no device numbers for {device}: {n:?}")
            }
        });
        let numbers = match numbers {
            Ok(n) => n,
            Err(e) => {
                let _ = run("losetup", &["-d", &device]);
                return Err(e);
            }
        };
        // A run that died while it throttled may have left its device's limits behind,
        // and the loop device's numbers are reused.
        let throttle = Throttle { numbers };
        let mounted = throttle
            .set(None)
            .and_then(|()| run("mount", &[&device, &path.to_string_lossy()]));
        if let Err(e) = mounted {
            let _ = run("losetup", &["-d", &device]);
            return Err(e);
        }
        Ok(Self {
            mount: path.to_path_buf(),
            device,
            throttle,
        })
    }

    /// The volume's write throttle.
    pub fn throttle(&self) -> Throttle {
        self.throttle.clone()
    }

    /// Copies what the volume holds into `dest`; a failure is reported, not fatal.
    pub fn copy_to(&self, dest: &Path) {
        crate::system::copy_kept(&self.mount, dest);
    }
}

impl Throttle {
    /// Throttles the device's writes for `hold`, then lifts the throttle.
    pub fn slow_for(&self, hold: Duration) -> Result<()> {
        let slowed = self.set(Some((SLOW_BPS, SLOW_IOPS)));
        if slowed.is_ok() {
            std::thread::sleep(hold);
        }
        let lifted = self.set(None);
        slowed.and(lifted)
    }

    /// Sets the device's write limits (`None`: none).
    fn set(&self, limits: Option<(u64, u64)>) -> Result<()> {
        let (bps, iops) = limits.unwrap_or((0, 0));
        let mut result = Ok(());
        for (file, limit) in [(WRITE_BPS, bps), (WRITE_IOPS, iops)] {
            let line = format!("{} {limit}", self.numbers);
            let set = std::fs::write(file, &line).with_context(|| {
                format!(
                    "cannot write {line:?} to {file} (slow storage needs root and cgroup v1 blkio)"
                )
            });
            if limits.is_some() {
                set?;
            } else if result.is_ok() {
                result = set;
            }
        }
        result
    }
}

impl Drop for LoopVolume {
    fn drop(&mut self) {
        if let Err(e) = self.throttle.set(None) {
            eprintln!(
                "weir-chaos: cannot lift the throttle of {}: {e:#}",
                self.device
            );
        }
        let mount = self.mount.to_string_lossy().into_owned();
        // Workers exit shortly after their TaskManagers and may still hold files open:
        // retry for a while, then detach the mount lazily (the loop device goes once
        // it is free, `losetup -d` marks it so).
        let unmounted = (0..50).any(|_| {
            let done = run("umount", &[&mount]).is_ok();
            if !done {
                std::thread::sleep(Duration::from_millis(100));
            }
            done
        });
        if !unmounted && run("umount", &["-l", &mount]).is_err() {
            eprintln!("weir-chaos: cannot unmount {mount}");
        }
        if let Err(e) = run("losetup", &["-d", &self.device]) {
            eprintln!("weir-chaos: cannot detach {}: {e:#}", self.device);
        }
    }
}

/// Runs `program args` for slow storage (see [`crate::system::run`]).
fn run(program: &str, args: &[&str]) -> Result<String> {
    crate::system::run(program, args, "slow storage needs root and loop devices")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    /// Writes `bytes` into a new file under `dir` and fsyncs it; returns how long it took.
    fn synced_write(dir: &Path, name: &str, bytes: usize) -> Duration {
        let start = Instant::now();
        let mut f = std::fs::File::create(dir.join(name)).unwrap();
        f.write_all(&vec![7u8; bytes]).unwrap();
        f.sync_all().unwrap();
        start.elapsed()
    }

    /// Whether the root cgroup's write limits name `volume`'s device.
    fn limited(volume: &LoopVolume) -> bool {
        std::fs::read_to_string(WRITE_BPS)
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().next() == Some(volume.throttle.numbers.as_str()))
    }

    #[test]
    fn a_slowed_volume_holds_synced_writes_to_its_rate_until_the_throttle_is_lifted() {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path().join("mnt");
        let Ok(volume) = LoopVolume::mount(&root.path().join("image"), &mount, 16) else {
            // Loop devices need root; the chaos run reports that itself.
            return;
        };
        volume.throttle.set(Some((SLOW_BPS, SLOW_IOPS))).unwrap();
        assert!(limited(&volume));
        // 256 KiB at 128 KiB/s cannot reach the device in less than 2 s.
        let slowed = synced_write(&mount, "slowed", 256 << 10);
        volume.throttle.set(None).unwrap();
        assert!(slowed >= Duration::from_millis(1_500), "{slowed:?}");
        assert!(!limited(&volume), "the throttle is lifted");
        synced_write(&mount, "free", 256 << 10);
        drop(volume);
        assert!(!mount.join("free").exists(), "unmounted once dropped");
    }
}
