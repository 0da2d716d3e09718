//! How the API's stream graph becomes a job graph: chaining and partitioning.

use weir_api::{Partitioning, StreamExecutionEnvironment};

fn env(p: u16) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(p);
    env
}

fn names(env: &StreamExecutionEnvironment) -> Vec<String> {
    env.job_graph("g")
        .unwrap()
        .vertices
        .iter()
        .map(|v| v.name.clone())
        .collect()
}

#[test]
fn forward_operators_of_equal_parallelism_chain_into_one_task() {
    let env = env(2);
    env.from_sequence(0, 9)
        .map(|x| x + 1)
        .name("plus")
        .filter(|x| x % 2 == 0)
        .name("even")
        .collect();
    assert_eq!(
        names(&env),
        vec!["Source: Sequence Source -> plus -> even -> Collect Sink"]
    );
}

#[test]
fn key_by_rebalance_and_parallelism_changes_break_chains() {
    let env = env(2);
    env.from_sequence(0, 9)
        .key_by(|x: &u64| *x)
        .reduce(|a, b| a + b)
        .rebalance()
        .map(|x| x)
        .set_parallelism(1)
        .collect();
    let g = env.job_graph("g").unwrap();
    let parts: Vec<_> = g.edges.iter().map(|e| e.partitioning).collect();
    // The collect sink takes the default parallelism (2) again: a fourth task.
    assert_eq!(
        names(&env),
        vec![
            "Source: Sequence Source",
            "Keyed Reduce",
            "Map",
            "Collect Sink"
        ]
    );
    assert_eq!(
        parts,
        vec![
            Partitioning::Hash,
            Partitioning::Rebalance,
            Partitioning::Rebalance
        ]
    );
}

#[test]
fn disable_chaining_and_union_start_new_tasks() {
    let env = env(1);
    let a = env.from_sequence(0, 9);
    let b = env.from_sequence(10, 19);
    a.map(|x| x).disable_chaining().union(&[&b]).collect();
    let n = names(&env);
    assert_eq!(n.len(), 4, "{n:?}");
    assert!(n.iter().any(|v| v == "Union -> Collect Sink"), "{n:?}");
}

#[test]
fn an_explicit_forward_between_different_parallelism_is_rejected() {
    let env = env(2);
    env.from_sequence(0, 9)
        .forward()
        .map(|x| x)
        .set_parallelism(1)
        .collect();
    let err = env.job_graph("g").unwrap_err().to_string();
    assert!(
        err.contains("forward edge") && err.contains("rebalance"),
        "{err}"
    );
}

#[test]
fn default_edges_rebalance_when_parallelism_differs() {
    let env = env(2);
    env.from_collection(vec![1u8]).map(|x| x).collect();
    let g = env.job_graph("g").unwrap();
    assert_eq!(g.edges.len(), 1);
    assert_eq!(g.edges[0].partitioning, Partitioning::Rebalance);
}

#[test]
fn a_sink_on_a_keyed_stream_is_fed_by_hash_partitioning() {
    let env = env(2);
    env.from_sequence(0, 9)
        .key_by(|x: &u64| *x)
        .add_sink(weir_api::sink::DiscardingSink);
    let g = env.job_graph("g").unwrap();
    assert_eq!(g.edges.len(), 1);
    assert_eq!(g.edges[0].partitioning, Partitioning::Hash);
}
