//! Broadcast state in checkpoints: the state a broadcast process function keeps beside
//! (and apart from) its operator's keyed state, stored as operator list state under a name
//! derived from the operator's `uid`.
//!
//! Every subtask stores its own copy. At the parallelism it was taken at, each subtask
//! restores its own (so, with unaligned checkpoints, the copy matches the in-flight
//! broadcast records that subtask replays); at another parallelism (which aligned
//! checkpoints and savepoints allow), subtask `i` restores old subtask `i mod p_old`'s copy:
//! all copies hold the same entries when the broadcast side updates the state the same way
//! in every subtask, as it must.

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
    /// The entries of operator `uid`'s broadcast state for `subtask` (`None` if the
    /// snapshot has none).
    pub fn broadcast(&self, uid: &str, subtask: u16) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        self.copy_of(&broadcast_uid(uid), subtask)
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
