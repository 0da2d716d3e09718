//! Broadcast state in checkpoints: the state a broadcast process function keeps beside
//! (and apart from) its operator's keyed state, stored as operator list state under a name
//! derived from the operator's `uid`.
//!
//! Every subtask holds the same broadcast state (each applies the same broadcast records in
//! the same order before the same barriers), so only subtask 0 stores it; every subtask of
//! the restoring job, at any parallelism, reads that one copy back (the union of all
//! subtasks' lists, of which only subtask 0's has entries).

use super::restore::RestoredState;
use crate::error::TaskError;

/// What follows an operator's `uid` in the name of its broadcast state.
const SUFFIX: &str = "/broadcast-state";

/// The state name of the broadcast state of operator `uid`.
pub fn broadcast_uid(uid: &str) -> String {
    format!("{uid}{SUFFIX}")
}

/// The operator whose broadcast state `state_uid` holds; `None` for any other state.
pub fn owner_of(state_uid: &str) -> Option<&str> {
    state_uid.strip_suffix(SUFFIX)
}

impl RestoredState {
    /// The entries of operator `uid`'s broadcast state (`None` if the snapshot has none).
    pub fn broadcast(&self, uid: &str) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        self.union_list(&broadcast_uid(uid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broadcast_state_name_leads_back_to_its_operator() {
        let name = broadcast_uid("rules");
        assert_eq!(owner_of(&name), Some("rules"));
        assert_eq!(owner_of("rules"), None);
    }
}
