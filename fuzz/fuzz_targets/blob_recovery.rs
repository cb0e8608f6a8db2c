//! Arbitrary bytes as a blob log's data and index files, opened (the recovery scan), used
//! and reopened; see `checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let scratch = std::env::temp_dir().join(format!("blob-recovery-fuzz-{}", std::process::id()));
    checks::blob_recovery(data, &scratch);
});
