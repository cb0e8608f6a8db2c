//! Text through the node config, srw config, profile and manifest parsers; see
//! `checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::config_parse(data));
