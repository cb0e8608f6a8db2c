//! Defragmentation: live data kept, removed records dropped, space returned, crash-safe.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;
use elliptics::blob::{BlobOptions, DefragStop};
use elliptics::protocol::errno;
use std::path::Path;

fn fill(dir: &Path) -> BlobOptions {
    let mut o = opts(dir);
    o.records_in_blob = 20;
    let log = open_with(o.clone());
    for i in 0..50 {
        write(
            &log,
            &format!("k{i}"),
            format!("value-{i}").repeat(20).as_bytes(),
        );
    }
    for i in (0..40).step_by(2) {
        run(log.remove(&key(&format!("k{i}")))).unwrap();
    }
    o
}

fn check_contents(log: &Log) {
    for i in 0..50 {
        let got = read_all(log, &format!("k{i}"));
        if i < 40 && i % 2 == 0 {
            assert_eq!(errno_of(got), errno::ENOENT, "k{i}");
        } else {
            assert_eq!(
                got.unwrap(),
                format!("value-{i}").repeat(20).as_bytes(),
                "k{i}"
            );
        }
    }
}

fn size_of(dir: &Path, name: &str) -> u64 {
    std::fs::metadata(dir.join(name)).unwrap().len()
}

#[test]
fn defrag_keeps_live_data_drops_removed_and_returns_space() {
    let dir = tempfile::tempdir().unwrap();
    let o = fill(dir.path());
    let log = open_with(o.clone());
    let before = size_of(dir.path(), "data-0.0");
    let stats = run(log.defrag()).unwrap();
    assert_eq!(stats.files_rewritten, 2);
    assert_eq!(stats.records_dropped, 20);
    assert!(stats.bytes_after < stats.bytes_before);
    assert!(size_of(dir.path(), "data-0.0") < before);
    assert_eq!(log.stats().removed, 0);
    check_contents(&log);
    write(&log, "k1", b"rewritten");
    run(log.remove(&key("k3"))).unwrap();
    drop(log);
    let log = open_with(o);
    assert_eq!(read_all(&log, "k1").unwrap(), b"rewritten");
    assert_eq!(errno_of(read_all(&log, "k3")), errno::ENOENT);
    assert_eq!(
        read_all(&log, "k5").unwrap(),
        "value-5".repeat(20).as_bytes()
    );
}

#[test]
fn defrag_if_needed_respects_the_percentage() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = fill(dir.path());
    o.defrag_percentage = 60;
    let log = open_with(o);
    assert_eq!(run(log.defrag_if_needed()).unwrap().files_rewritten, 0);
    drop(log);
    let mut o = opts(dir.path());
    o.records_in_blob = 20;
    o.defrag_percentage = 40;
    let log = open_with(o);
    assert_eq!(run(log.defrag_if_needed()).unwrap().files_rewritten, 2);
    check_contents(&log);
}

#[test]
fn crash_before_the_commit_marker_keeps_the_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let o = fill(dir.path());
    let log = open_with(o.clone());
    log.set_defrag_stop(DefragStop::BeforeMarker);
    assert!(run(log.defrag()).is_err());
    assert!(dir.path().join("data-0.0.defrag").exists());
    drop(log);
    let log = open_with(o);
    assert!(!dir.path().join("data-0.0.defrag").exists());
    assert_eq!(log.stats().removed, 20);
    check_contents(&log);
}

#[test]
fn crash_after_the_commit_marker_finishes_the_swap_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let o = fill(dir.path());
    let log = open_with(o.clone());
    log.set_defrag_stop(DefragStop::BeforeRename);
    assert!(run(log.defrag()).is_err());
    drop(log);
    let log = open_with(o);
    assert!(!dir.path().join("data-0.0.defrag.done").exists());
    // The first file's swap was finished at open; the stop came before the second file.
    assert_eq!(log.stats().removed, 10);
    check_contents(&log);
    assert_eq!(run(log.defrag()).unwrap().files_rewritten, 1);
    assert_eq!(log.stats().removed, 0);
    check_contents(&log);
}

fn same_size_value(i: u32, round: u32) -> Vec<u8> {
    format!("{i:03}-{round:03};").repeat(20).into_bytes()
}

#[test]
fn same_size_overwrites_of_sealed_keys_during_a_defrag_keep_their_last_value() {
    use bytes::Bytes;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use std::rc::Rc;
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.records_in_blob = 20;
    o.sync_s = 5;
    let log = Rc::new(open_with(o.clone()));
    for i in 0..60 {
        write(&log, &format!("s{i}"), &same_size_value(i, 0));
    }
    for i in (0..60).step_by(3) {
        run(log.remove(&key(&format!("s{i}")))).unwrap();
    }
    run(log.maintain()).unwrap();
    let live: Vec<u32> = (0..60).filter(|i| i % 3 != 0).collect();
    // One round: it lands while the first file is being copied.
    const ROUNDS: u32 = 1;
    let mut pool = LocalPool::new();
    {
        let log = log.clone();
        pool.spawner()
            .spawn_local(async move {
                let stats = log.defrag().await.unwrap();
                assert!(stats.files_rewritten >= 2, "{stats:?}");
            })
            .unwrap();
    }
    {
        let (log, live) = (log.clone(), live.clone());
        pool.spawner()
            .spawn_local(async move {
                for round in 1..=ROUNDS {
                    for &i in &live {
                        let v = same_size_value(i, round);
                        let name = format!("s{i}");
                        log.write(&attr(&name, 0, 0, &v), Bytes::from(v))
                            .await
                            .unwrap();
                    }
                    elliptics::blob::sync::YieldNow::default().await;
                }
            })
            .unwrap();
    }
    pool.run();
    drop(pool);
    for &i in &live {
        let got = read_all(&log, &format!("s{i}")).unwrap();
        assert_eq!(got, same_size_value(i, ROUNDS), "s{i}");
    }
    run(log.sync()).unwrap();
    drop(Rc::try_unwrap(log).unwrap());
    let log = open_with(o);
    for i in 0..60 {
        let got = read_all(&log, &format!("s{i}"));
        if i % 3 == 0 {
            assert_eq!(errno_of(got), errno::ENOENT, "s{i}");
        } else {
            assert_eq!(got.unwrap(), same_size_value(i, ROUNDS), "s{i}");
        }
    }
}

#[test]
fn files_left_with_few_live_records_are_merged_and_the_file_count_stays_bounded() {
    // Ten files of 20 records, then every key removed but one per file: compacted in
    // place, each file would stay (with its one record) and every rotation would add one.
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.records_in_blob = 20;
    let log = open_with(o.clone());
    let value = |i: usize| format!("value-{i}").repeat(30);
    let mut kept = Vec::new();
    for i in 0..200 {
        let info = write(&log, &format!("k{i}"), value(i).as_bytes());
        if i % 20 == 7 {
            kept.push((i, info));
        }
    }
    for i in (0..200).filter(|i| i % 20 != 7) {
        run(log.remove(&key(&format!("k{i}")))).unwrap();
    }
    assert!(log.stats().files >= 10, "{:?}", log.stats());
    let stats = run(log.defrag()).unwrap();
    // The tenth file is still the open one: its record stays.
    assert_eq!(stats.records_moved, 9, "{stats:?}");
    assert!(log.stats().files <= 2, "{:?}", log.stats());
    let check = |log: &Log| {
        for (i, before) in &kept {
            let name = format!("k{i}");
            assert_eq!(
                read_all(log, &name).unwrap(),
                value(*i).as_bytes(),
                "{name}"
            );
            let now = run(log.lookup(&key(&name), false)).unwrap();
            assert_eq!(
                (now.timestamp, now.user_flags, now.size),
                (before.timestamp, before.user_flags, before.size),
                "{name}"
            );
        }
        for i in (0..200).filter(|i| i % 20 != 7) {
            assert_eq!(errno_of(read_all(log, &format!("k{i}"))), errno::ENOENT);
        }
    };
    check(&log);
    drop(log);
    let log = open_with(o);
    assert!(log.stats().files <= 2, "{:?}", log.stats());
    check(&log);
}
