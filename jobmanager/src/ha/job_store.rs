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
use super::services::{HaServices, Write};
use serde::{Deserialize, Serialize};
use tracing::warn;
use weir_runtime::ha::znode::encode;
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
}

/// [`StoredJob`] as it is written, borrowing the submission (the same encoding).
#[derive(Serialize)]
struct StoredJobRef<'a> {
    id: JobId,
    submission: &'a JobSubmission,
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

impl HaServices {
    /// Persists job `id`: its submission into storage, then its pointer (and the parent
    /// of its checkpoint record) into ZooKeeper. Once this returns the job survives this
    /// leader.
    pub fn put_job(&self, id: JobId, submission: &JobSubmission) -> Result<(), HaError> {
        let file = job_file(id);
        self.storage()
            .write_file(&file, &StoredJobRef { id, submission })
            .map_err(self.storage_error(&file))?;
        let location = self.storage().file_url(&file);
        let checkpoints = format!("{CHECKPOINTS}/{id}");
        self.write(
            "create",
            &[
                Write::Create(&pointer(id), encode(&JobPointer { location })),
                Write::Create(&checkpoints, Vec::new()),
            ],
        )
    }

    /// Every job with a pointer, read back from storage (or why it cannot be).
    pub fn recover_jobs(&self) -> Result<Vec<Recovered>, HaError> {
        let mut jobs = Vec::new();
        for name in self.children(JOB_GRAPHS)? {
            let Some(id) = JobId::from_hex(&name) else {
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
        let job: StoredJob = self
            .storage()
            .read_file(&job_file(id))
            .map_err(self.storage_error(&job_file(id)))?;
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
            .map_err(self.storage_error(&file))
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
    use super::*;
    use weir_runtime::ha::znode::decode;

    #[test]
    fn a_znode_name_is_a_job_id_only_when_it_is_hex() {
        let id = JobId(0x00ab_cdef_0123_4567);
        assert_eq!(JobId::from_hex(&id.to_string()), Some(id));
        assert_eq!(JobId::from_hex("latch-1"), None);
        let summary_bytes = encode(&JobPointer {
            location: "file:///x/jobs/1".into(),
        });
        let back: JobPointer = decode("/jobgraphs/1", &summary_bytes).unwrap();
        assert_eq!(back.location, "file:///x/jobs/1");
        assert!(decode::<JobPointer>("/jobgraphs/1", b"{}").is_err());
    }
}
