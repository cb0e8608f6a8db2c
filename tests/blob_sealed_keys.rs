//! Keys of sealed files live on disk, not in RAM: lookups, overwrites and removes of keys
//! spread over many sealed files agree with a model across restarts, iteration sees every
//! live key once, start-up reads no data of sealed files and only the unsynced tail of the
//! open one, and the index holds a few bytes per sealed key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::{attr, key, open_with, opts, put, read_all, run, write, Log};
use bytes::Bytes;
use elliptics::blob::BlobLog;
use elliptics::io::sync::StdFile;
use elliptics::io::IoFile;
use elliptics::key::RawId;
use elliptics::protocol::errno;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

thread_local! {
    static READ_BYTES: RefCell<HashMap<PathBuf, u64>> = RefCell::new(HashMap::new());
}

/// [`StdFile`] that counts the bytes read from each file.
#[derive(Debug)]
struct Counting {
    inner: StdFile,
    path: PathBuf,
}

impl IoFile for Counting {
    fn from_std(file: File) -> Self {
        let path = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap();
        Counting {
            inner: StdFile::from_std(file),
            path,
        }
    }
    fn as_std(&self) -> &File {
        self.inner.as_std()
    }
    async fn read_exact_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        let n = buf.len() as u64;
        READ_BYTES.with(|r| *r.borrow_mut().entry(self.path.clone()).or_default() += n);
        self.inner.read_exact_at(buf, offset).await
    }
    async fn write_all_at(&self, bufs: Vec<Bytes>, offset: u64) -> io::Result<()> {
        self.inner.write_all_at(bufs, offset).await
    }
    async fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data().await
    }
}

fn data_reads(dir: &Path, num: u32) -> u64 {
    let p = std::fs::canonicalize(dir.join(format!("data-0.{num}"))).unwrap();
    READ_BYTES.with(|r| r.borrow().get(&p).copied().unwrap_or(0))
}

fn value(name: &str, round: u32) -> Vec<u8> {
    format!("{name}-round{round}-").repeat(3).into_bytes()
}

fn small_files(dir: &Path) -> elliptics::blob::BlobOptions {
    let mut o = opts(dir);
    o.records_in_blob = 100;
    o
}

/// Check every key of `model` (`None`: removed) and that iteration yields exactly the live
/// ones.
fn check(log: &Log, model: &BTreeMap<String, Option<Vec<u8>>>, when: &str) {
    for (name, want) in model {
        match want {
            Some(v) => assert_eq!(read_all(log, name).ok().as_ref(), Some(v), "{when}: {name}"),
            None => assert_eq!(
                read_all(log, name).map_err(|e| e.errno()),
                Err(errno::ENOENT),
                "{when}: removed {name}"
            ),
        }
    }
    let mut live: Vec<RawId> = model
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| key(n))
        .collect();
    live.sort();
    let mut seen: Vec<RawId> = log.iter_meta().map(|(k, _)| k).collect();
    seen.sort();
    assert_eq!(seen, live, "{when}: iteration");
    let all = log.keys_in_range(&RawId([0; 64]), &RawId([0xff; 64]));
    assert_eq!(all, live, "{when}: keys in range");
    assert_eq!(log.stats().records, live.len() as u64, "{when}: live count");
}

#[test]
fn overwrites_and_removes_across_sealed_files_agree_with_a_model_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut model: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for restart in 0..4u32 {
        let log = open_with(small_files(dir.path()));
        check(&log, &model, &format!("after restart {restart}"));
        for op in 0..600u32 {
            let name = format!("k{}", next() % 400);
            if next() % 5 == 0 {
                let res = run(log.remove(&key(&name)));
                let was = model.get(&name).cloned().flatten();
                assert_eq!(
                    res.is_ok(),
                    was.is_some(),
                    "remove {name} (restart {restart}, op {op})"
                );
                assert_eq!(
                    read_all(&log, &name).map_err(|e| e.errno()),
                    Err(errno::ENOENT),
                    "{name} removed (restart {restart}, op {op})"
                );
                model.insert(name, None);
            } else {
                let v = value(&name, restart * 1000 + op);
                write(&log, &name, &v);
                model.insert(name, Some(v));
            }
            if op % 150 == 149 {
                // Sort the closed files: their keys leave RAM.
                run(log.sync()).unwrap();
            }
        }
        check(&log, &model, &format!("before restart {}", restart + 1));
        assert!(log.stats().files >= 4, "keys spread over many files");
    }
}

#[test]
fn a_sealed_key_overwritten_then_removed_stays_removed_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open_with(small_files(dir.path()));
        for i in 0..250u32 {
            write(&log, &format!("k{i}"), b"first");
        }
        run(log.sync()).unwrap();
        // k5 lives in sealed file 0: a new copy goes to the open file, then it is removed.
        write(&log, "k5", b"second");
        run(log.remove(&key("k5"))).unwrap();
        run(log.remove(&key("k6"))).unwrap();
        assert_eq!(
            read_all(&log, "k5").map_err(|e| e.errno()),
            Err(errno::ENOENT)
        );
        assert_eq!(
            read_all(&log, "k6").map_err(|e| e.errno()),
            Err(errno::ENOENT)
        );
    }
    let log = open_with(small_files(dir.path()));
    for gone in ["k5", "k6"] {
        assert_eq!(
            read_all(&log, gone).map_err(|e| e.errno()),
            Err(errno::ENOENT)
        );
    }
    assert_eq!(read_all(&log, "k7").unwrap(), b"first");
    assert_eq!(log.stats().records, 248);
}

#[test]
fn start_up_reads_no_data_of_sealed_files_and_only_the_unsynced_tail_of_the_open_one() {
    let dir = tempfile::tempdir().unwrap();
    // Periodic sync: nothing but the explicit sync below moves the synced point.
    let small_files = |d: &Path| {
        let mut o = small_files(d);
        o.sync_s = 3600;
        o
    };
    let mut model: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    {
        let log = open_with(small_files(dir.path()));
        for i in 0..450u32 {
            let name = format!("k{i}");
            write(&log, &name, &value(&name, 0));
            model.insert(name.clone(), Some(value(&name, 0)));
        }
        for i in (0..450u32).step_by(7) {
            let name = format!("k{i}");
            run(log.remove(&key(&name))).unwrap();
            model.insert(name, None);
        }
        run(log.sync()).unwrap();
    }
    let synced_open_len;
    {
        let log = run(BlobLog::<Counting>::open(small_files(dir.path()))).unwrap();
        for num in 0..4 {
            assert_eq!(data_reads(dir.path(), num), 0, "sealed file {num} was read");
        }
        assert_eq!(data_reads(dir.path(), 4), 0, "synced open file was read");
        for (name, want) in &model {
            let got = run(log.read(&key(name), 0, 0, true)).map(|r| r.data).ok();
            assert_eq!(got.as_ref(), want.as_ref(), "{name}");
        }
        synced_open_len = std::fs::metadata(dir.path().join("data-0.4"))
            .unwrap()
            .len();
        // Writes after the last sync, flushed to the `.index` at close but not synced.
        for i in 450..470u32 {
            let name = format!("k{i}");
            run(log.write(&attr(&name, 0, 0, b"late"), Bytes::from_static(b"late"))).unwrap();
            model.insert(name, Some(b"late".to_vec()));
        }
    }
    READ_BYTES.with(|r| r.borrow_mut().clear());
    let log = run(BlobLog::<Counting>::open(small_files(dir.path()))).unwrap();
    for num in 0..4 {
        assert_eq!(data_reads(dir.path(), num), 0, "sealed file {num} was read");
    }
    let open_len = std::fs::metadata(dir.path().join("data-0.4"))
        .unwrap()
        .len();
    let tail = data_reads(dir.path(), 4);
    assert!(
        tail > 0 && tail <= open_len - synced_open_len,
        "read {tail} bytes of the open file; its unsynced tail is {}",
        open_len - synced_open_len
    );
    drop(log);
    check(
        &open_with(small_files(dir.path())),
        &model,
        "after the tail",
    );
}

#[test]
fn the_index_keeps_a_few_bytes_per_key_of_sealed_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.records_in_blob = 10_000;
    o.sync_s = 3600;
    {
        let log = open_with(o.clone());
        for i in 0..30_000u32 {
            let name = format!("k{i}");
            put(&log, &attr(&name, 0, 0, b"v"), b"v").unwrap();
        }
        write(&log, "last", b"v");
        run(log.sync()).unwrap();
    }
    let log = open_with(o);
    assert_eq!(log.stats().records, 30_001);
    let per_key = log.index_bytes() as f64 / 30_001.0;
    assert!(per_key < 12.0, "{per_key:.1} bytes of index per key");
    assert_eq!(read_all(&log, "k12345").unwrap(), b"v");
}
