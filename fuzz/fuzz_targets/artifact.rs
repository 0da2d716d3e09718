//! Job artifacts as the JobManager receives them: a digest given as text, then bytes that
//! must hash to it; the store refuses anything else and never names a file after bad input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_jobmanager::cluster::artifacts::ArtifactStore;
use weir_runtime::rpc::messages::{ArtifactDigest, ArtifactHasher};

fuzz_target!(|data: &[u8]| {
    let _ = ArtifactDigest::parse(&String::from_utf8_lossy(data));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ArtifactStore::open(dir.path(), 1 << 16).expect("store");
    let (claimed, body) = data.split_at(data.len().min(32));
    // A digest of the body, or one that is wrong.
    let mut h = ArtifactHasher::default();
    h.update(if claimed.first().is_some_and(|b| b % 2 == 0) { body } else { claimed });
    let digest = h.finish();
    let Ok(mut upload) = store.begin(digest.clone(), body.len() as u64) else {
        return;
    };
    for piece in body.chunks(claimed.len().max(1)) {
        match store.write(&mut upload, piece) {
            Ok(true) => {
                assert!(store.contains(&digest));
                return;
            }
            Ok(false) => {}
            Err(_) => {
                assert!(!store.contains(&digest));
                return;
            }
        }
    }
});
