//! Exactly-once through PostgreSQL's two-phase commit (Flink's XA sink), one transaction
//! per subtask per checkpoint.
//!
//! At a barrier the subtask's open transaction is prepared under the global id
//! `weir-<job>-<operator>-<subtask>-<checkpoint>` (the operator is the sink's uid, made
//! safe for a string literal) and listed, with every prepared one not yet committed, in
//! the subtask's [`PreparedState`] in the checkpoint. When the checkpoint completes they
//! are committed. After a restore, each state's transactions are committed if still
//! prepared (they belong to a completed checkpoint), and every other prepared transaction
//! of the same job and old subtask is rolled back: no completed checkpoint covers it (a
//! later checkpoint's, or one an older attempt still alive prepared), and the restored job
//! writes its records again. Of another job's (this one started from its savepoint), those
//! of later checkpoints are rolled back too, as nobody would release their locks; should
//! that job still run, its commit finds the transaction aborted (by its transaction id)
//! and fails, so it restores and writes those records again instead of losing them. A subtask without state of its own job (a start without
//! state, a restore from another job's savepoint, or no state at a new parallelism) rolls
//! back whatever its job and index prepared before.
//!
//! Invariants: a prepared transaction is committed only once its checkpoint (or a later
//! one) completed; one is rolled back only by the subtask that restores its old subtask's
//! state of the same job (old subtask `j` goes to new subtask `j mod parallelism`, which is
//! `j` itself whenever a new subtask `j` exists), so a rollback never races a transaction
//! the new run prepares; a commit that finds its transaction gone succeeds only if it was
//! committed; the operator part of an id carries a hash of the exact uid, so two sinks never
//! share ids. Prepared transactions survive a server restart, so a completed checkpoint's
//! records are never lost to one.

use serde::{Deserialize, Serialize};
use weir_runtime::JobId;

/// Longest operator part of a global transaction id (PostgreSQL allows 200 bytes in all).
const MAX_OPERATOR_CHARS: usize = 120;

/// The prefix of every global transaction id of the sink `uid` in `job`:
/// `weir-<job>-<operator>-`, the operator being the uid made safe (and cut to 120
/// characters) followed by `_` and a hash of the exact uid.
pub fn transaction_prefix(job: JobId, uid: &str) -> String {
    // FNV-1a: stable across releases and platforms, unlike the standard library's hasher.
    let hash = uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let operator: String = uid
        .chars()
        .take(MAX_OPERATOR_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("weir-{job}-{operator}_{:08x}-", hash as u32)
}

/// The global id of subtask `subtask`'s transaction for `checkpoint`.
pub(crate) fn gid(prefix: &str, subtask: u16, checkpoint: u64) -> String {
    format!("{prefix}{subtask}-{checkpoint}")
}

/// The subtask and checkpoint of a global id under `prefix`, if it is one.
pub(crate) fn parse_gid(prefix: &str, gid: &str) -> Option<(u16, u64)> {
    let rest = gid.strip_prefix(prefix)?;
    let (subtask, checkpoint) = rest.split_once('-')?;
    Some((subtask.parse().ok()?, checkpoint.parse().ok()?))
}

/// What one subtask's pre-commit puts into a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PreparedState {
    /// The prefix of the job that prepared them (a job started from a savepoint has
    /// another id).
    pub(crate) prefix: String,
    /// The subtask that prepared them.
    pub(crate) subtask: u16,
    /// The checkpoint.
    pub(crate) checkpoint: u64,
    /// Prepared and not yet committed, oldest first.
    pub(crate) gids: Vec<String>,
}

/// A global id as an SQL string literal.
pub(crate) fn literal(gid: &str) -> String {
    format!("'{}'", gid.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_name_job_operator_subtask_and_checkpoint() {
        let prefix = transaction_prefix(JobId(0xab), "sensor windows 'out'");
        assert!(prefix.starts_with("weir-00000000000000ab-sensor_windows__out__"));
        assert_ne!(
            prefix,
            transaction_prefix(JobId(0xab), "sensor_windows__out__")
        );
        let id = gid(&prefix, 3, 42);
        assert_eq!(id, format!("{prefix}3-42"));
        assert_eq!(parse_gid(&prefix, &id), Some((3, 42)));
        assert_eq!(parse_gid(&prefix, "weir-other-3-42"), None);
        assert_eq!(parse_gid(&prefix, &format!("{prefix}x-1")), None);
        let long = transaction_prefix(JobId(1), &"u".repeat(500));
        assert!(gid(&long, u16::MAX, u64::MAX).len() <= 200);
        assert_eq!(literal("a'b"), "'a''b'");
    }
}
