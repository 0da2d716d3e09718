//! Evictors: which elements of a firing window its function sees and which stay, as Flink's
//! `Evictor`.
//!
//! When a window with an evictor fires, its elements (with their timestamps, in arrival
//! order) pass `evict_before`, the function runs over what is left, then `evict_after`
//! runs, and what is left then is the window's contents from now on: evicted elements are
//! gone for good, as in Flink. Built in: [`CountEvictor`] and [`TimeEvictor`].

use super::assigner::TimeWindow;
use weir_runtime::Timestamp;

/// Removes elements from a firing window, before or after its function runs.
pub trait Evictor<T>: Clone + Send + Sync + 'static {
    /// Evicts from `elements` before the function sees them.
    fn evict_before(&mut self, elements: &mut Vec<(T, Timestamp)>, window: &TimeWindow);

    /// Evicts from `elements` after the function ran.
    fn evict_after(&mut self, _elements: &mut Vec<(T, Timestamp)>, _window: &TimeWindow) {}
}

/// Keeps the last `n` elements of a window.
#[derive(Clone, Copy, Debug)]
pub struct CountEvictor {
    n: usize,
    after: bool,
}

impl CountEvictor {
    /// Keeps the last `n` elements; evicts before the function runs.
    pub fn of(n: usize) -> Self {
        Self { n, after: false }
    }

    /// Keeps the last `n` elements; evicts after the function ran (`after`) or before.
    pub fn of_after(n: usize, after: bool) -> Self {
        Self { n, after }
    }

    fn evict<T>(&self, elements: &mut Vec<(T, Timestamp)>) {
        let excess = elements.len().saturating_sub(self.n);
        elements.drain(..excess);
    }
}

impl<T> Evictor<T> for CountEvictor {
    fn evict_before(&mut self, elements: &mut Vec<(T, Timestamp)>, _window: &TimeWindow) {
        if !self.after {
            self.evict(elements);
        }
    }

    fn evict_after(&mut self, elements: &mut Vec<(T, Timestamp)>, _window: &TimeWindow) {
        if self.after {
            self.evict(elements);
        }
    }
}

/// Keeps the elements within `size` of the window's latest element timestamp (those with a
/// timestamp above `latest - size`).
#[derive(Clone, Copy, Debug)]
pub struct TimeEvictor {
    size: i64,
    after: bool,
}

impl TimeEvictor {
    /// Keeps the elements within `size` of the latest one; evicts before the function runs.
    pub fn of(size: std::time::Duration) -> Self {
        Self::of_after(size, false)
    }

    /// As [`TimeEvictor::of`], evicting after the function ran (`after`) or before.
    pub fn of_after(size: std::time::Duration, after: bool) -> Self {
        Self {
            size: super::assigner::ms(size),
            after,
        }
    }

    fn evict<T>(&self, elements: &mut Vec<(T, Timestamp)>) {
        let Some(latest) = elements.iter().map(|e| e.1).max() else {
            return;
        };
        let cutoff = latest.saturating_sub(self.size);
        elements.retain(|e| e.1 > cutoff);
    }
}

impl<T> Evictor<T> for TimeEvictor {
    fn evict_before(&mut self, elements: &mut Vec<(T, Timestamp)>, _window: &TimeWindow) {
        if !self.after {
            self.evict(elements);
        }
    }

    fn evict_after(&mut self, elements: &mut Vec<(T, Timestamp)>, _window: &TimeWindow) {
        if self.after {
            self.evict(elements);
        }
    }
}

/// Evicts nothing (a window without an evictor).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvictor;

impl<T> Evictor<T> for NoEvictor {
    fn evict_before(&mut self, _elements: &mut Vec<(T, Timestamp)>, _window: &TimeWindow) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(ts: &[Timestamp]) -> Vec<(char, Timestamp)> {
        ts.iter()
            .enumerate()
            .map(|(i, t)| ((b'a' + i as u8) as char, *t))
            .collect()
    }

    #[test]
    fn a_count_evictor_keeps_the_last_n_elements_before_or_after() {
        let w = TimeWindow::new(0, 10);
        let mut e = elements(&[1, 2, 3, 4]);
        CountEvictor::of(2).evict_before(&mut e, &w);
        assert_eq!(e, vec![('c', 3), ('d', 4)]);
        let mut e = elements(&[1, 2, 3, 4]);
        let mut after = CountEvictor::of_after(1, true);
        after.evict_before(&mut e, &w);
        assert_eq!(e.len(), 4);
        after.evict_after(&mut e, &w);
        assert_eq!(e, vec![('d', 4)]);
    }

    #[test]
    fn a_time_evictor_keeps_the_elements_within_its_size_of_the_latest() {
        let w = TimeWindow::new(0, 100);
        let mut e = elements(&[10, 50, 20, 60, 55]);
        TimeEvictor::of(std::time::Duration::from_millis(10)).evict_before(&mut e, &w);
        assert_eq!(e, vec![('d', 60), ('e', 55)]);
    }
}
