//! The data plane: a connection's hello and frame headers, and the element frames inside a
//! buffer (records, watermarks, barriers), including frames that span buffers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_runtime::element::ElementReader;
use weir_runtime::exchange::protocol::{
    decode_barrier, decode_header, decode_hello, BARRIER_LEN, HEADER_LEN, HELLO_LEN,
};

fuzz_target!(|data: &[u8]| {
    if let Some(hello) = data.first_chunk::<HELLO_LEN>() {
        let _ = decode_hello(hello);
    }
    if let Some(header) = data.first_chunk::<HEADER_LEN>() {
        let _ = decode_header(header);
    }
    if let Some(barrier) = data.first_chunk::<BARRIER_LEN>() {
        let _ = decode_barrier(barrier);
    }
    let mut reader = ElementReader::new(data);
    while let Some(element) = reader.next_element() {
        if element.is_err() {
            break;
        }
    }
    // The same bytes split in two buffers, the first continuing into the second.
    let (first, second) = data.split_at(data.len() / 2);
    let mut partial = weir_runtime::reassembly::PartialFrame::default();
    partial.extend(first);
    if partial.complete(second).is_ok() && partial.is_whole() {
        let mut reader = ElementReader::new(partial.bytes());
        while let Some(Ok(_)) = reader.next_element() {}
    }
});
