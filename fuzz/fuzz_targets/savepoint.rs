//! A savepoint directory as a user hands it to `--from-savepoint`: its `_metadata` is
//! arbitrary bytes; opening it verifies them and every file they name, or refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_fuzz::versioned;


fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    // Half the inputs pass the version and checksum check.
    let metadata = match data.first() {
        Some(b) if b % 2 == 1 => versioned(&data[1..]),
        _ => data.to_vec(),
    };
    std::fs::write(dir.path().join("_metadata"), metadata).expect("write");
    let _ = weir_runtime::checkpoint::open_savepoint(&dir.path().display().to_string());
});
