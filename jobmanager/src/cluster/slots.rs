//! Slot allocation across TaskManagers.
//!
//! With slot sharing a job needs as many slots as its highest parallelism. They are taken
//! round-robin over the TaskManagers with free slots, in id order (one from each, then a
//! second from each, ...), so a job's subtasks spread over machines as the scheduler's
//! placement inside the allocation does. Pure: the same free slots give the same result.

use std::collections::BTreeMap;
use weir_runtime::control::TaskManagerId;

/// Takes `needed` slots from `free` (free slots per TaskManager); `None` if there are
/// fewer. The result holds only TaskManagers with at least one slot taken.
pub fn allocate(
    needed: u32,
    free: &BTreeMap<TaskManagerId, u32>,
) -> Option<BTreeMap<TaskManagerId, u32>> {
    if free.values().map(|f| *f as u64).sum::<u64>() < needed as u64 {
        return None;
    }
    let mut taken: BTreeMap<TaskManagerId, u32> = BTreeMap::new();
    let mut left = needed;
    let mut round = 0;
    while left > 0 {
        for (tm, f) in free {
            if left == 0 {
                break;
            }
            if *f > round {
                *taken.entry(*tm).or_default() += 1;
                left -= 1;
            }
        }
        round += 1;
    }
    Some(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(f: &[(u32, u32)]) -> BTreeMap<u32, u32> {
        f.iter().copied().collect()
    }

    #[test]
    fn slots_are_taken_round_robin_over_taskmanagers() {
        let a = allocate(3, &free(&[(0, 4), (1, 4)])).unwrap();
        assert_eq!(a, free(&[(0, 2), (1, 1)]));
    }

    #[test]
    fn a_full_taskmanager_is_skipped_and_one_with_room_takes_the_rest() {
        let a = allocate(4, &free(&[(0, 0), (1, 1), (2, 5)])).unwrap();
        assert_eq!(a, free(&[(1, 1), (2, 3)]));
    }

    #[test]
    fn too_few_free_slots_allocate_nothing() {
        assert_eq!(allocate(3, &free(&[(0, 1), (1, 1)])), None);
        assert_eq!(allocate(1, &free(&[])), None);
    }
}
