//! Where a job of the standalone cluster runs: slots on the TaskManagers alive now, and a
//! worker process for the job on each of them. Every JobMaster asks this [`Placement`] on
//! each (re)start, and tells it when the job was deployed and when it ended.
//!
//! Invariants: a placement waits at most `slot.request.timeout` for slots and
//! `worker.register.timeout` for workers; it stops waiting as soon as the job has ended; a
//! job's slots and workers are released when it ends, and before it is placed again.

use super::{Cluster, ClusterError, State};
use crate::{Endpoints, Placement, PlacementProgress};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use weir_runtime::control::{
    JobManagerMessage, TaskManagerGateway, TaskManagerId, TaskManagerInfo,
};
use weir_runtime::rpc::messages::{TaskManagerCommand, WorkerCommand, WorkerSpec};
use weir_runtime::rpc::FencedSender;
use weir_runtime::JobId;

/// Sends a job's control messages to its worker on one TaskManager.
struct WorkerGateway(FencedSender<WorkerCommand>);

impl TaskManagerGateway for WorkerGateway {
    fn send(&self, message: JobManagerMessage) {
        let _ = self.0.send(WorkerCommand::Task(message));
    }
}

/// The cluster as its JobMasters' placement.
pub(super) struct ClusterPlacement(pub(super) Weak<Cluster>);

impl Placement for ClusterPlacement {
    fn place(
        &self,
        job: JobId,
        _attempt: u32,
        progress: &PlacementProgress,
    ) -> Result<Endpoints, ClusterError> {
        match self.0.upgrade() {
            Some(c) => c.place(job, progress),
            None => Err(ClusterError::ShuttingDown),
        }
    }

    fn deployed(&self, job: JobId) {
        if let Some(c) = self.0.upgrade() {
            c.check_workers(job);
        }
    }

    fn ended(&self, job: JobId) {
        if let Some(c) = self.0.upgrade() {
            c.release(job);
            c.record_end(job);
        }
    }
}

impl Cluster {
    /// Whether job `id` has ended (or is unknown): its placement stops waiting.
    fn job_ended(&self, id: JobId) -> bool {
        self.dispatcher
            .status(id)
            .is_none_or(|s| s.status.is_terminal())
    }

    /// Finds slots for job `id` (waiting up to the slot timeout), starts its missing
    /// workers and waits for them to register; returns where its subtasks go.
    fn place(&self, id: JobId, progress: &PlacementProgress) -> Result<Endpoints, ClusterError> {
        let (mut s, allocation) = self.allocate(id, progress)?;
        let spec = s
            .jobs
            .get(&id)
            .ok_or(ClusterError::UnknownJob(id))?
            .worker
            .clone();
        self.start_workers(&mut s, id, &allocation, spec);
        info!(job_id = %id, ?allocation, "job placed");
        self.await_workers(s, id, &allocation)
    }

    /// Takes the slots job `id` needs, waiting for them (bounded); its previous slots are
    /// given up first.
    fn allocate(
        &self,
        id: JobId,
        progress: &PlacementProgress,
    ) -> Result<(MutexGuard<'_, State>, BTreeMap<TaskManagerId, u32>), ClusterError> {
        let deadline = Instant::now() + self.settings.slot_timeout;
        let mut s = self.lock();
        let previous: BTreeSet<TaskManagerId> = match s.jobs.get_mut(&id) {
            Some(j) => std::mem::take(&mut j.allocation).into_keys().collect(),
            None => BTreeSet::new(),
        };
        let mut waiting = false;
        let allocation = loop {
            let job = s.jobs.get(&id).ok_or(ClusterError::UnknownJob(id))?;
            let needed = job.graph.slots_needed();
            let free: BTreeMap<TaskManagerId, u32> = s
                .taskmanagers
                .iter()
                .map(|(tm, t)| {
                    let used: u32 = s.jobs.values().filter_map(|j| j.allocation.get(tm)).sum();
                    (*tm, t.slots.saturating_sub(used))
                })
                .collect();
            if let Some(a) = super::slots::allocate(needed, &free) {
                break a;
            }
            if self.job_ended(id) {
                return Err(ClusterError::Cancelled);
            }
            let total_free: u32 = free.values().sum();
            let message = format!(
                "needs {needed} slots; {total_free} free on {} taskmanagers",
                free.len()
            );
            let now = Instant::now();
            if now >= deadline {
                return Err(ClusterError::SlotTimeout {
                    name: job.graph.name.clone(),
                    need: message,
                    waited_s: self.settings.slot_timeout.as_secs(),
                });
            }
            if !waiting {
                info!(job_id = %id, %message, "job waits for slots");
                waiting = true;
            }
            progress.waiting(message);
            s = self.wait_changed(s, (deadline - now).min(Duration::from_secs(1)));
        };
        let job = s.jobs.get_mut(&id).expect("checked in the loop");
        job.allocation = allocation.clone();
        self.stop_workers(
            &mut s,
            id,
            |tm| !allocation.contains_key(&tm),
            "the job was placed on other taskmanagers",
        );
        s.worker_failures.retain(|(j, _), _| *j != id);
        for tm in previous.difference(&allocation.keys().copied().collect()) {
            // A worker there that never registered is stopped by its TaskManager.
            if let Some(t) = s.taskmanagers.get(tm) {
                let _ = t.commands.send(TaskManagerCommand::StopWorker { job: id });
            }
        }
        Ok((s, allocation))
    }

    /// Asks each TaskManager of `allocation` without a worker of job `id` to start one.
    fn start_workers(
        &self,
        s: &mut State,
        id: JobId,
        allocation: &BTreeMap<TaskManagerId, u32>,
        spec: WorkerSpec,
    ) {
        for tm in allocation.keys() {
            if s.workers.contains_key(&(id, *tm)) {
                continue;
            }
            s.next_start += 1;
            let start = s.next_start;
            s.starts.insert((id, *tm), start);
            if let Some(t) = s.taskmanagers.get(tm) {
                let spec = WorkerSpec {
                    start,
                    ..spec.clone()
                };
                let _ = t
                    .commands
                    .send(TaskManagerCommand::StartWorker(Box::new(spec)));
            }
        }
    }

    /// Waits (bounded) until every worker of `allocation` registered; returns them.
    fn await_workers(
        &self,
        mut s: MutexGuard<'_, State>,
        id: JobId,
        allocation: &BTreeMap<TaskManagerId, u32>,
    ) -> Result<Endpoints, ClusterError> {
        let deadline = Instant::now() + self.settings.worker_timeout;
        loop {
            let mut endpoints: Endpoints = Vec::new();
            for (tm, slots) in allocation {
                if !s.taskmanagers.contains_key(tm) {
                    return Err(ClusterError::TaskManagerLost(*tm));
                }
                if let Some(why) = s.worker_failures.get(&(id, *tm)) {
                    return Err(ClusterError::WorkerFailed {
                        taskmanager: *tm,
                        reason: why.clone(),
                    });
                }
                if let Some(w) = s.workers.get(&(id, *tm)) {
                    let info = TaskManagerInfo {
                        id: *tm,
                        slots: *slots,
                        data_address: w.data_address,
                    };
                    endpoints.push((info, Arc::new(WorkerGateway(w.commands.clone()))));
                }
            }
            if endpoints.len() == allocation.len() {
                return Ok(endpoints);
            }
            if !s.jobs.contains_key(&id) || self.job_ended(id) {
                return Err(ClusterError::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClusterError::WorkersTimedOut(
                    self.settings.worker_timeout.as_secs(),
                ));
            }
            s = self.wait_changed(s, (deadline - now).min(Duration::from_secs(1)));
        }
    }

    /// Fails the subtasks of `job` placed on a TaskManager whose worker is gone: a worker
    /// lost between its placement and its deployment had no subtasks to fail then.
    pub(super) fn check_workers(&self, job: JobId) {
        let gone: Vec<TaskManagerId> = {
            let s = self.lock();
            let Some(j) = s.jobs.get(&job) else {
                return;
            };
            j.allocation
                .keys()
                .filter(|tm| !s.workers.contains_key(&(job, **tm)))
                .copied()
                .collect()
        };
        for tm in gone {
            let reason = format!(
                "the worker of job {job} on taskmanager {tm} was lost while the job deployed"
            );
            warn!(job_id = %job, taskmanager = tm, "job worker lost while deploying");
            self.dispatcher.fail_subtasks_on(job, tm, &reason);
        }
    }

    /// Job `id` ended: frees its slots and stops its workers.
    pub(super) fn release(&self, id: JobId) {
        let mut s = self.lock();
        let allocated: Vec<TaskManagerId> = match s.jobs.get_mut(&id) {
            Some(j) => std::mem::take(&mut j.allocation).into_keys().collect(),
            None => Vec::new(),
        };
        self.stop_workers(&mut s, id, |_| true, "the job ended");
        // Workers that never registered (still starting) are stopped by their TaskManager.
        for tm in allocated {
            if let Some(t) = s.taskmanagers.get(&tm) {
                let _ = t.commands.send(TaskManagerCommand::StopWorker { job: id });
            }
        }
        s.worker_failures.retain(|(j, _), _| *j != id);
        s.starts.retain(|(j, _), _| *j != id);
        drop(s);
        self.changed.notify_all();
    }

    /// Stops the workers of `job` on the TaskManagers `which` selects.
    fn stop_workers(
        &self,
        s: &mut State,
        job: JobId,
        which: impl Fn(TaskManagerId) -> bool,
        reason: &str,
    ) {
        let stop: Vec<TaskManagerId> = s
            .workers
            .keys()
            .filter(|(j, tm)| *j == job && which(*tm))
            .map(|(_, tm)| *tm)
            .collect();
        for tm in stop {
            if let Some(w) = s.workers.remove(&(job, tm)) {
                let _ = w.commands.send(WorkerCommand::Exit {
                    reason: reason.to_string(),
                });
            }
            if let Some(t) = s.taskmanagers.get(&tm) {
                let _ = t.commands.send(TaskManagerCommand::StopWorker { job });
            }
        }
    }

    fn wait_changed<'a>(
        &self,
        s: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(s, timeout)
            .expect("cluster state poisoned")
            .0
    }
}
