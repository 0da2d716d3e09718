//! User functions that drive reducing and aggregating state.
//!
//! Invariant: functions are pure with respect to state — they receive values
//! and accumulators by value or reference and never touch the backend, so the
//! backend can call them while it holds a borrow of its tables.

/// Incrementally aggregates `IN` values into an accumulator `ACC` and
/// extracts an `OUT` result (Flink's `AggregateFunction`).
pub trait AggregateFunction<IN, ACC, OUT>: Send + Sync + 'static {
    /// Creates an empty accumulator.
    fn create_accumulator(&self) -> ACC;
    /// Adds one value to the accumulator.
    fn add(&self, value: IN, accumulator: &mut ACC);
    /// Computes the result from the accumulator.
    fn get_result(&self, accumulator: &ACC) -> OUT;
    /// Computes the result from an accumulator that is no longer needed (a window that
    /// fires and is cleared); override to move instead of copy.
    fn take_result(&self, accumulator: ACC) -> OUT {
        self.get_result(&accumulator)
    }
    /// Merges two accumulators (used when session windows merge).
    fn merge(&self, a: ACC, b: ACC) -> ACC;
}

/// A [`ReduceFunction`] as an [`AggregateFunction`]: the accumulator is the reduced value so
/// far (`None` before the first value), and the result is that value.
pub struct ReduceAggregate<F>(pub F);

impl<T, F> AggregateFunction<T, Option<T>, T> for ReduceAggregate<F>
where
    T: Clone,
    F: ReduceFunction<T>,
{
    fn create_accumulator(&self) -> Option<T> {
        None
    }
    #[inline]
    fn add(&self, value: T, accumulator: &mut Option<T>) {
        *accumulator = Some(match accumulator.take() {
            Some(a) => self.0.reduce(a, value),
            None => value,
        });
    }
    fn get_result(&self, accumulator: &Option<T>) -> T {
        accumulator
            .clone()
            .expect("a reduce accumulator holds a value once anything was added")
    }
    fn take_result(&self, accumulator: Option<T>) -> T {
        accumulator.expect("a reduce accumulator holds a value once anything was added")
    }
    fn merge(&self, a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(self.0.reduce(a, b)),
            (a, None) => a,
            (None, b) => b,
        }
    }
}

/// Combines two values of the same type into one (Flink's `ReduceFunction`).
pub trait ReduceFunction<T>: Send + Sync + 'static {
    /// Combines `a` (the current value) with `b` (the new value).
    fn reduce(&self, a: T, b: T) -> T;
}

impl<T, F> ReduceFunction<T> for F
where
    F: Fn(T, T) -> T + Send + Sync + 'static,
{
    fn reduce(&self, a: T, b: T) -> T {
        self(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closures_are_reduce_functions() {
        fn apply<F: ReduceFunction<i64>>(f: &F) -> i64 {
            f.reduce(3, 4)
        }
        assert_eq!(apply(&|a: i64, b: i64| a.max(b)), 4);
        assert_eq!(apply(&|a: i64, b: i64| a + b), 7);
    }
}
