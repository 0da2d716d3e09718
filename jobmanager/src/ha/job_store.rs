//! The job graph store and the job result store (Flink's `JobGraphStore` and
//! `JobResultStore`) on ZooKeeper and `high-availability.storageDir`.
//!
//! A submitted job is written to storage (`jobs/<job-id>`: the submission as the client
//! sent it, with the job's id) and then pointed to by the znode `jobgraphs/<job-id>`;
//! only then is the submission acknowledged, so an acknowledged job survives the leader.
//! When the job ends, its pointer is replaced by its result (`jobresults/<job-id>`, the
//! job's summary) in one multi-op, so a job is always either recoverable or ended, never
//! both and never neither; its stored submission and checkpoint record go afterwards.
//!
//! Invariant: a leader recovers exactly the jobs with a pointer, under the same ids.

use super::checkpoint_record::CHECKPOINTS;
use super::services::{encode, HaServices, Write};
use serde::{Deserialize, Serialize};
use tracing::warn;
use weir_runtime::ha::HaError;
use weir_runtime::rpc::messages::{JobSubmission, JobSummary};
use weir_runtime::JobId;

/// The znode under which every non-terminal job's pointer lives.
pub(crate) const JOB_GRAPHS: &str = "/jobgraphs";
/// The znode under which every ended job's result lives.
pub(crate) const JOB_RESULTS: &str = "/jobresults";

/// A submitted job as the job graph store keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredJob {
    /// The id the job was given when submitted.
    pub id: JobId,
    /// What the client submitted.
    pub submission: JobSubmission,
    /// When it was first submitted (milliseconds since the epoch).
    pub submitted_ms: i64,
}

/// A job found in the job graph store: its id and the stored job, or why it cannot be read.
pub type Recovered = (JobId, Result<StoredJob, HaError>);

#[derive(Serialize, Deserialize)]
struct JobPointer {
    /// The stored submission's URL.
    location: String,
}

/// The stored submission's path inside the storage directory.
fn job_file(id: JobId) -> String {
    format!("jobs/{id}")
}

fn pointer(id: JobId) -> String {
    format!("{JOB_GRAPHS}/{id}")
}

fn result(id: JobId) -> String {
    format!("{JOB_RESULTS}/{id}")
}

/// Parses a znode name written as a job id (16 hex digits).
fn job_id(name: &str) -> Option<JobId> {
    u64::from_str_radix(name, 16).ok().map(JobId)
}

impl HaServices {
    /// Persists `job`: its submission into storage, then its pointer (and the parent of
    /// its checkpoint record) into ZooKeeper. Once this returns the job survives this
    /// leader.
    pub fn put_job(&self, job: &StoredJob) -> Result<(), HaError> {
        let file = job_file(job.id);
        self.storage()
            .write_file(&file, job)
            .map_err(|e| HaError::Storage {
                url: self.storage().file_url(&file),
                reason: e.to_string(),
            })?;
        let location = self.storage().file_url(&file);
        let checkpoints = format!("{CHECKPOINTS}/{}", job.id);
        self.write(
            "create",
            &[
                Write::Create(&pointer(job.id), encode(JobPointer { location })),
                Write::Create(&checkpoints, Vec::new()),
            ],
        )
    }

    /// Every job with a pointer, read back from storage (or why it cannot be).
    pub fn recover_jobs(&self) -> Result<Vec<Recovered>, HaError> {
        let mut jobs = Vec::new();
        for name in self.children(JOB_GRAPHS)? {
            let Some(id) = job_id(&name) else {
                warn!(znode = %name, "ignoring a znode under {JOB_GRAPHS} that names no job");
                continue;
            };
            jobs.push((id, self.read_job(id)));
        }
        Ok(jobs)
    }

    fn read_job(&self, id: JobId) -> Result<StoredJob, HaError> {
        let path = pointer(id);
        let Some(JobPointer { location }) = self.read(&path)? else {
            return Err(HaError::BadData {
                path,
                reason: "the pointer vanished while it was read".into(),
            });
        };
        let file = job_file(id);
        let job: StoredJob = self
            .storage()
            .read_file(&file)
            .map_err(|e| HaError::Storage {
                url: location.clone(),
                reason: e.to_string(),
            })?;
        if job.id != id {
            return Err(HaError::BadData {
                path,
                reason: format!("{location} holds job {}", job.id),
            });
        }
        Ok(job)
    }

    /// Records that job `summary.id` ended: its pointer is replaced by its result, then
    /// its stored submission and checkpoint record are deleted.
    pub fn job_ended(&self, summary: &JobSummary) -> Result<(), HaError> {
        let id = summary.id;
        let done = encode(summary);
        match self.write(
            "record the end",
            &[
                Write::Delete(&pointer(id)),
                Write::Create(&result(id), done.clone()),
            ],
        ) {
            // A job recovered without a pointer (or recorded already) needs its result only.
            Err(HaError::Request { .. }) => self.put("record the end", &result(id), done)?,
            other => other?,
        }
        let checkpoints = format!("{CHECKPOINTS}/{id}");
        for child in self.children(&checkpoints)? {
            self.delete(&format!("{checkpoints}/{child}"))?;
        }
        self.delete(&checkpoints)?;
        let file = job_file(id);
        self.storage()
            .delete_file(&file)
            .map_err(|e| HaError::Storage {
                url: self.storage().file_url(&file),
                reason: e.to_string(),
            })
    }

    /// The results of every job that ended under any leader.
    pub fn job_results(&self) -> Result<Vec<JobSummary>, HaError> {
        let mut results = Vec::new();
        for name in self.children(JOB_RESULTS)? {
            let path = format!("{JOB_RESULTS}/{name}");
            match self.read::<JobSummary>(&path) {
                Ok(Some(s)) => results.push(s),
                Ok(None) => {}
                Err(e) => warn!(znode = %path, error = %e, "ignoring an unreadable job result"),
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::super::services::decode;
    use super::*;

    #[test]
    fn a_znode_name_is_a_job_id_only_when_it_is_hex() {
        let id = JobId(0x00ab_cdef_0123_4567);
        assert_eq!(job_id(&id.to_string()), Some(id));
        assert_eq!(job_id("latch-1"), None);
        let summary_bytes = encode(JobPointer {
            location: "file:///x/jobs/1".into(),
        });
        let back: JobPointer = decode("/jobgraphs/1", &summary_bytes).unwrap();
        assert_eq!(back.location, "file:///x/jobs/1");
        assert!(decode::<JobPointer>("/jobgraphs/1", b"{}").is_err());
    }
}
