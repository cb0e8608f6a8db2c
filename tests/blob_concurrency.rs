//! The log under a backend whose every operation yields to the executor first (as io_uring
//! does): interleaved writers, removers, readers, syncs and defrags; and fdatasync failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::{attr, key};
use bytes::Bytes;
use elliptics::blob::sync::YieldNow;
use elliptics::blob::{BlobLog, BlobOptions};
use elliptics::io::sync::StdFile;
use elliptics::io::IoFile;
use elliptics::protocol::{errno, io_flags};
use futures::executor::{block_on, LocalPool};
use futures::task::LocalSpawnExt;
use std::cell::Cell;
use std::fs::File;
use std::io;
use std::rc::Rc;

thread_local! {
    static FAIL_SYNC: Cell<bool> = const { Cell::new(false) };
}

/// [`StdFile`] that yields once before each operation and can fail fdatasync.
#[derive(Debug)]
struct Yielding(StdFile);

impl IoFile for Yielding {
    fn from_std(file: File) -> Self {
        Yielding(StdFile::from_std(file))
    }
    fn as_std(&self) -> &File {
        self.0.as_std()
    }
    async fn read_exact_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        YieldNow::default().await;
        self.0.read_exact_at(buf, offset).await
    }
    async fn write_all_at(&self, bufs: Vec<Bytes>, offset: u64) -> io::Result<()> {
        YieldNow::default().await;
        self.0.write_all_at(bufs, offset).await
    }
    async fn sync_data(&self) -> io::Result<()> {
        YieldNow::default().await;
        if FAIL_SYNC.with(Cell::get) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.0.sync_data().await
    }
}

type Log = BlobLog<Yielding>;

fn options(dir: &std::path::Path) -> BlobOptions {
    let mut o = BlobOptions::new(dir.join("data"));
    o.records_in_blob = 16;
    o
}

fn value(task: u32, key_no: u32, round: u32) -> Vec<u8> {
    format!("t{task}-k{key_no}-r{round}-")
        .repeat(1 + (round as usize % 5))
        .into_bytes()
}

/// Task `t`'s work: 12 rounds over its 3 keys of writes (every third an append), reads
/// that must see exactly what was written, and removals of its first key.
async fn rewrite_and_check(log: &Log, t: u32) {
    for round in 0..12u32 {
        for k in 0..3u32 {
            let name = format!("t{t}-k{k}");
            let v = value(t, k, round);
            let flags = if round % 3 == 1 { io_flags::APPEND } else { 0 };
            let before = log.read(&key(&name), 0, 0, true).await.map(|r| r.data);
            log.write(&attr(&name, flags, 0, &v), Bytes::from(v.clone()))
                .await
                .unwrap();
            let mut expect = v.clone();
            if flags == io_flags::APPEND {
                if let Ok(mut old) = before {
                    old.extend_from_slice(&v);
                    expect = old;
                }
            }
            let got = log.read(&key(&name), 0, 0, true).await.unwrap().data;
            assert_eq!(got, expect, "{name} round {round}");
            if round % 4 == 3 && k == 0 {
                log.remove(&key(&name)).await.unwrap();
                let err = log.read(&key(&name), 0, 0, true).await.unwrap_err();
                assert_eq!(err.errno(), errno::ENOENT);
            }
        }
    }
}

#[test]
fn interleaved_writers_removers_syncs_and_defrags_keep_every_key_right() {
    let dir = tempfile::tempdir().unwrap();
    let log = Rc::new(block_on(Log::open(options(dir.path()))).unwrap());
    // Cold keys, written once: the files they sit in end up small, so defrag keeps moving
    // them to the open file while the writers and removers run.
    for c in 0..3 {
        let v = format!("cold-{c}");
        block_on(log.write(&attr(&v, 0, 0, v.as_bytes()), Bytes::from(v.clone()))).unwrap();
    }
    let mut pool = LocalPool::new();
    let tasks = 12u32;
    let done = Rc::new(Cell::new(0u32));
    for t in 0..tasks {
        let (log, done) = (log.clone(), done.clone());
        pool.spawner()
            .spawn_local(async move {
                rewrite_and_check(&log, t).await;
                done.set(done.get() + 1);
            })
            .unwrap();
    }
    let rewritten = Rc::new(Cell::new(0u64));
    let moved = Rc::new(Cell::new(0u64));
    {
        let (log, done, rewritten) = (log.clone(), done.clone(), rewritten.clone());
        let moved = moved.clone();
        pool.spawner()
            .spawn_local(async move {
                while done.get() < tasks {
                    log.sync().await.unwrap();
                    let stats = log.defrag().await.unwrap();
                    rewritten.set(rewritten.get() + stats.files_rewritten);
                    moved.set(moved.get() + stats.records_moved);
                    YieldNow::default().await;
                }
            })
            .unwrap();
    }
    pool.run();
    assert_eq!(done.get(), tasks);
    assert!(
        rewritten.get() > 0,
        "defrag must have run alongside the writers"
    );
    assert!(
        moved.get() > 0,
        "records of small files must have moved alongside the writers"
    );
    let mut expected: Vec<(String, Option<Vec<u8>>)> = (0..tasks)
        .flat_map(|t| (0..3).map(move |k| (t, k)))
        .map(|(t, k)| {
            let name = format!("t{t}-k{k}");
            let data = block_on(log.read(&key(&name), 0, 0, true))
                .ok()
                .map(|r| r.data);
            assert_eq!(
                data.is_none(),
                k == 0,
                "{name}: k0 ends removed, the others live"
            );
            (name, data)
        })
        .collect();
    for c in 0..3 {
        let name = format!("cold-{c}");
        let data = block_on(log.read(&key(&name), 0, 0, true)).unwrap().data;
        assert_eq!(data, name.as_bytes());
        expected.push((name, Some(data)));
    }
    // Files rotated (sealed files left empty by defrag are deleted).
    let highest = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_prefix("data-0.")?.parse::<u32>().ok()
        })
        .max()
        .unwrap();
    assert!(highest >= 3, "files rotated up to data-0.{highest}");
    drop(pool);
    drop(Rc::try_unwrap(log).unwrap());
    let log = block_on(Log::open(options(dir.path()))).unwrap();
    for (name, data) in expected {
        let got = block_on(log.read(&key(&name), 0, 0, true))
            .ok()
            .map(|r| r.data);
        assert_eq!(got, data, "{name}");
    }
}

#[test]
fn failed_fdatasync_refuses_writes_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let log = block_on(Log::open(options(dir.path()))).unwrap();
    block_on(log.write(&attr("a", 0, 0, b"1"), Bytes::from_static(b"1"))).unwrap();
    FAIL_SYNC.with(|f| f.set(true));
    let err = block_on(log.write(&attr("b", 0, 0, b"2"), Bytes::from_static(b"2"))).unwrap_err();
    assert_eq!(err.errno(), errno::EIO);
    FAIL_SYNC.with(|f| f.set(false));
    let err = block_on(log.write(&attr("c", 0, 0, b"3"), Bytes::from_static(b"3"))).unwrap_err();
    assert_eq!(err.errno(), errno::EIO);
    assert_eq!(
        block_on(log.remove(&key("a"))).unwrap_err().errno(),
        errno::EIO
    );
    assert_eq!(
        block_on(log.read(&key("a"), 0, 0, true)).unwrap().data,
        b"1"
    );
    drop(log);
    let log = block_on(Log::open(options(dir.path()))).unwrap();
    block_on(log.write(&attr("c", 0, 0, b"3"), Bytes::from_static(b"3"))).unwrap();
    assert_eq!(
        block_on(log.read(&key("a"), 0, 0, true)).unwrap().data,
        b"1"
    );
}

#[test]
fn reads_racing_in_place_overwrites_see_one_whole_value() {
    let dir = tempfile::tempdir().unwrap();
    let log = Rc::new(block_on(Log::open(options(dir.path()))).unwrap());
    let values: [&[u8]; 3] = [b"a-long-first-value\n", b"K\n", b"MSG\n"];
    // The first value sizes the record; the shorter ones overwrite it in place.
    block_on(log.write(&attr("hot", 0, 0, values[0]), Bytes::from_static(values[0]))).unwrap();
    for round in 0..200u32 {
        let mut pool = LocalPool::new();
        let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
        for task in 0..4u32 {
            let log = log.clone();
            let seen = seen.clone();
            let v = values[((round + task) % 2 + 1) as usize];
            pool.spawner()
                .spawn_local(async move {
                    if task % 2 == 0 {
                        log.write(&attr("hot", 0, 0, v), Bytes::from_static(v))
                            .await
                            .unwrap();
                    } else {
                        let out = log.read(&key("hot"), 0, 0, true).await.unwrap();
                        seen.borrow_mut().push(out.data);
                    }
                })
                .unwrap();
        }
        pool.run();
        for data in seen.borrow().iter() {
            assert!(
                values.contains(&data.as_slice()),
                "round {round}: a read returned {:?}, which was never written",
                String::from_utf8_lossy(data)
            );
        }
    }
}

/// One run of [`a_rewritten_then_removed_key_stays_removed_while_its_old_file_is_sorted`]:
/// the sort of the file holding the key's first copy starts after `delay` turns.
async fn rewrite_remove_during_sort(log: &Log, delay: usize) -> Option<Vec<u8>> {
    let rewrite = async {
        log.write(&attr("k", 0, 0, b"second"), Bytes::from_static(b"second"))
            .await
            .unwrap();
        log.remove(&key("k")).await.unwrap();
        log.read(&key("k"), 0, 0, true).await.ok().map(|r| r.data)
    };
    let sort = async {
        for _ in 0..delay {
            YieldNow::default().await;
        }
        for _ in 0..4 {
            log.maintain().await.unwrap();
            YieldNow::default().await;
        }
    };
    futures::join!(rewrite, sort).0
}

#[test]
fn a_rewritten_then_removed_key_stays_removed_while_its_old_file_is_sorted() {
    // The old copy of a rewritten key stays live on disk until its new copy is durable;
    // a sort of its file running meanwhile must still end with that copy dead, or the
    // key comes back with its first value once its new copy is removed.
    for delay in 0..48 {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path());
        o.records_in_blob = 4;
        let log = block_on(Log::open(o.clone())).unwrap();
        for name in ["k", "f1", "f2", "f3"] {
            block_on(log.write(&attr(name, 0, 0, b"first"), Bytes::from_static(b"first"))).unwrap();
        }
        let seen = block_on(rewrite_remove_during_sort(&log, delay));
        assert_eq!(
            seen, None,
            "sort after {delay} turns: the removed key read back"
        );
        block_on(log.sync()).unwrap();
        let seen = block_on(log.read(&key("k"), 0, 0, true))
            .ok()
            .map(|r| r.data);
        assert_eq!(
            seen, None,
            "sort after {delay} turns: read back after the sort"
        );
        drop(log);
        let log = block_on(Log::open(o)).unwrap();
        let seen = block_on(log.read(&key("k"), 0, 0, true))
            .ok()
            .map(|r| r.data);
        assert_eq!(
            seen, None,
            "sort after {delay} turns: read back after a restart"
        );
    }
}
