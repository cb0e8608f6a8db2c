//! Reads served from the page-cache map of a data file: they see every later write, and a
//! data file cut short under the running log answers errors instead of killing the process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;

#[test]
fn reads_see_in_place_overwrites_and_appends_made_after_the_file_was_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    write(&log, "a", b"first value");
    assert_eq!(read_all(&log, "a").unwrap(), b"first value");
    write(&log, "a", b"other value");
    assert_eq!(read_all(&log, "a").unwrap(), b"other value");
    for i in 0..2000u32 {
        write(&log, &format!("k{i}"), format!("value {i}").as_bytes());
    }
    for i in (0..2000u32).step_by(97) {
        assert_eq!(
            read_all(&log, &format!("k{i}")).unwrap(),
            format!("value {i}").as_bytes()
        );
    }
    let part = run(log.read(&key("k5"), 2, 3, true)).unwrap();
    assert_eq!(part.data, b"lue");
}

#[test]
fn a_data_file_cut_short_under_the_log_gives_read_errors_and_the_log_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let big = vec![7u8; 64 * 1024];
    write(&log, "early", b"kept");
    write(&log, "late", &big);
    assert_eq!(read_all(&log, "late").unwrap(), big);
    let data = dir.path().join("data-0.0");
    let keep = std::fs::metadata(&data).unwrap().len() - 40 * 1024;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(keep)
        .unwrap();
    // The first read faults inside the mapping (EIO); later ones find the file too short.
    assert_eq!(
        errno_of(read_all(&log, "late")),
        -5,
        "EIO from the guarded copy"
    );
    for _ in 0..3 {
        assert!(read_all(&log, "late").is_err());
    }
    assert_eq!(read_all(&log, "early").unwrap(), b"kept");
    write(&log, "after", b"still writing");
    assert_eq!(read_all(&log, "after").unwrap(), b"still writing");
}
