//! The JSON bodies of the REST API, typed so that the OpenAPI document describes them.
//! Key names follow Flink's REST API (kebab-case where Flink uses it) so that clients
//! written for Flink read them; `weir`'s own fields keep their snake-case names.
//!
//! Invariant: times are milliseconds since the epoch, durations milliseconds, sizes bytes;
//! a time that has not happened yet is `-1`, as in Flink.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error: why the request failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Why, one message per problem (Flink's shape).
    pub errors: Vec<String>,
}

impl ErrorBody {
    /// One error.
    pub fn new(why: String) -> Self {
        Self { errors: vec![why] }
    }
}

/// `GET /overview`: the cluster in numbers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterOverview {
    /// Registered TaskManagers.
    pub taskmanagers: usize,
    /// Slots of all TaskManagers.
    pub slots_total: u32,
    /// Slots no job holds.
    pub slots_available: u32,
    /// Jobs not ended yet.
    pub jobs_running: usize,
    /// Jobs that finished.
    pub jobs_finished: usize,
    /// Jobs that were cancelled.
    pub jobs_cancelled: usize,
    /// Jobs that failed.
    pub jobs_failed: usize,
    /// This JobManager's version.
    pub weir_version: String,
}

/// `GET /config`: what the dashboard needs to know about the server.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct DashboardConfig {
    /// How often the dashboard refreshes, in milliseconds.
    pub refresh_interval: u64,
    /// The server's time zone (times are UTC).
    pub timezone_name: String,
    /// Its offset from UTC in milliseconds.
    pub timezone_offset: i64,
    /// This JobManager's version.
    pub weir_version: String,
    /// What the dashboard may do.
    pub features: DashboardFeatures,
}

/// The dashboard's features.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct DashboardFeatures {
    /// Submitting jobs (no: `weir run` does).
    pub web_submit: bool,
    /// Cancelling jobs.
    pub web_cancel: bool,
    /// Savepoints and stop-with-savepoint.
    pub web_savepoint: bool,
}

/// One TaskManager.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskManager {
    /// Its id.
    pub id: u64,
    /// The address it connected from.
    pub path: String,
    /// Its slots (Flink's name).
    #[serde(rename = "slotsNumber")]
    pub slots_number: u32,
    /// Its slots (as `weir` names them).
    pub slots: u32,
    /// Its slots no job holds.
    #[serde(rename = "freeSlots")]
    pub free_slots: u32,
    /// Milliseconds since its last heartbeat.
    #[serde(rename = "timeSinceLastHeartbeat")]
    pub time_since_last_heartbeat: u64,
}

/// `GET /taskmanagers`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskManagerList {
    /// Every registered TaskManager, by id.
    pub taskmanagers: Vec<TaskManager>,
}

/// Counts of subtasks by state.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub struct TaskCounts {
    /// Sent to a TaskManager, not started.
    pub deploying: usize,
    /// Running.
    pub running: usize,
    /// Finished.
    pub finished: usize,
    /// Cancelled.
    pub canceled: usize,
    /// Failed.
    pub failed: usize,
}

/// One job in `GET /jobs/overview`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct JobOverview {
    /// The job's id.
    pub jid: String,
    /// Its name.
    pub name: String,
    /// Its status (`RUNNING`, `FINISHED`, ...).
    pub state: String,
    /// When it was submitted.
    pub start_time: i64,
    /// When it ended, or -1.
    pub end_time: i64,
    /// Milliseconds from submission to its end, or to now.
    pub duration: i64,
    /// When its status last changed (its end, or its current run's start).
    pub last_modification: i64,
    /// Its subtasks by state, with their total.
    pub tasks: TaskTotals,
}

/// Counts of subtasks with their total.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskTotals {
    /// Every subtask of the job.
    pub total: usize,
    /// By state.
    #[serde(flatten)]
    pub counts: TaskCounts,
}

/// `GET /jobs/overview`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobsOverview {
    /// Every job, in submission order.
    pub jobs: Vec<JobOverview>,
}

/// One vertex (a chain of operators) of a job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct VertexSummary {
    /// Its id: its index in the job graph.
    pub id: String,
    /// Its name: the chained operators' names.
    pub name: String,
    /// Its parallelism.
    pub parallelism: u16,
    /// Its number of key groups.
    #[serde(rename = "maxParallelism")]
    pub max_parallelism: u16,
    /// The state most of its subtasks are in (the least advanced one).
    pub status: String,
    /// When the current run was deployed, or -1.
    pub start_time: i64,
    /// Its subtasks by state.
    pub tasks: TaskCounts,
}

/// `GET /jobs/{id}`: a job with its vertices (and `weir`'s summary fields).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDetails {
    /// The job's id.
    pub jid: String,
    /// Its name.
    pub name: String,
    /// Its status.
    pub state: String,
    /// Whether `POST /jobs/{id}/stop` can stop it.
    #[serde(rename = "isStoppable")]
    pub is_stoppable: bool,
    /// When it was submitted.
    #[serde(rename = "start-time")]
    pub start_time: i64,
    /// When it ended, or -1.
    #[serde(rename = "end-time")]
    pub end_time: i64,
    /// Milliseconds from submission to its end, or to now.
    pub duration: i64,
    /// The server's time.
    pub now: i64,
    /// Its vertices.
    pub vertices: Vec<VertexSummary>,
    /// Its subtasks by state.
    #[serde(rename = "status-counts")]
    pub status_counts: TaskCounts,
    /// `weir`'s summary of the job (the fields `weir info --output json` prints).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
}

/// One input of a plan node.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanInput {
    /// Which input of the node (0 or 1).
    pub num: u8,
    /// The producing node's id.
    pub id: String,
    /// How records are distributed: `FORWARD`, `HASH`, `REBALANCE` or `BROADCAST`.
    pub ship_strategy: String,
    /// The exchange's kind.
    pub exchange: String,
}

/// One node of a job's plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanNode {
    /// Its id (the vertex id).
    pub id: String,
    /// Its parallelism.
    pub parallelism: u16,
    /// The chained operators.
    pub operator: String,
    /// The chained operators.
    pub description: String,
    /// The `uid` of each chained operator, in chain order.
    pub operator_uids: Vec<String>,
    /// Whether it starts with a source.
    pub is_source: bool,
    /// Whether it ends in a sink.
    pub is_sink: bool,
    /// Its inputs.
    pub inputs: Vec<PlanInput>,
}

/// A job's dataflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct Plan {
    /// The job's id.
    pub jid: String,
    /// Its name.
    pub name: String,
    /// `STREAMING`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its nodes in graph order.
    pub nodes: Vec<PlanNode>,
}

/// `GET /jobs/{id}/plan`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPlan {
    /// The plan.
    pub plan: Plan,
}

impl JobPlan {
    /// The plan of job `id` whose graph is `g` (also what `weir info` prints).
    pub fn of(id: weir_runtime::JobId, g: &weir_runtime::JobGraph) -> Self {
        let nodes = g
            .vertices
            .iter()
            .map(|vertex| PlanNode {
                id: vertex.id.to_string(),
                parallelism: vertex.parallelism,
                operator: vertex.name.clone(),
                description: vertex.name.clone(),
                operator_uids: vertex.operator_uids.clone(),
                is_source: vertex.is_source,
                is_sink: vertex.is_sink,
                inputs: g
                    .edges
                    .iter()
                    .filter(|e| e.target == vertex.id)
                    .map(|e| PlanInput {
                        num: e.target_input,
                        id: e.source.to_string(),
                        ship_strategy: e.partitioning.to_string(),
                        exchange: "pipelined_bounded".into(),
                    })
                    .collect(),
            })
            .collect();
        JobPlan {
            plan: Plan {
                jid: id.to_string(),
                name: g.name.clone(),
                kind: "STREAMING".into(),
                nodes,
            },
        }
    }
}

/// One subtask of a vertex.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SubtaskDetails {
    /// Its index.
    pub subtask: u16,
    /// Its state.
    pub status: String,
    /// The run it belongs to.
    pub attempt: u32,
    /// The TaskManager it is deployed on.
    pub taskmanager_id: u64,
    /// That TaskManager's address, if it is registered.
    pub host: Option<String>,
    /// When the run was deployed, or -1.
    pub start_time: i64,
}

/// `GET /jobs/{id}/vertices/{vid}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VertexDetails {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its parallelism.
    pub parallelism: u16,
    /// Its number of key groups.
    #[serde(rename = "maxParallelism")]
    pub max_parallelism: u16,
    /// The server's time.
    pub now: i64,
    /// Its subtasks.
    pub subtasks: Vec<SubtaskDetails>,
}

/// One failure of the exception history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionInfo {
    /// The kind of failure (`user`, `io`, `checkpoint`, `lost-taskmanager`, ...).
    #[serde(rename = "exceptionName")]
    pub exception_name: String,
    /// The failure's message (Flink's name for it).
    pub stacktrace: String,
    /// When the JobManager learned it.
    pub timestamp: i64,
    /// The failed task, if a task failed.
    #[serde(rename = "taskName")]
    pub task_name: Option<String>,
    /// The failed subtask's index, if a task failed.
    pub subtask: Option<u16>,
    /// The run that failed.
    pub attempt: u32,
}

/// The exception history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionHistory {
    /// The latest failures, newest first.
    pub entries: Vec<ExceptionInfo>,
    /// Whether older ones were dropped.
    pub truncated: bool,
}

/// `GET /jobs/{id}/exceptions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobExceptions {
    /// The newest failure's message, if any.
    #[serde(rename = "root-exception")]
    pub root_exception: Option<String>,
    /// When it happened.
    pub timestamp: Option<i64>,
    /// The failures, newest first.
    #[serde(rename = "exceptionHistory")]
    pub exception_history: ExceptionHistory,
}

/// The body of `POST /jobs/{id}/savepoints` (Flink's).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SavepointBody {
    /// Where (default: the job's `state.savepoints.dir`).
    pub target_directory: Option<String>,
    /// Stop the job once the savepoint completed (it then ends `FINISHED`).
    #[serde(default)]
    pub cancel_job: bool,
}

/// The body of `POST /jobs/{id}/stop` (Flink's).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StopBody {
    /// Where (default: the job's `state.savepoints.dir`).
    #[serde(rename = "targetDirectory")]
    pub target_directory: Option<String>,
    /// Emit the final watermark first, so every event-time window fires.
    #[serde(default)]
    pub drain: bool,
}

/// The body of `POST /jobs/{id}/checkpoints` (Flink's `checkpointType` is accepted and
/// ignored: a checkpoint is full or incremental as the job's state backend takes them).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CheckpointBody {
    /// `FULL`, `INCREMENTAL` or `CONFIGURED` (ignored).
    #[serde(rename = "checkpointType")]
    pub checkpoint_type: Option<String>,
}

/// The answer to an action that completes later: its trigger id.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerResponse {
    /// Poll `GET /jobs/{id}/savepoints/{triggerid}` (or `.../checkpoints/{triggerid}`).
    #[serde(rename = "request-id")]
    pub request_id: String,
}

/// Where an asynchronous operation is.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationStatus {
    /// `IN_PROGRESS` or `COMPLETED`.
    pub id: String,
}

/// Why an operation failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureCause {
    /// The kind of error.
    pub class: String,
    /// Its message (Flink's name for it).
    #[serde(rename = "stack-trace")]
    pub stack_trace: String,
}

/// The outcome of a completed operation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationOutcome {
    /// Where the savepoint (or checkpoint) is, if it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The checkpoint's id, for a checkpoint that completed.
    #[serde(rename = "checkpointId", skip_serializing_if = "Option::is_none")]
    pub checkpoint_id: Option<u64>,
    /// Why it failed, if it did.
    #[serde(rename = "failure-cause", skip_serializing_if = "Option::is_none")]
    pub failure_cause: Option<FailureCause>,
}

/// `GET /jobs/{id}/savepoints/{triggerid}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationResult {
    /// Where it is.
    pub status: OperationStatus,
    /// Its outcome, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationOutcome>,
}

/// An empty answer (`PATCH /jobs/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

/// `GET /jobs`: every job with the fields of `weir list --output json`, each also with
/// Flink's `id` (and `status`).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobsList {
    /// Every job, in submission order.
    #[schema(value_type = Vec<Object>)]
    pub jobs: Vec<serde_json::Value>,
}
