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
    /// Merges two accumulators (used when session windows merge).
    fn merge(&self, a: ACC, b: ACC) -> ACC;
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
