//! The sensor pipeline's fail points and throttle: readings are counted across the whole
//! process, so each fail point fires exactly once whatever restarts happen.

use std::time::{Duration, Instant};

pub fn parse_fail_randomly(s: &str) -> Result<(u64, u64), String> {
    let (seed, count) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not SEED:COUNT"))?;
    let seed = seed
        .parse()
        .map_err(|e| format!("bad seed '{seed}' in '{s}': {e}"))?;
    let count = count
        .parse()
        .map_err(|e| format!("bad count '{count}' in '{s}': {e}"))?;
    Ok((seed, count))
}

/// The fail points and the throttle of one run: readings are counted across the whole
/// process (every subtask, every restart), so each fail point fires exactly once.
pub struct Faults {
    pub seen: std::sync::atomic::AtomicU64,
    /// Fail points, ascending.
    pub points: Vec<u64>,
    /// Index of the next fail point.
    pub next: std::sync::atomic::AtomicUsize,
    pub rate: Option<u64>,
    pub started: Instant,
}

impl Faults {
    pub fn pass(&self) {
        use std::sync::atomic::Ordering;
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let i = self.next.load(Ordering::Relaxed);
        if self.points.get(i) == Some(&n)
            && self
                .next
                .compare_exchange(i, i + 1, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            panic!("fail point: injected failure at reading {n}");
        }
        if let Some(rate) = self.rate {
            let due = Duration::from_secs_f64(n as f64 / rate as f64);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
    }
}

/// Returns `count` distinct pseudo-random readings in `1..total`, from `seed`.
pub fn random_points(seed: u64, count: u64, total: u64) -> Vec<u64> {
    let mut points = std::collections::BTreeSet::new();
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let span = total.saturating_sub(1).max(1);
    let mut guard = 0;
    while (points.len() as u64) < count.min(span) && guard < count * 100 + 100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        points.insert(1 + x % span);
        guard += 1;
    }
    points.into_iter().collect()
}
