//! Fencing of a deposed JobManager, on the wire: a `weir taskmanager` process registered
//! with a JobManager of epoch 5 is sent, over its real control connection, a command
//! stamped with epoch 4 (a leader that was deposed) and then one stamped with epoch 5.
//! The JobManager side is this test, speaking the control protocol through the runtime's
//! own handshake and links. The old epoch's command is refused and logged; the current
//! one is carried out.

mod common;

use common::{spawn_taskmanager, wait_until};
use std::time::Duration;
use tokio::net::TcpListener;
use weir_runtime::rpc::messages::{
    ArtifactDigest, TaskManagerCommand, TaskManagerRequest, WorkerSpec,
};
use weir_runtime::rpc::{accept, spawn_link, Fenced, PeerRole};
use weir_runtime::JobId;

const WAIT: Duration = Duration::from_secs(60);

fn start_worker(job: JobId) -> TaskManagerCommand {
    TaskManagerCommand::StartWorker(Box::new(WorkerSpec {
        job,
        artifact: ArtifactDigest::parse(&"ab".repeat(32)).unwrap(),
        args: Vec::new(),
        properties: Default::default(),
        start: job.0,
    }))
}

#[test]
fn a_taskmanager_refuses_the_commands_of_a_deposed_jobmanager_and_obeys_the_leader() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let target = [format!("jobmanager.rpc.address={address}")];
    let tm = spawn_taskmanager(dir.path(), 0, 1, &target);
    let (stale, current) = (JobId(0xa), JobId(0xb));
    let reported = rt.block_on(async {
        let (mut stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the taskmanager connects")
            .unwrap();
        let role = accept(&mut stream, "taskmanager", None).await.unwrap();
        assert_eq!(role, PeerRole::TaskManager);
        // Artifact downloads get a closed connection: a worker start fails and is reported.
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        let (tx, mut rx) = spawn_link::<TaskManagerRequest, Fenced<TaskManagerCommand>>(
            Box::new(stream),
            "taskmanager".into(),
        );
        let first = tokio::time::timeout(WAIT, rx.recv()).await.unwrap();
        assert!(matches!(
            first,
            Some(Ok(TaskManagerRequest::Register { slots: 1 }))
        ));
        let fenced = |epoch, message| Fenced { epoch, message };
        let registered = TaskManagerCommand::Registered {
            id: 7,
            heartbeat_interval_ms: 100,
            heartbeat_timeout_ms: 30_000,
        };
        tx.send(fenced(5, registered)).unwrap();
        tx.send(fenced(4, start_worker(stale))).unwrap();
        tx.send(fenced(5, start_worker(current))).unwrap();
        loop {
            match tokio::time::timeout(WAIT, rx.recv()).await.unwrap() {
                Some(Ok(TaskManagerRequest::Heartbeat)) => {}
                Some(Ok(TaskManagerRequest::WorkerExited { job, reason, .. })) => {
                    break (job, reason)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    assert_eq!(reported.0, current, "{reported:?}\n{}", tm.log());
    assert!(reported.1.contains("cannot fetch artifact"), "{reported:?}");
    let refusal = wait_until("the refusal in the log", WAIT, || {
        let log = tm.log();
        log.lines()
            .find(|l| l.contains("refused a command of a deposed JobManager"))
            .map(str::to_string)
    });
    assert!(
        refusal.contains("epoch=4") && refusal.contains("leader_epoch=5"),
        "{refusal}"
    );
    assert!(refusal.contains("StartWorker"), "{refusal}");
}
