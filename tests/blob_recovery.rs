//! Crash recovery and corruption: torn tails at every byte, garbage after the tail, bit
//! flips inside values, stale duplicates.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;
use elliptics::protocol::errno;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

const DC: u64 = 96;

fn values() -> Vec<(String, Vec<u8>)> {
    (0..3)
        .map(|i| (format!("rec{i}"), vec![b'a' + i as u8; 150 + i * 7]))
        .collect()
}

/// Write the three records, return (start of the last record, data length, index length).
fn build(dir: &Path) -> (u64, u64, u64) {
    let log = open(dir);
    let mut last = 0;
    for (k, v) in values() {
        last = write(&log, &k, &v).data_offset - DC - 48;
    }
    drop(log);
    let data = std::fs::metadata(dir.join("data-0.0")).unwrap().len();
    let index = std::fs::metadata(dir.join("data-0.0.index")).unwrap().len();
    (last, data, index)
}

fn copy_dir(from: &Path, to: &Path) {
    for name in ["data-0.0", "data-0.0.index"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

fn expect_first(dir: &Path, n: usize) {
    let log = open(dir);
    let vals = values();
    for (i, (k, v)) in vals.iter().enumerate() {
        if i < n {
            assert_eq!(read_all(&log, k).unwrap(), *v, "record {i} must survive");
        } else {
            assert_eq!(
                errno_of(read_all(&log, k)),
                errno::ENOENT,
                "record {i} must be gone"
            );
        }
    }
    assert_eq!(log.stats().records, n as u64);
    // The log keeps working after recovery, and what it writes survives the next reopen.
    write(&log, "after", b"fresh");
    drop(log);
    let log = open(dir);
    assert_eq!(read_all(&log, "after").unwrap(), b"fresh");
    for (k, v) in vals.iter().take(n) {
        assert_eq!(read_all(&log, k).unwrap(), *v);
    }
}

#[test]
fn torn_tail_is_truncated_to_last_full_record_at_every_data_offset() {
    let pristine = tempfile::tempdir().unwrap();
    let (last, data_len, _) = build(pristine.path());
    for cut in last..data_len {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        OpenOptions::new()
            .write(true)
            .open(dir.path().join("data-0.0"))
            .unwrap()
            .set_len(cut)
            .unwrap();
        expect_first(dir.path(), 2);
    }
}

#[test]
fn torn_index_entry_is_rebuilt_from_the_data_file_at_every_index_offset() {
    let pristine = tempfile::tempdir().unwrap();
    let (_, _, index_len) = build(pristine.path());
    for cut in index_len - DC..index_len {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        OpenOptions::new()
            .write(true)
            .open(dir.path().join("data-0.0.index"))
            .unwrap()
            .set_len(cut)
            .unwrap();
        // The data file holds the whole record and its header: the entry comes back.
        expect_first(dir.path(), 3);
        let repaired = std::fs::metadata(dir.path().join("data-0.0.index")).unwrap();
        assert_eq!(
            repaired.len(),
            index_len + 96,
            "three entries plus \"after\""
        );
    }
}

#[test]
fn garbage_after_the_tail_is_ignored() {
    let pristine = tempfile::tempdir().unwrap();
    build(pristine.path());
    for (file, len) in [
        ("data-0.0", 1000),
        ("data-0.0.index", 96),
        ("data-0.0.index", 150),
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(file))
            .unwrap();
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
        f.write_all(&junk).unwrap();
        drop(f);
        expect_first(dir.path(), 3);
    }
}

#[test]
fn zeroed_value_of_the_last_record_is_dropped_as_torn() {
    let pristine = tempfile::tempdir().unwrap();
    let (last, data_len, _) = build(pristine.path());
    let dir = tempfile::tempdir().unwrap();
    copy_dir(pristine.path(), dir.path());
    let path = dir.path().join("data-0.0");
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[(last + DC + 48) as usize..data_len as usize - 24] {
        *b = 0;
    }
    std::fs::write(&path, bytes).unwrap();
    expect_first(dir.path(), 2);
}

fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn bit_flip_inside_a_value_gives_eilseq_and_leaves_others_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let vals = values();
    let mut infos = Vec::new();
    for (k, v) in &vals {
        infos.push(write(&log, k, v));
    }
    flip(Path::new(&*infos[1].path), infos[1].data_offset + 5);
    let bad = &vals[1].0;
    assert_eq!(errno_of(read_all(&log, bad)), errno::EILSEQ);
    assert_eq!(
        errno_of(run(log.read(&key(bad), 100, 10, true))),
        errno::EILSEQ
    );
    assert_eq!(errno_of(run(log.lookup(&key(bad), true))), errno::EILSEQ);
    assert!(run(log.lookup(&key(bad), false)).is_ok());
    for i in [0, 2] {
        assert_eq!(read_all(&log, &vals[i].0).unwrap(), vals[i].1);
        assert!(run(log.lookup(&key(&vals[i].0), true)).is_ok());
    }
    drop(log);
    let log = open(dir.path());
    assert_eq!(errno_of(read_all(&log, bad)), errno::EILSEQ);
    assert_eq!(read_all(&log, &vals[2].0).unwrap(), vals[2].1);
}

#[test]
fn bit_flip_in_a_large_value_is_caught_only_in_its_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let value: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let info = write(&log, "big", &value);
    assert_eq!(read_all(&log, "big").unwrap(), value);
    flip(Path::new(&*info.path), info.data_offset + 2_500_000);
    assert_eq!(errno_of(read_all(&log, "big")), errno::EILSEQ);
    let head = run(log.read(&key("big"), 0, 1000, true)).unwrap();
    assert_eq!(head.data, &value[..1000]);
    assert_eq!(
        errno_of(run(log.read(&key("big"), 2_400_000, 200_000, true))),
        errno::EILSEQ
    );
    let unchecked = run(log.read(&key("big"), 2_400_000, 10, false)).unwrap();
    assert_eq!(unchecked.data, &value[2_400_000..2_400_010]);
}

#[test]
fn closed_files_get_a_sorted_index_that_is_loaded_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.records_in_blob = 10;
    let log = open_with(o.clone());
    for i in 0..35 {
        write(&log, &format!("k{i}"), format!("value-{i}").as_bytes());
    }
    run(log.remove(&key("k3"))).unwrap();
    run(log.sync()).unwrap();
    assert!(dir.path().join("data-0.0.index.sorted").exists());
    run(log.remove(&key("k4"))).unwrap();
    write(&log, "k5", b"moved");
    drop(log);
    let log = open_with(o);
    assert_eq!(log.stats().files, 4);
    for i in 0..35 {
        let got = read_all(&log, &format!("k{i}"));
        match i {
            3 | 4 => assert_eq!(errno_of(got), errno::ENOENT),
            5 => assert_eq!(got.unwrap(), b"moved"),
            _ => assert_eq!(got.unwrap(), format!("value-{i}").as_bytes()),
        }
    }
}

#[test]
fn closed_files_are_sorted_by_upkeep_off_the_write_path_and_keep_one_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.records_in_blob = 5;
    let log = open_with(o.clone());
    for i in 0..12 {
        write(&log, &format!("k{i}"), b"v");
    }
    // Writes do not sort: the owner's upkeep does.
    assert!(!dir.path().join("data-0.0.index.sorted").exists());
    run(log.maintain()).unwrap();
    assert!(dir.path().join("data-0.0.index.sorted").exists());
    assert!(!dir.path().join("data-0.0.index").exists());
    assert!(!dir.path().join("data-0.1.index").exists());
    assert!(dir.path().join("data-0.2.index").exists());
    assert!(dir.path().join("data-0.1.index.sorted").exists());
    assert!(!dir.path().join("data-0.2.index.sorted").exists());
    run(log.remove(&key("k1"))).unwrap();
    write(&log, "k7", b"w");
    assert_eq!(errno_of(read_all(&log, "k1")), errno::ENOENT);
    assert_eq!(read_all(&log, "k7").unwrap(), b"w");
    drop(log);
    let log = open_with(o);
    assert_eq!(errno_of(read_all(&log, "k1")), errno::ENOENT);
    assert_eq!(read_all(&log, "k7").unwrap(), b"w");
    assert_eq!(read_all(&log, "k2").unwrap(), b"v");
    assert!(!dir.path().join("data-0.0.index").exists());
}
