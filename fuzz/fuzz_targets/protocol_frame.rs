//! Bytes as a connection stream: split frames, decode each header and body by command, and
//! check that every decoded body survives encode -> decode unchanged.
#![no_main]

use elliptics::protocol::{decode_body, split_frame, HEADER_SIZE_BYTES};
use libfuzzer_sys::fuzz_target;

const PAYLOAD_BYTES_MAX: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((frame, used)) = split_frame(rest, PAYLOAD_BYTES_MAX) {
        assert!(used >= HEADER_SIZE_BYTES && used <= rest.len());
        if let Ok(body) = decode_body(&frame.header, frame.payload) {
            let bytes = body.encode();
            let again = decode_body(&frame.header, &bytes).expect("re-encoded body decodes");
            assert_eq!(again, body);
        }
        rest = &rest[used..];
    }
});
