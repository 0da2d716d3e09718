//! Exactly-once through PostgreSQL's two-phase commit (Flink's XA sink), one transaction
//! per subtask per checkpoint.
//!
//! At a barrier the subtask's open transaction is prepared under the global id
//! `weir-<job>-<operator>-<subtask>-<checkpoint>` (the operator is the sink's uid, made
//! safe for a string literal) and listed, with every prepared one not yet committed, in
//! the subtask's [`PreparedState`] in the checkpoint. When the checkpoint completes they
//! are committed. After a restore, each state's transactions are committed if still
//! prepared (they belong to a completed checkpoint), and every prepared transaction of
//! the same old subtask with a later checkpoint is rolled back: it holds records the
//! restored job writes again.
//!
//! Invariants: a prepared transaction is committed only once its checkpoint (or a later
//! one) completed; one is rolled back only by the subtask that restores its old subtask's
//! state (old subtask `j` goes to new subtask `j mod parallelism`, which is `j` itself
//! whenever a new subtask `j` exists), so a rollback never races a transaction the new run
//! prepares. Prepared transactions survive a server restart, so a completed checkpoint's
//! records are never lost to one.

use serde::{Deserialize, Serialize};
use weir_runtime::JobId;

/// Longest operator part of a global transaction id (PostgreSQL allows 200 bytes in all).
const MAX_OPERATOR_CHARS: usize = 120;

/// The prefix of every global transaction id of the sink `uid` in `job`:
/// `weir-<job>-<operator>-`.
pub fn transaction_prefix(job: JobId, uid: &str) -> String {
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
    format!("weir-{job}-{operator}-")
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
        assert_eq!(prefix, "weir-00000000000000ab-sensor_windows__out__-");
        let id = gid(&prefix, 3, 42);
        assert_eq!(id, "weir-00000000000000ab-sensor_windows__out__-3-42");
        assert_eq!(parse_gid(&prefix, &id), Some((3, 42)));
        assert_eq!(parse_gid(&prefix, "weir-other-3-42"), None);
        assert_eq!(parse_gid(&prefix, &format!("{prefix}x-1")), None);
        let long = transaction_prefix(JobId(1), &"u".repeat(500));
        assert!(gid(&long, u16::MAX, u64::MAX).len() <= 200);
        assert_eq!(literal("a'b"), "'a''b'");
    }
}
