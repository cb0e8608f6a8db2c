//! A stored app record through the package decoders and the unpack into a scratch spool:
//! nothing may land outside the app directory; see `checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let scratch = std::env::temp_dir().join(format!("srw-package-fuzz-{}", std::process::id()));
    checks::srw_package(data, &scratch);
});
