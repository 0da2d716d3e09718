//! JobManager leader election on a real ZooKeeper (`scripts/zookeeper.sh`): the lowest
//! latch leads and publishes its address; each other candidate watches only its
//! predecessor, so a leader's end wakes one candidate; epochs grow; two cluster ids on one
//! ZooKeeper elect apart; an unreachable quorum is a clear error within the connection
//! timeout; a leader whose session expires while ZooKeeper is down learns it has lost; a
//! watcher whose session expired follows the next leader through a new session.

mod common;

use common::zookeeper::{zookeeper, ZooKeeper, WAIT};
use std::time::{Duration, Instant};
use weir_jobmanager::ha::LeaderElection;
use weir_runtime::ha::{connect, HaConfig, LeaderRetrieval, LeaderWatch};

async fn candidate(config: &HaConfig, n: u16) -> (LeaderElection, u16) {
    let client = connect(config).await.expect("session");
    (LeaderElection::join(client).await.expect("join"), n)
}

/// Waits until candidate `n` leads, then publishes its addresses (RPC port 6100 + n,
/// REST port 8100 + n).
async fn lead((mut c, n): (LeaderElection, u16)) -> LeaderElection {
    let epoch = tokio::time::timeout(WAIT, c.lead())
        .await
        .expect("leads in time")
        .expect("leads");
    assert_eq!(epoch, c.epoch());
    let rpc = format!("127.0.0.1:{}", 6100 + n);
    let rest = format!("127.0.0.1:{}", 8100 + n);
    let published = c.publish(&rpc, &rest).await.expect("publishes");
    assert_eq!(published.epoch, epoch);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lowest_latch_leads_and_a_leaders_end_wakes_only_its_successor() {
    let config = zookeeper().config("succession");
    let retrieval = LeaderRetrieval::new(connect(&config).await.unwrap());
    let first = lead(candidate(&config, 1).await).await;
    let second = candidate(&config, 2).await;
    let third = candidate(&config, 3).await;
    assert!(first.epoch() < second.0.epoch() && second.0.epoch() < third.0.epoch());
    let published = retrieval.next_leader(None, WAIT).await.unwrap();
    assert_eq!(
        (published.epoch, published.rpc_address.as_str()),
        (first.epoch(), "127.0.0.1:6101")
    );
    assert_eq!(published.rest_address, "127.0.0.1:8101");

    let (second_tx, mut second_led) = tokio::sync::oneshot::channel();
    tokio::spawn(async move { second_tx.send(lead(second).await).ok() });
    let (third_tx, mut third_led) = tokio::sync::oneshot::channel();
    tokio::spawn(async move { third_tx.send(lead(third).await).ok() });
    let first_epoch = first.epoch();
    first.resign().await.unwrap();
    let second = tokio::time::timeout(WAIT, &mut second_led)
        .await
        .unwrap()
        .unwrap();
    // The second watched the first's latch, unless its task first looked after the first
    // had resigned (then it led at once, watching nothing): never another latch.
    let first_latch = format!("/leader/latch/latch-{first_epoch:010}");
    assert!(
        second.watched().is_none_or(|w| w == first_latch),
        "{:?}",
        second.watched()
    );
    let published = retrieval
        .next_leader(Some(first_epoch), WAIT)
        .await
        .unwrap();
    assert_eq!(
        (published.epoch, published.rpc_address.as_str()),
        (second.epoch(), "127.0.0.1:6102")
    );
    // The third watches the second, not the first: it is still waiting.
    assert!(third_led.try_recv().is_err());

    // The second's session ends (a JobManager killed): the third takes over.
    let second_epoch = second.epoch();
    drop(second);
    let third = tokio::time::timeout(WAIT, &mut third_led)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        third.watched(),
        Some(format!("/leader/latch/latch-{second_epoch:010}").as_str())
    );
    let published = retrieval
        .next_leader(Some(second_epoch), WAIT)
        .await
        .unwrap();
    assert_eq!(published.epoch, third.epoch());
    assert!(published.epoch > second_epoch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cluster_ids_on_one_zookeeper_elect_their_own_leaders() {
    let (a, b) = (zookeeper().config("apart-a"), zookeeper().config("apart-b"));
    let leader_a = lead(candidate(&a, 11).await).await;
    let leader_b = lead(candidate(&b, 12).await).await;
    let seen_a = LeaderRetrieval::new(connect(&a).await.unwrap())
        .current()
        .await
        .unwrap()
        .unwrap();
    let seen_b = LeaderRetrieval::new(connect(&b).await.unwrap())
        .current()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (seen_a.rpc_address.as_str(), seen_a.epoch),
        ("127.0.0.1:6111", leader_a.epoch())
    );
    assert_eq!(
        (seen_b.rpc_address.as_str(), seen_b.epoch),
        ("127.0.0.1:6112", leader_b.epoch())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_quorum_is_an_error_naming_it_within_the_connection_timeout() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let quorum = format!("127.0.0.1:{port}");
    let config = HaConfig::from_pairs([
        ("high-availability.type", "zookeeper"),
        ("high-availability.zookeeper.quorum", quorum.as_str()),
        ("high-availability.storageDir", "file:///tmp/weir-ha-test"),
        (
            "high-availability.zookeeper.client.connection-timeout",
            "1 s",
        ),
    ])
    .unwrap()
    .unwrap();
    let started = Instant::now();
    let Err(err) = connect(&config).await else {
        panic!("a session with nothing listening on {quorum}");
    };
    let err = err.to_string();
    assert!(
        err.contains(&format!("ZooKeeper quorum {quorum} is unreachable")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        started.elapsed()
    );
}

/// Keeps `zk` down for longer than the 2 s session timeout, so on reconnection the server
/// has expired every session (the leader's znodes are gone), and waits until `leader`
/// learns it lost.
async fn expire_sessions(zk: &ZooKeeper, leader: &LeaderElection) {
    zk.pause();
    tokio::time::sleep(Duration::from_secs(4)).await;
    zk.resume();
    tokio::time::timeout(WAIT, leader.lost())
        .await
        .expect("the leader learns it lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_session_expires_while_zookeeper_is_down_learns_it_lost() {
    let zk = ZooKeeper::start();
    let config = zk.config("expiry");
    let leader = lead(candidate(&config, 21).await).await;
    let epoch = leader.epoch();
    expire_sessions(&zk, &leader).await;
    let next = lead(candidate(&config, 22).await).await;
    assert!(next.epoch() > epoch);
    let seen = LeaderRetrieval::new(connect(&config).await.unwrap())
        .current()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.epoch, next.epoch());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_watch_whose_session_expired_sees_the_next_leader_through_a_new_session() {
    let zk = ZooKeeper::start();
    let config = zk.config("watch-expiry");
    let leader = lead(candidate(&config, 31).await).await;
    let epoch = leader.epoch();
    let retrieval = LeaderRetrieval::new(connect(&config).await.unwrap());
    let mut watch = LeaderWatch::new(config.clone(), retrieval.clone());
    assert_eq!(watch.next_leader(None, WAIT).await.unwrap().epoch, epoch);
    expire_sessions(&zk, &leader).await;
    let next = lead(candidate(&config, 32).await).await;
    // Through the expired session nothing can be seen any more ...
    let e = retrieval
        .next_leader(Some(epoch), WAIT)
        .await
        .expect_err("the expired session reads nothing");
    assert!(e.is_session_expired(), "{e}");
    // ... the watch opens a new one and sees the next leader.
    let seen = watch.next_leader(Some(epoch), WAIT).await.unwrap();
    assert_eq!(seen.epoch, next.epoch());
    assert_eq!(seen.rpc_address, "127.0.0.1:6132");
}
