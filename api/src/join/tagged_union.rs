//! `TaggedUnion<T1, T2>`: one record of either input of a two-stream window operation, as
//! Flink's `CoGroupedStreams.TaggedUnion`.
//!
//! A window join or co-group unions its two inputs into one stream of tagged records, so that
//! both sides share one keyed window operator, its state and its checkpoints. The tag is the
//! enum's variant: a record of the first input is always `One`, of the second `Two`.

use serde::{Deserialize, Serialize};

/// A record of the first (`One`) or second (`Two`) input of a join or co-group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaggedUnion<T1, T2> {
    /// A record of the first input.
    One(T1),
    /// A record of the second input.
    Two(T2),
}

impl<T1, T2> TaggedUnion<T1, T2> {
    /// Splits tagged records into the first input's and the second input's, each in the
    /// order they came.
    pub fn split(elements: Vec<Self>) -> (Vec<T1>, Vec<T2>) {
        let mut first = Vec::new();
        let mut second = Vec::new();
        for e in elements {
            match e {
                TaggedUnion::One(a) => first.push(a),
                TaggedUnion::Two(b) => second.push(b),
            }
        }
        (first, second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_each_sides_order() {
        let elements = vec![
            TaggedUnion::One(1),
            TaggedUnion::Two("x"),
            TaggedUnion::One(2),
            TaggedUnion::Two("y"),
        ];
        assert_eq!(TaggedUnion::split(elements), (vec![1, 2], vec!["x", "y"]));
    }
}
