//! Checkpoint and savepoint storage on `s3://` against a real S3-compatible server that
//! checks signatures (`scripts/s3.sh`): checkpoints are complete once their metadata is
//! written and read back verified, retention deletes what it drops, a corrupt file is
//! skipped naming its URL, savepoints export to and open from S3, files larger than a part
//! stream up as multipart uploads and down checked, and a missing bucket or an empty
//! savepoint location is refused naming the URL.

mod s3;

use std::sync::Once;
use weir_runtime::checkpoint::{
    open_savepoint, CheckpointMetadata, CheckpointStorage, OperatorStateHandles, SharedStateFile,
    PART_SIZE,
};
use weir_runtime::JobId;

const JOB: JobId = JobId(0x53);

/// The storage at `s3://weir/<prefix>` on this binary's server.
fn storage(prefix: &str) -> CheckpointStorage {
    install();
    CheckpointStorage::open(&format!("s3://weir/{prefix}")).unwrap()
}

fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| s3::server().install());
}

/// Writes checkpoint `id` of one operator with three subtasks, complete unless `partial`.
fn write(s: &CheckpointStorage, id: u64, partial: bool) -> CheckpointMetadata {
    let subtasks = (0..3u16)
        .map(|i| {
            let state = vec![i as u8 ^ id as u8; 10_000 + usize::from(i)];
            let file = format!("count-{i}");
            s.write_state(JOB, id, &file, i, (i * 10, i * 10 + 9), &state)
                .unwrap()
        })
        .collect();
    let m = CheckpointMetadata {
        job: JOB,
        job_name: "s3".into(),
        checkpoint: id,
        timestamp_ms: id as i64,
        savepoint: false,
        operators: vec![OperatorStateHandles {
            uid: "count".into(),
            parallelism: 3,
            max_parallelism: 30,
            subtasks,
        }],
    };
    if !partial {
        s.write_metadata(&m).unwrap();
    }
    m
}

#[test]
fn checkpoints_on_s3_are_complete_with_metadata_read_back_verified_and_retained() {
    let s = storage("retention");
    for id in 1..=4 {
        write(&s, id, false);
    }
    write(&s, 5, true);
    assert_eq!(s.completed(JOB).unwrap(), vec![1, 2, 3, 4]);
    assert_eq!(s.checkpoints(JOB).unwrap(), vec![1, 2, 3, 4, 5]);
    let latest = s.latest_usable(JOB).unwrap();
    assert_eq!(latest.checkpoint, 4);
    let handle = &latest.operators[0].subtasks[2];
    assert_eq!(s.read_state(JOB, 4, handle).unwrap(), vec![2u8 ^ 4; 10_002]);
    assert_eq!(s.retain(JOB, 2).unwrap(), vec![1, 2]);
    assert_eq!(s.checkpoints(JOB).unwrap(), vec![3, 4, 5]);
    s.discard(JOB, 5).unwrap();
    assert_eq!(s.checkpoints(JOB).unwrap(), vec![3, 4]);
}

#[test]
fn a_corrupt_state_file_on_s3_is_skipped_naming_its_url() {
    let s = storage("corrupt");
    write(&s, 1, false);
    write(&s, 2, false);
    let path = format!(
        "{}/count-1",
        weir_runtime::checkpoint::checkpoint_dir(JOB, 2)
    );
    let mut bytes = vec![0u8; 10_001 + 9];
    bytes[0] = 0xff;
    s.write_shared(&path, bytes).unwrap();
    let e = s.verify(JOB, 2).unwrap_err().to_string();
    assert!(e.contains(&format!("s3://weir/corrupt/{path}")), "{e}");
    assert_eq!(s.latest_usable(JOB).unwrap().checkpoint, 1);
}

#[test]
fn a_savepoint_exported_to_s3_opens_verified_from_its_url() {
    let s = storage("savepoint-source");
    let m = write(&s, 7, false);
    let url = s.export_savepoint(&m, "s3://weir/savepoints").unwrap();
    assert_eq!(url, format!("s3://weir/savepoints/savepoint-{JOB}-7"));
    let (restore_from, opened) = open_savepoint(&url).unwrap();
    assert_eq!(restore_from, url);
    assert!(opened.savepoint);
    assert_eq!(opened.operators[0].subtasks.len(), 3);
    let sp = CheckpointStorage::open_existing(&url).unwrap();
    let bytes = sp
        .read_state_in("", &opened.operators[0].subtasks[0])
        .unwrap();
    assert_eq!(bytes, vec![7u8; 10_000]);
}

#[test]
fn a_missing_bucket_or_an_empty_location_is_refused_naming_the_url() {
    install();
    let e = CheckpointStorage::open("s3://no-such-bucket/ck")
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3://no-such-bucket/ck"), "{e}");
    assert!(e.contains("bucket 'no-such-bucket' does not exist"), "{e}");
    let e = open_savepoint("s3://weir/nothing-here")
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3://weir/nothing-here"), "{e}");
    assert!(e.contains("nothing is stored there"), "{e}");
    let e = CheckpointStorage::open("s3:///ck").unwrap_err().to_string();
    assert!(e.contains("needs a bucket"), "{e}");
    assert!(!e.contains(&s3::server().secret_key), "{e}");
}

#[test]
fn a_file_larger_than_a_part_uploads_in_parts_and_downloads_checked() {
    let s = storage("streamed");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("big.sst");
    let bytes = s3::noise(5, 2 * PART_SIZE + 12_345);
    std::fs::write(&local, &bytes).unwrap();
    let (size, checksum) = s.upload_file("shared/big.sst", &local).unwrap();
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(checksum, crc32fast::hash(&bytes));
    let e_tag = s3::server().e_tag("streamed/shared/big.sst");
    assert!(
        e_tag.trim_matches('"').ends_with("-3"),
        "three parts: {e_tag}"
    );

    let mut file = SharedStateFile {
        local: "big.sst".into(),
        path: "shared/big.sst".into(),
        size,
        checksum,
    };
    let back = dir.path().join("back.sst");
    s.download_shared(&file, &back).unwrap();
    assert!(
        std::fs::read(&back).unwrap() == bytes,
        "the download equals the file"
    );

    file.checksum ^= 1;
    let e = s.download_shared(&file, &back).unwrap_err().to_string();
    assert!(
        e.contains("s3://weir/streamed/shared/big.sst") && e.contains("crc32"),
        "{e}"
    );
    assert!(!back.exists(), "a download that does not match is deleted");
}
