//! A subtask's state file and what is inside it: the versioned envelope, the operator
//! snapshot, keyed state (full and native RocksDB), operator list state and timers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_fuzz::versioned;

use weir_runtime::checkpoint::OperatorSnapshot;
use weir_state_backends::{KeyedStateSnapshot, TimerSnapshot};

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = weir_state_backends::codec::decode_versioned_bytes(data, "state file") {
        let _ = OperatorSnapshot::decode_keyed(&payload);
        let _ = OperatorSnapshot::decode_list(&payload);
    }
    let _ = OperatorSnapshot::decode_keyed(data);
    let _ = OperatorSnapshot::decode_list(data);
    let _ = KeyedStateSnapshot::from_bytes(data);
    let _ = TimerSnapshot::from_bytes(data);
    let wrapped = versioned(data);
    let _ = KeyedStateSnapshot::from_bytes(&wrapped);
    let _ = TimerSnapshot::from_bytes(&wrapped);
    if let Ok(payload) = weir_state_backends::codec::decode_versioned_bytes(&wrapped, "state file") {
        let _ = OperatorSnapshot::decode_keyed(&payload);
    }
});
