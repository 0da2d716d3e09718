//! A TaskManager never starts a subtask of a job it was told to cancel, even when the
//! deployment arrives after the cancellation (the JobManager sends both without ordering
//! them against each other).

use std::sync::{Arc, Mutex};
use weir_runtime::control::{
    ExecutionState, JobManagerGateway, JobManagerMessage, TaskDeployment, TaskManagerMessage,
};
use weir_runtime::invokable::{TaskInvokable, TaskSetup};
use weir_runtime::{JobConfig, JobGraph, JobId, JobVertex, SubtaskId, TaskError};
use weir_taskmanager::TaskManager;

#[derive(Default)]
struct Recorder(Mutex<Vec<(SubtaskId, ExecutionState)>>);

impl JobManagerGateway for Recorder {
    fn send(&self, message: TaskManagerMessage) {
        if let TaskManagerMessage::TaskState { subtask, state, .. } = message {
            self.0.lock().unwrap().push((subtask, state));
        }
    }
}

#[test]
fn a_deployment_arriving_after_its_jobs_cancellation_is_reported_cancelled_and_never_runs() {
    let recorder = Arc::new(Recorder::default());
    let tm = TaskManager::start(0, 1, "127.0.0.1:0".parse().unwrap(), recorder.clone()).unwrap();
    let job = JobId(42);
    let graph = JobGraph {
        name: "late".into(),
        vertices: vec![JobVertex {
            id: 0,
            name: "never".into(),
            parallelism: 1,
            max_parallelism: 128,
            is_source: true,
            is_sink: true,
            operator_uids: Vec::new(),
            factory: Some(Arc::new(
                |_s: TaskSetup| -> Result<Box<dyn TaskInvokable>, TaskError> {
                    panic!("a cancelled job's subtask must not start")
                },
            )),
        }],
        edges: vec![],
        config: JobConfig::default(),
    };
    tm.register_program(job, Arc::new(graph));
    let subtask = SubtaskId {
        job,
        vertex: 0,
        subtask: 0,
    };
    let gateway = tm.gateway();
    gateway.send(JobManagerMessage::CancelJob { job, attempt: 0 });
    gateway.send(JobManagerMessage::Deploy(Box::new(TaskDeployment {
        subtask,
        name: "never".into(),
        parallelism: 1,
        max_parallelism: 128,
        is_source: true,
        gates: vec![],
        outputs: vec![],
        attempt: 0,
        restore: None,
    })));
    assert_eq!(
        *recorder.0.lock().unwrap(),
        vec![(subtask, ExecutionState::Cancelled)]
    );
    assert_eq!(tm.task_count(), 0);
}
