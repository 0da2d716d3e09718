//! A checkpoint's `_metadata` file: decoded after its version byte and checksum, or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_fuzz::versioned;

use weir_runtime::checkpoint::CheckpointMetadata;

fuzz_target!(|data: &[u8]| {
    for bytes in [data.to_vec(), versioned(data)] {
        if let Ok(m) = weir_state_backends::decode_versioned::<CheckpointMetadata>(&bytes, "_metadata") {
            let _ = m.state_size();
            let _ = m.shared_files().count();
        }
    }
});
