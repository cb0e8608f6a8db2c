//! Stable replay of the corpora of the worker-protocol, app-package, config and blob
//! recovery fuzz targets (`fuzz/corpus/<target>`), through the same checks the targets run
//! (`fuzz/checks.rs`), so every finding stays fixed without a fuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

/// The files of `fuzz/corpus/<target>`, sorted.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Run `check` on every input of `target`, naming the input that fails.
fn replay(target: &str, check: impl Fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        assert!(run.is_ok(), "{} fails its check", path.display());
    }
}

#[test]
fn worker_frame_corpus_decodes_the_same_on_both_paths() {
    replay("srw_frame", checks::srw_frame);
}

#[test]
fn config_corpus_parses_or_fails_with_a_message() {
    replay("config_parse", checks::config_parse);
}

#[test]
fn app_package_corpus_never_writes_outside_the_app() {
    let scratch = tempfile::tempdir().unwrap();
    replay("srw_package", |b| {
        checks::srw_package(b, &scratch.path().join("p"))
    });
}

#[test]
fn blob_file_corpus_recovers_or_fails_cleanly() {
    let scratch = tempfile::tempdir().unwrap();
    replay("blob_recovery", |b| {
        checks::blob_recovery(b, &scratch.path().join("b"))
    });
}
