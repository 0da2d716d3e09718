//! The user functions of window co-groups and joins, as Flink's `CoGroupFunction`,
//! `JoinFunction` and `FlatJoinFunction`, and the window function that runs them over the
//! tagged records of one key's window.
//!
//! A co-group sees every record of both inputs in a window for a key, also when one side
//! has none; a join sees each pair of the cross product, first input outer, and nothing for
//! a window where either side is empty (an inner join, as in Flink).

use super::tagged_union::TaggedUnion;
use crate::functions::FnResult;
use crate::window::{ProcessWindowFunction, TimeWindow};

/// Combines the records of both inputs that share a key and a window.
pub trait CoGroupFunction<T1, T2, O>: Clone + Send + Sync + 'static {
    /// Produces the results of one key's window into `out`; either side may be empty.
    fn co_group(&mut self, first: Vec<T1>, second: Vec<T2>, out: &mut Vec<O>) -> FnResult;
}

impl<T1, T2, O, F> CoGroupFunction<T1, T2, O> for F
where
    F: Fn(Vec<T1>, Vec<T2>, &mut Vec<O>) -> FnResult + Clone + Send + Sync + 'static,
{
    fn co_group(&mut self, first: Vec<T1>, second: Vec<T2>, out: &mut Vec<O>) -> FnResult {
        self(first, second, out)
    }
}

/// Joins one record of each input that share a key and a window into one result.
pub trait JoinFunction<T1, T2, O>: Clone + Send + Sync + 'static {
    /// The result of the pair.
    fn join(&mut self, first: T1, second: T2) -> O;
}

impl<T1, T2, O, F> JoinFunction<T1, T2, O> for F
where
    F: Fn(T1, T2) -> O + Clone + Send + Sync + 'static,
{
    fn join(&mut self, first: T1, second: T2) -> O {
        self(first, second)
    }
}

/// Joins one record of each input that share a key and a window into any number of
/// results, or fails the task.
pub trait FlatJoinFunction<T1, T2, O>: Clone + Send + Sync + 'static {
    /// Appends the pair's results to `out`.
    fn join(&mut self, first: T1, second: T2, out: &mut Vec<O>) -> FnResult;
}

impl<T1, T2, O, F> FlatJoinFunction<T1, T2, O> for F
where
    F: Fn(T1, T2, &mut Vec<O>) -> FnResult + Clone + Send + Sync + 'static,
{
    fn join(&mut self, first: T1, second: T2, out: &mut Vec<O>) -> FnResult {
        self(first, second, out)
    }
}

/// A join as a co-group: the cross product of both sides, the first input outer.
#[derive(Clone)]
pub(crate) struct FlatJoinAsCoGroup<F>(pub(crate) F);

impl<T1: Clone, T2: Clone, O, F: FlatJoinFunction<T1, T2, O>> CoGroupFunction<T1, T2, O>
    for FlatJoinAsCoGroup<F>
{
    fn co_group(&mut self, first: Vec<T1>, second: Vec<T2>, out: &mut Vec<O>) -> FnResult {
        for a in &first {
            for b in &second {
                self.0.join(a.clone(), b.clone(), out)?;
            }
        }
        Ok(())
    }
}

/// A [`JoinFunction`] as a [`FlatJoinFunction`] with one result per pair.
#[derive(Clone)]
pub(crate) struct OneResult<F>(pub(crate) F);

impl<T1, T2, O, F: JoinFunction<T1, T2, O>> FlatJoinFunction<T1, T2, O> for OneResult<F> {
    fn join(&mut self, first: T1, second: T2, out: &mut Vec<O>) -> FnResult {
        out.push(self.0.join(first, second));
        Ok(())
    }
}

/// Runs a [`CoGroupFunction`] over a fired window's tagged records.
#[derive(Clone)]
pub(crate) struct CoGroupWindow<F>(pub(crate) F);

impl<K, T1, T2, O, F> ProcessWindowFunction<K, TaggedUnion<T1, T2>, O> for CoGroupWindow<F>
where
    F: CoGroupFunction<T1, T2, O>,
{
    fn process(
        &mut self,
        _key: &K,
        _window: &TimeWindow,
        elements: Vec<TaggedUnion<T1, T2>>,
        out: &mut Vec<O>,
    ) -> FnResult {
        let (first, second) = TaggedUnion::split(elements);
        self.0.co_group(first, second, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_pairs_every_record_of_the_first_side_with_every_one_of_the_second() {
        let mut join = FlatJoinAsCoGroup(OneResult(|a: u8, b: char| (a, b)));
        let mut out = Vec::new();
        join.co_group(vec![1, 2], vec!['x', 'y'], &mut out).unwrap();
        assert_eq!(out, vec![(1, 'x'), (1, 'y'), (2, 'x'), (2, 'y')]);
    }

    #[test]
    fn a_join_emits_nothing_when_one_side_is_empty() {
        let mut join = FlatJoinAsCoGroup(OneResult(|a: u8, b: char| (a, b)));
        let mut out = Vec::new();
        join.co_group(vec![1, 2], vec![], &mut out).unwrap();
        join.co_group(vec![], vec!['x'], &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn a_failing_flat_join_stops_at_its_error() {
        let failing = |a: u8, _b: char, out: &mut Vec<u8>| -> FnResult {
            if a == 2 {
                return Err("bad pair".into());
            }
            out.push(a);
            Ok(())
        };
        let mut out = Vec::new();
        let err = FlatJoinAsCoGroup(failing)
            .co_group(vec![1, 2, 3], vec!['x'], &mut out)
            .unwrap_err();
        assert_eq!(err.to_string(), "bad pair");
        assert_eq!(out, vec![1]);
    }
}
