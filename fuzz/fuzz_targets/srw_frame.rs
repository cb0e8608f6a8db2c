//! Bytes from a worker's unix socket through the worker-protocol frame decoder (the fast
//! path for flat frames and the general msgpack reader must agree); see `checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::srw_frame(data));
