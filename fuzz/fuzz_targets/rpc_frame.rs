//! Control RPC frames: whatever a peer sends after its handshake is decoded as the message
//! its role sends, without a panic and without allocating past the frame limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_fuzz::framed;
use weir_runtime::control::TaskManagerMessage;
use weir_runtime::rpc::messages::{TaskManagerRequest, WorkerReport};
use weir_runtime::rpc::{read_message, ClientRequest};


fuzz_target!(|data: &[u8]| {
    let Some((&role, rest)) = data.split_first() else {
        return;
    };
    // Half the inputs are raw bytes, half a well-formed frame around them.
    let wrapped;
    let frames = if role & 0x80 == 0 {
        rest
    } else {
        wrapped = framed(rest);
        &wrapped
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut input = frames;
        // Read frames until the input is used up or one is refused.
        for _ in 0..16 {
            let ok = match role % 4 {
                0 => read_message::<_, ClientRequest>(&mut input, "fuzz").await.is_ok(),
                1 => read_message::<_, TaskManagerRequest>(&mut input, "fuzz").await.is_ok(),
                2 => read_message::<_, WorkerReport>(&mut input, "fuzz").await.is_ok(),
                _ => read_message::<_, TaskManagerMessage>(&mut input, "fuzz").await.is_ok(),
            };
            if !ok {
                break;
            }
        }
    });
});
