//! Data in flight of unaligned checkpoints through real checkpoint storage: each subtask
//! reads back what it stored at the same parallelism, and in-flight data stored at another
//! parallelism is refused with an error that says why and what to do.

use weir_runtime::checkpoint::channel_state::{input_uid, output_uid, ChannelBuffer, ChannelData};
use weir_runtime::checkpoint::{
    checkpoint_dir, CheckpointMetadata, CheckpointStorage, OperatorSnapshot, OperatorStateHandles,
    RestoredState,
};
use weir_runtime::control::RestoreSpec;
use weir_runtime::JobId;

const JOB: JobId = JobId(21);

fn data(byte: u8, buffers: usize) -> ChannelData {
    let stored = (0..buffers)
        .map(|i| ChannelBuffer {
            bytes: vec![byte; i + 1],
            flags: 0,
            complete: i as u32 + 1,
        })
        .collect();
    vec![(1, stored)]
}

/// Stores checkpoint 4 with `per_subtask` as state `uid` of each of its subtasks.
fn stored(dir: &std::path::Path, uid: &str, per_subtask: &[ChannelData]) -> RestoreSpec {
    let url = format!("file://{}", dir.display());
    let storage = CheckpointStorage::open(&url).unwrap();
    let subtasks = per_subtask
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let snapshot = OperatorSnapshot::channels(uid, d).unwrap();
            let file = format!("channels-{i}");
            storage
                .write_state(JOB, 4, &file, i as u16, (0, 0), &snapshot.bytes)
                .unwrap()
        })
        .collect();
    let metadata = CheckpointMetadata {
        job: JOB,
        job_name: "unaligned".into(),
        checkpoint: 4,
        timestamp_ms: 0,
        savepoint: false,
        operators: vec![OperatorStateHandles {
            uid: uid.into(),
            parallelism: per_subtask.len() as u16,
            max_parallelism: 128,
            subtasks,
        }],
    };
    storage.write_metadata(&metadata).unwrap();
    RestoreSpec {
        storage: url,
        dir: checkpoint_dir(JOB, 4),
        metadata,
    }
}

#[test]
fn each_subtask_reads_back_its_own_data_in_flight_at_the_same_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let uid = output_uid(3, 1);
    let spec = stored(dir.path(), &uid, &[data(7, 2), data(8, 3)]);
    let restored = RestoredState::open(&spec).unwrap();
    assert_eq!(restored.channel_data(&uid, 1, 2).unwrap(), Some(data(8, 3)));
    assert_eq!(restored.channel_data(&uid, 0, 2).unwrap(), Some(data(7, 2)));
    assert_eq!(restored.channel_data(&input_uid(3), 0, 2).unwrap(), None);
}

#[test]
fn data_in_flight_stored_at_another_parallelism_is_refused_unless_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let uid = input_uid(2);
    let spec = stored(dir.path(), &uid, &[data(1, 1), Vec::new()]);
    let restored = RestoredState::open(&spec).unwrap();
    let err = restored.channel_data(&uid, 0, 3).unwrap_err().to_string();
    assert!(
        err.contains("parallelism 2") && err.contains("parallelism 3") && err.contains("savepoint"),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let spec = stored(empty.path(), &uid, &[Vec::new(), Vec::new()]);
    let restored = RestoredState::open(&spec).unwrap();
    assert_eq!(restored.channel_data(&uid, 2, 3).unwrap(), None);
}
