//! Recovery when the `.index` lags the data file (entries are buffered between fdatasyncs):
//! records past the last index entry are found in the data file, a torn one never is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;
use elliptics::protocol::errno;
use std::fs::OpenOptions;
use std::path::Path;

const DC: u64 = 96;
const RECORDS: usize = 4;

fn values() -> Vec<(String, Vec<u8>)> {
    (0..RECORDS)
        .map(|i| (format!("lag{i}"), vec![b'k' + i as u8; 90 + i * 13]))
        .collect()
}

/// Write the records; return the start of each record and the data length.
fn build(dir: &Path) -> (Vec<u64>, u64) {
    let log = open(dir);
    let starts = values()
        .iter()
        .map(|(k, v)| write(&log, k, v).data_offset - DC - 48)
        .collect();
    drop(log);
    let data = std::fs::metadata(dir.join("data-0.0")).unwrap().len();
    (starts, data)
}

fn copy_cut(from: &Path, to: &Path, index_entries: u64, data_len: u64) {
    for name in ["data-0.0", "data-0.0.index"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
    let cut = |name: &str, len: u64| {
        OpenOptions::new()
            .write(true)
            .open(to.join(name))
            .unwrap()
            .set_len(len)
            .unwrap();
    };
    cut("data-0.0.index", index_entries * DC);
    cut("data-0.0", data_len);
}

fn expect_first(dir: &Path, n: usize) {
    let log = open(dir);
    for (i, (k, v)) in values().iter().enumerate() {
        if i < n {
            assert_eq!(read_all(&log, k).unwrap(), *v, "record {i} must survive");
        } else {
            assert_eq!(errno_of(read_all(&log, k)), errno::ENOENT, "record {i}");
        }
    }
    assert_eq!(log.stats().records, n as u64);
    drop(log);
    let index = std::fs::metadata(dir.join("data-0.0.index")).unwrap().len();
    assert_eq!(
        index,
        n as u64 * DC,
        "the index is repaired to the whole records"
    );
}

#[test]
fn index_that_lags_the_data_is_rebuilt_from_the_data_file() {
    let pristine = tempfile::tempdir().unwrap();
    let (_, data_len) = build(pristine.path());
    for entries in 0..=RECORDS as u64 {
        let dir = tempfile::tempdir().unwrap();
        copy_cut(pristine.path(), dir.path(), entries, data_len);
        expect_first(dir.path(), RECORDS);
    }
}

#[test]
fn torn_tail_behind_a_lagging_index_is_dropped_at_every_data_offset() {
    let pristine = tempfile::tempdir().unwrap();
    let (starts, data_len) = build(pristine.path());
    let ends: Vec<u64> = starts.iter().skip(1).copied().chain([data_len]).collect();
    for entries in [0u64, 1] {
        for cut in starts[1]..data_len {
            let whole = ends.iter().filter(|end| **end <= cut).count();
            let dir = tempfile::tempdir().unwrap();
            copy_cut(pristine.path(), dir.path(), entries, cut);
            expect_first(dir.path(), whole);
        }
    }
}

#[test]
fn removal_and_rewrite_of_buffered_entries_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.sync_s = 3600;
    let log = open_with(o.clone());
    for i in 0..600 {
        write(&log, &format!("b{i}"), format!("v{i}").as_bytes());
    }
    run(log.remove(&key("b599"))).unwrap();
    run(log.remove(&key("b10"))).unwrap();
    write(&log, "b598", b"again");
    drop(log);
    let index = std::fs::metadata(dir.path().join("data-0.0.index")).unwrap();
    assert_eq!(index.len(), 601 * DC, "a clean close writes every entry");
    let log = open_with(o);
    assert_eq!(errno_of(read_all(&log, "b599")), errno::ENOENT);
    assert_eq!(errno_of(read_all(&log, "b10")), errno::ENOENT);
    assert_eq!(read_all(&log, "b598").unwrap(), b"again");
    assert_eq!(read_all(&log, "b300").unwrap(), b"v300");
    assert_eq!(log.stats().records, 598);
}
