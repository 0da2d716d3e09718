//! The restart strategy of one job: whether, and after how long, a failed run restarts.
//!
//! Invariants: `none` never restarts; `fixed-delay` restarts at most `attempts` times;
//! `exponential-delay` grows its delay by the multiplier up to the maximum and starts over
//! after a quiet period; `failure-rate` refuses once more than the allowed failures fall
//! within the interval.

use std::collections::VecDeque;
use std::time::{Duration, Instant};
use weir_runtime::RestartStrategy;

/// Decides the restarts of one job.
#[derive(Debug)]
pub struct RestartPolicy {
    strategy: RestartStrategy,
    restarts: u32,
    backoff: Option<Duration>,
    last_failure: Option<Instant>,
    failures: VecDeque<Instant>,
}

impl RestartPolicy {
    /// Follows `strategy`.
    pub fn new(strategy: RestartStrategy) -> Self {
        Self {
            strategy,
            restarts: 0,
            backoff: None,
            last_failure: None,
            failures: VecDeque::new(),
        }
    }

    /// Returns the number of restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// A run failed at `now`: returns the delay before the restart, or `None` if the job
    /// must fail.
    pub fn on_failure(&mut self, now: Instant) -> Option<Duration> {
        let delay = match self.strategy {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                (self.restarts < attempts).then_some(delay)
            }
            RestartStrategy::ExponentialDelay {
                initial,
                max,
                multiplier,
                reset_after,
            } => {
                let quiet = self
                    .last_failure
                    .is_none_or(|t| now.saturating_duration_since(t) >= reset_after);
                let next = match self.backoff {
                    Some(b) if !quiet => b.mul_f64(multiplier.max(1.0)).min(max),
                    _ => initial.min(max),
                };
                self.backoff = Some(next);
                Some(next)
            }
            RestartStrategy::FailureRate {
                max_failures,
                interval,
                delay,
            } => {
                while self
                    .failures
                    .front()
                    .is_some_and(|t| now.saturating_duration_since(*t) > interval)
                {
                    self.failures.pop_front();
                }
                self.failures.push_back(now);
                (self.failures.len() as u64 <= u64::from(max_failures)).then_some(delay)
            }
        };
        self.last_failure = Some(now);
        if delay.is_some() {
            self.restarts += 1;
        }
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn none_never_restarts_and_fixed_delay_stops_after_its_attempts() {
        let now = Instant::now();
        assert_eq!(
            RestartPolicy::new(RestartStrategy::None).on_failure(now),
            None
        );
        let mut p = RestartPolicy::new(RestartStrategy::FixedDelay {
            attempts: 2,
            delay: 10 * MS,
        });
        assert_eq!(p.on_failure(now), Some(10 * MS));
        assert_eq!(p.on_failure(now), Some(10 * MS));
        assert_eq!(p.on_failure(now), None);
        assert_eq!(p.restarts(), 2);
    }

    #[test]
    fn exponential_delay_grows_to_its_maximum_and_resets_after_a_quiet_period() {
        let mut p = RestartPolicy::new(RestartStrategy::ExponentialDelay {
            initial: 10 * MS,
            max: 35 * MS,
            multiplier: 2.0,
            reset_after: 1000 * MS,
        });
        let t = Instant::now();
        assert_eq!(p.on_failure(t), Some(10 * MS));
        assert_eq!(p.on_failure(t + 100 * MS), Some(20 * MS));
        assert_eq!(p.on_failure(t + 200 * MS), Some(35 * MS));
        assert_eq!(p.on_failure(t + 300 * MS), Some(35 * MS));
        assert_eq!(p.on_failure(t + 2000 * MS), Some(10 * MS));
    }

    #[test]
    fn failure_rate_refuses_more_failures_than_allowed_within_the_interval() {
        let mut p = RestartPolicy::new(RestartStrategy::FailureRate {
            max_failures: 2,
            interval: 1000 * MS,
            delay: 5 * MS,
        });
        let t = Instant::now();
        assert_eq!(p.on_failure(t), Some(5 * MS));
        assert_eq!(p.on_failure(t + 500 * MS), Some(5 * MS));
        assert_eq!(
            p.on_failure(t + 900 * MS),
            None,
            "a third failure within 1 s"
        );
        let mut q = RestartPolicy::new(RestartStrategy::FailureRate {
            max_failures: 2,
            interval: 1000 * MS,
            delay: 5 * MS,
        });
        q.on_failure(t);
        q.on_failure(t + 500 * MS);
        assert_eq!(
            q.on_failure(t + 1600 * MS),
            Some(5 * MS),
            "the first failure aged out"
        );
    }
}
