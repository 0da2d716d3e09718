//! Checkpoint storage on a real directory through `object_store`: complete checkpoints are
//! the ones with metadata, every file is verified when read, a restore falls back past
//! corrupt, truncated or missing files to an older retained checkpoint, and retention
//! leaves no orphaned files.

use std::path::Path;
use weir_runtime::checkpoint::{
    CheckpointMetadata, CheckpointStorage, OperatorStateHandles, StorageError, METADATA_FILE,
};
use weir_runtime::JobId;

const JOB: JobId = JobId(0xfeed);

fn storage(dir: &Path) -> CheckpointStorage {
    CheckpointStorage::open(&format!("file://{}", dir.display())).unwrap()
}

/// Writes a complete checkpoint `id` with two subtask state files.
fn complete(s: &CheckpointStorage, id: u64) -> CheckpointMetadata {
    let subtasks = (0..2u16)
        .map(|i| {
            let state = format!("state of subtask {i} at checkpoint {id}").repeat(10);
            s.write_state(
                JOB,
                id,
                &format!("window-{i}"),
                i,
                (i * 64, i * 64 + 63),
                state.as_bytes(),
            )
            .unwrap()
        })
        .collect();
    let m = CheckpointMetadata {
        job: JOB,
        job_name: "sensor".into(),
        checkpoint: id,
        timestamp_ms: 1_000 * id as i64,
        savepoint: false,
        operators: vec![OperatorStateHandles {
            uid: "window".into(),
            parallelism: 2,
            max_parallelism: 128,
            subtasks,
        }],
    };
    s.write_metadata(&m).unwrap();
    m
}

fn chk_file(dir: &Path, id: u64, file: &str) -> std::path::PathBuf {
    dir.join(JOB.to_string())
        .join(format!("chk-{id}"))
        .join(file)
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_checkpoint_is_complete_once_its_metadata_is_written_and_reads_back_verified() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(dir.path());
    let m = complete(&s, 1);
    // State files of checkpoint 2 without metadata: not complete.
    s.write_state(JOB, 2, "window-0", 0, (0, 63), b"partial")
        .unwrap();
    assert_eq!(s.completed(JOB).unwrap(), vec![1]);
    assert_eq!(s.latest_usable(JOB).unwrap(), m);
    let handle = &m.operators[0].subtasks[1];
    let state = s.read_state(JOB, 1, handle).unwrap();
    assert_eq!(
        state,
        "state of subtask 1 at checkpoint 1".repeat(10).into_bytes()
    );
    assert!(m.state_size() > 0);
}

#[test]
fn restore_falls_back_past_a_corrupt_state_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(dir.path());
    let older = complete(&s, 1);
    complete(&s, 2);
    let f = chk_file(dir.path(), 2, "window-1");
    let mut bytes = std::fs::read(&f).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&f, bytes).unwrap();
    let err = s.verify(JOB, 2).unwrap_err().to_string();
    assert!(
        err.contains("chk-2/window-1") && err.contains("checksum"),
        "{err}"
    );
    assert_eq!(s.latest_usable(JOB).unwrap(), older);
}

#[test]
fn truncated_or_wrong_version_metadata_and_missing_state_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(dir.path());
    let oldest = complete(&s, 1);
    complete(&s, 2);
    complete(&s, 3);
    complete(&s, 4);
    // 4: truncated metadata; 3: metadata of an unknown format version; 2: a state file gone.
    let meta4 = chk_file(dir.path(), 4, METADATA_FILE);
    let bytes = std::fs::read(&meta4).unwrap();
    std::fs::write(&meta4, &bytes[..bytes.len() / 2]).unwrap();
    let meta3 = chk_file(dir.path(), 3, METADATA_FILE);
    let mut bytes = std::fs::read(&meta3).unwrap();
    bytes[0] = 99;
    std::fs::write(&meta3, bytes).unwrap();
    std::fs::remove_file(chk_file(dir.path(), 2, "window-0")).unwrap();
    assert!(s
        .verify(JOB, 3)
        .unwrap_err()
        .to_string()
        .contains("version 99"));
    assert_eq!(s.latest_usable(JOB).unwrap(), oldest);
    // Without the last usable one, the error lists why each was rejected.
    std::fs::remove_file(chk_file(dir.path(), 1, "window-1")).unwrap();
    let err = s.latest_usable(JOB).unwrap_err();
    assert!(matches!(err, StorageError::NoUsableCheckpoint { .. }));
    let msg = err.to_string();
    for needle in [
        "chk-4/_metadata",
        "chk-3/_metadata",
        "chk-2/window-0",
        "chk-1/window-1",
    ] {
        assert!(msg.contains(needle), "{needle} missing from: {msg}");
    }
}

#[test]
fn metadata_of_another_checkpoint_or_job_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(dir.path());
    complete(&s, 1);
    complete(&s, 2);
    std::fs::copy(
        chk_file(dir.path(), 1, METADATA_FILE),
        chk_file(dir.path(), 2, METADATA_FILE),
    )
    .unwrap();
    let err = s.read_metadata(JOB, 2).unwrap_err().to_string();
    assert!(err.contains("describes checkpoint 1"), "{err}");
}

#[test]
fn after_fifty_checkpoints_only_the_retained_ones_remain_on_storage() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(dir.path());
    for id in 1..=50 {
        // An aborted checkpoint (state written, never completed) every tenth time.
        if id % 10 == 5 {
            s.write_state(JOB, id, "window-0", 0, (0, 63), b"aborted")
                .unwrap();
            continue;
        }
        complete(&s, id);
        s.retain(JOB, 2).unwrap();
    }
    assert_eq!(s.completed(JOB).unwrap(), vec![49, 50]);
    let want: Vec<String> = [49, 50]
        .iter()
        .flat_map(|id| {
            [METADATA_FILE, "window-0", "window-1"].map(|f| format!("{}/chk-{id}/{f}", JOB))
        })
        .collect();
    let mut want = want;
    want.sort();
    assert_eq!(files_under(dir.path()), want);
    let dirs = std::fs::read_dir(dir.path().join(JOB.to_string()))
        .unwrap()
        .count();
    assert_eq!(dirs, 2, "no empty checkpoint directories are left behind");
}

#[test]
fn a_checkpoint_directory_without_listed_files_is_incomplete_and_discarded() {
    // An upload that failed on a full disk after creating its directory leaves it empty;
    // one killed while it wrote leaves only its hidden staging file, which no listing shows.
    let dir = tempfile::tempdir().unwrap();
    let s = storage(dir.path());
    complete(&s, 1);
    let job_dir = dir.path().join(JOB.to_string());
    let empty = job_dir.join("chk-2");
    std::fs::create_dir_all(&empty).unwrap();
    let staged = job_dir.join("chk-3");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("window-0#7"), b"half an upload").unwrap();
    assert_eq!(s.incomplete(JOB).unwrap(), [2, 3]);
    assert_eq!(s.completed(JOB).unwrap(), [1]);
    s.discard(JOB, 2).unwrap();
    s.discard(JOB, 3).unwrap();
    assert!(
        !empty.exists() && !staged.exists(),
        "both directories are gone"
    );
    assert!(s.incomplete(JOB).unwrap().is_empty());
}

#[test]
fn unsupported_or_relative_urls_are_refused_naming_the_url() {
    for url in [
        "s3://bucket/checkpoints",
        "file://relative/dir",
        "/plain/path",
    ] {
        let err = CheckpointStorage::open(url).unwrap_err().to_string();
        assert!(err.contains(url), "{err}");
    }
    let mem = CheckpointStorage::open("memory://").unwrap();
    let m = complete(&mem, 7);
    assert_eq!(mem.latest_usable(JOB).unwrap(), m);
}
