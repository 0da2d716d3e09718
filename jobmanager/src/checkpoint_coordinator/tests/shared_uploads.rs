//! A task that uploads one local file for two checkpoints, or names an upload a later
//! checkpoint replaced, leaves every completed checkpoint restorable: the metadata names
//! each local file's canonical upload, which stays while any retained checkpoint holds it.

use super::*;

/// The name the uploader gives local file `000021.sst` of subtask 0 uploaded for
/// `checkpoint`.
fn upload_name(checkpoint: CheckpointId) -> String {
    format!("count-0a1b2c3d-0-00000000000000ab-{checkpoint}-000021.sst")
}

/// Stores the upload of `000021.sst` for `uploaded_for` (unless it is stored already) and
/// returns subtask 0's acknowledgement of `checkpoint` naming it.
fn naming(
    c: &Harness,
    checkpoint: CheckpointId,
    uploaded_for: CheckpointId,
) -> Vec<OperatorSubtaskState> {
    let path = CheckpointStorage::shared_path(JOB, &upload_name(uploaded_for));
    if uploaded_for == checkpoint {
        c.storage().write_shared(&path, b"sst".to_vec()).unwrap();
    }
    let mut s = state(c, checkpoint, 0);
    s[0].handle
        .shared
        .push(weir_runtime::checkpoint::SharedStateFile {
            local: "000021.sst".into(),
            path,
            size: 3,
            checksum: crc32fast::hash(b"sst"),
        });
    s
}

/// Completes the next checkpoint with subtask 0 naming the upload made for
/// `uploaded_for` (the checkpoint itself: a new upload).
fn complete(
    c: &mut Harness,
    now: &mut Instant,
    uploaded_for: Option<CheckpointId>,
) -> CheckpointId {
    *now += Duration::from_secs(1);
    let id = triggered(&c.tick(*now, 0)).expect("due");
    let s0 = naming(c, id, uploaded_for.unwrap_or(id));
    c.acknowledge(*now, task(0), id, s0, 0);
    let s1 = state(c, id, 1);
    let actions = c.acknowledge(*now, task(1), id, s1, 0);
    assert!(actions.contains(&CoordinatorAction::NotifyComplete {
        checkpoint: id,
        last: false
    }));
    id
}

/// The shared paths the latest usable checkpoint names, each readable.
fn restorable(c: &Harness) -> (CheckpointId, Vec<String>) {
    let m = c.storage().latest_usable(JOB).expect("a usable checkpoint");
    let files: Vec<_> = m.shared_files().cloned().collect();
    for f in &files {
        c.storage()
            .read_shared(f)
            .expect("every shared file is stored");
    }
    (m.checkpoint, files.into_iter().map(|f| f.path).collect())
}

#[test]
fn a_local_file_uploaded_twice_keeps_one_upload_that_every_later_checkpoint_can_name() {
    let mut cfg = config();
    cfg.retained = 1;
    let mut c = coordinator(cfg);
    let mut now = Instant::now();
    let canonical = CheckpointStorage::shared_path(JOB, &upload_name(1));
    let first = complete(&mut c, &mut now, None);
    // The task took checkpoint 2 before it learnt that 1 completed: a second upload.
    let second = complete(&mut c, &mut now, None);
    assert_eq!(restorable(&c), (second, vec![canonical.clone()]));
    let duplicate = CheckpointStorage::shared_path(JOB, &upload_name(second));
    assert!(
        c.storage()
            .read_shared(&weir_runtime::checkpoint::SharedStateFile {
                local: "000021.sst".into(),
                path: duplicate,
                size: 3,
                checksum: crc32fast::hash(b"sst"),
            })
            .is_err(),
        "the duplicate upload is deleted"
    );
    // A task still on checkpoint 1's uploads, then one on its own view of checkpoint 2's.
    let third = complete(&mut c, &mut now, Some(first));
    assert_eq!(restorable(&c), (third, vec![canonical.clone()]));
    let fourth = complete(&mut c, &mut now, Some(second));
    assert_eq!(restorable(&c), (fourth, vec![canonical]));
}
