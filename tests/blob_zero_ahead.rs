//! Under periodic sync new records are stores into the open data file's page-cache map,
//! past zeros written ahead of the last record. Those zeros never outlive the open file: a
//! closed (rotated) file and a cleanly closed log end exactly at their last record, as
//! eblob's tools expect, and a reopen after a crash serves every record and appends after
//! the last one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;
use elliptics::blob::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use elliptics::blob::BlobOptions;
use std::path::Path;

fn periodic(dir: &Path) -> BlobOptions {
    let mut o = opts(dir);
    o.sync_s = 5;
    o.records_in_blob = 40;
    o
}

fn value_of(i: usize) -> Vec<u8> {
    vec![u8::try_from(i % 251).unwrap(); 100 + (i * 37) % 5000]
}

fn data_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    out.sort();
    out
}

/// End of the last record of a data file, from its index (the sorted one once sealed).
fn records_end(data: &Path) -> u64 {
    let sorted = format!("{}.index.sorted", data.display());
    let index = std::fs::read(&sorted)
        .or_else(|_| std::fs::read(format!("{}.index", data.display())))
        .unwrap();
    let n = index.len() / DISK_CONTROL_SIZE_BYTES as usize;
    (0..n)
        .filter_map(|i| DiskControl::decode_at(&index, i))
        .map(|dc| dc.position + dc.disk_size)
        .max()
        .unwrap_or(0)
}

#[test]
fn closed_and_rotated_data_files_end_at_their_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(periodic(dir.path()));
    for i in 0..100 {
        write(&log, &format!("k{i}"), &value_of(i));
    }
    // The upkeep writes the closed files' (sorted) indexes.
    run(log.maintain()).unwrap();
    let files = data_files(dir.path());
    assert_eq!(files.len(), 3, "{files:?}");
    for closed in &files[..2] {
        let len = std::fs::metadata(closed).unwrap().len();
        assert_eq!(len, records_end(closed), "{}", closed.display());
    }
    // The open file reaches past its 20 records: zeros were written ahead of them.
    let len = std::fs::metadata(&files[2]).unwrap().len();
    assert!(len >= 1 << 20, "open file of {len} bytes");
    drop(log);
    for f in data_files(dir.path()) {
        let len = std::fs::metadata(&f).unwrap().len();
        assert_eq!(len, records_end(&f), "{} after close", f.display());
    }
    let log = open_with(periodic(dir.path()));
    for i in 0..100 {
        assert_eq!(
            read_all(&log, &format!("k{i}")).unwrap(),
            value_of(i),
            "k{i}"
        );
    }
}

#[test]
fn zeros_left_past_the_last_record_by_a_crash_are_cut_and_appends_follow_the_records() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open_with(periodic(dir.path()));
        for i in 0..30 {
            write(&log, &format!("k{i}"), &value_of(i));
        }
    }
    // What a crash leaves: the open file's records, then zeros ahead of them.
    let f = data_files(dir.path()).pop().unwrap();
    let end = records_end(&f);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(end + (1 << 20))
        .unwrap();
    let log = open_with(periodic(dir.path()));
    assert_eq!(
        std::fs::metadata(&f).unwrap().len(),
        end,
        "recovery cuts the zeros"
    );
    for i in 30..60 {
        write(&log, &format!("k{i}"), &value_of(i));
    }
    drop(log);
    let log = open_with(periodic(dir.path()));
    assert_eq!(log.stats().records, 60);
    for i in 0..60 {
        assert_eq!(
            read_all(&log, &format!("k{i}")).unwrap(),
            value_of(i),
            "k{i}"
        );
    }
}
