//! Blob log benchmarks against plain-syscall baselines. Short runs; prints one line per
//! measurement with the ratio to its baseline. `cargo bench --bench blob [-- PART]`, PART one
//! of `append`, `commit`, `read`, `sealed` (16 B reads of keys in sealed files against keys
//! of the open file), `load`, `quick` (no index-size and load measurements).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::Bytes;
use elliptics::blob::{BlobLog, BlobOptions};
use elliptics::io::sync::StdFile;
use elliptics::key::RawId;
use elliptics::protocol::IoAttr;
use futures::executor::{block_on, LocalPool};
use futures::task::LocalSpawnExt;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

type Log = BlobLog<StdFile>;

const VALUE_BYTES: usize = 4096;

fn key(i: u64) -> RawId {
    RawId::from_key(&i.to_le_bytes())
}

fn io(i: u64) -> IoAttr {
    IoAttr {
        id: key(i),
        size: VALUE_BYTES as u64,
        timestamp: elliptics::protocol::DnetTime::EMPTY,
        ..IoAttr::default()
    }
}

fn open(dir: &Path, sync_s: i64) -> Log {
    let mut o = BlobOptions::new(dir.join("data"));
    o.sync_s = sync_s;
    o.blob_size_bytes = 256 << 20;
    block_on(Log::open(o)).unwrap()
}

/// Run an operation of the log as the node does: poll it once in place (with the blocking
/// backend it completes there), and only if it is not done, block on it. The baselines
/// run no executor either.
fn run_now<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => block_on(fut),
    }
}

fn per_s(n: u64, started: Instant) -> f64 {
    n as f64 / started.elapsed().as_secs_f64()
}

/// Ours and the baseline alternate `rounds` times; each ratio is of one adjacent pair and
/// the median ratio is printed (the machine is shared and noisy).
fn append_no_sync(dir: &Path, n: u64, rounds: u32) {
    let value = Bytes::from(vec![7u8; VALUE_BYTES]);
    // Keys are derived (sha512) before timing: the baseline derives none either.
    let ios: Vec<IoAttr> = (0..n).map(io).collect();
    let mut ratios = Vec::new();
    let (mut ours, mut base, mut record_sized) = (Vec::new(), Vec::new(), Vec::new());
    let plain = |name: String, chunk: &[u8]| {
        let mut f = File::create(dir.join(name)).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            f.write_all(chunk).unwrap();
        }
        per_s(n, t)
    };
    // The plain loop also with chunks of a record's size (header, ext header, value,
    // footer): unaligned writes that touch two pages each, as the log's do.
    let record = vec![7u8; VALUE_BYTES + 96 + 48 + 16];
    for round in 0..rounds {
        // Odd rounds run the baseline first, so that neither side always meets the
        // page cache as the other left it.
        if round % 2 == 1 {
            base.push(plain(format!("plain{round}"), &value));
        }
        let sub = dir.join(format!("a{round}"));
        std::fs::create_dir_all(&sub).unwrap();
        let log = open(&sub, 3600);
        let t = Instant::now();
        for a in &ios {
            run_now(log.write(a, value.clone())).unwrap();
        }
        ours.push(per_s(n, t));
        drop(log);
        if round % 2 == 0 {
            base.push(plain(format!("plain{round}"), &value));
        }
        ratios.push(ours[ours.len() - 1] / base[base.len() - 1]);
        record_sized.push(plain(format!("record{round}"), &record));
    }
    println!(
        "append 4KiB no sync: {:.0} writes/s; plain write loop {:.0}/s; ratio {:.2} (median of {rounds}: {}); \
         plain loop of record-sized chunks {:.0}/s",
        median(&mut ours),
        median(&mut base),
        median(&mut ratios.clone()),
        ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" "),
        median(&mut record_sized)
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The baseline of group commit: `n` 4 KiB writes, each followed by its own fdatasync.
fn write_fdatasync_per_s(path: &Path, n: u64) -> f64 {
    let mut f = File::create(path).unwrap();
    let value = vec![7u8; VALUE_BYTES];
    let t = Instant::now();
    for _ in 0..n {
        f.write_all(&value).unwrap();
        f.sync_data().unwrap();
    }
    per_s(n, t)
}

fn append_group_commit(dir: &Path, writers: u64, per_writer: u64) {
    let sub = tempfile::tempdir_in(dir.join("g")).unwrap();
    let log = Rc::new(open(sub.path(), 0));
    let mut pool = LocalPool::new();
    let t = Instant::now();
    for w in 0..writers {
        let log = log.clone();
        pool.spawner()
            .spawn_local(async move {
                let value = Bytes::from(vec![7u8; VALUE_BYTES]);
                for i in 0..per_writer {
                    log.write(&io(w * 1_000_000 + i), value.clone())
                        .await
                        .unwrap();
                }
            })
            .unwrap();
    }
    pool.run();
    let n = writers * per_writer;
    let ours = per_s(n, t);
    let stats = log.stats();
    let rounds = stats.sync_rounds;
    let serial_n = 500u64;
    let base = write_fdatasync_per_s(&dir.join("serial"), serial_n);
    println!(
        "append 4KiB sync=0, {writers} writers: {ours:.0} writes/s, {:.1} writes per sync round \
         ({} fdatasync calls in {rounds} rounds for {n} writes); write+fdatasync per write \
         {base:.0}/s over {serial_n}; ratio {:.2}",
        n as f64 / rounds.max(1) as f64,
        stats.fsyncs,
        ours / base
    );
}

/// The same group commit on the node's backend (io_uring): writers keep writing while a
/// round's fdatasync is in flight.
fn append_group_commit_uring(dir: &Path, writers: u64, per_writer: u64) {
    use elliptics::blob::sync::Event;
    use elliptics::runtime::{self, UringFile};
    if runtime::probe().is_err() {
        println!("append 4KiB sync=0 on io_uring: skipped (no io_uring here)");
        return;
    }
    let sub = tempfile::tempdir_in(dir.join("g")).unwrap();
    let mut o = BlobOptions::new(sub.path().join("data"));
    o.sync_s = 0;
    o.blob_size_bytes = 256 << 20;
    let n = writers * per_writer;
    let (ours, stats) = runtime::block_on(256, async move {
        let log = Rc::new(BlobLog::<UringFile>::open(o).await.unwrap());
        let done = Rc::new((std::cell::Cell::new(0u64), Event::default()));
        let t = Instant::now();
        for w in 0..writers {
            let (log, done) = (log.clone(), done.clone());
            runtime::spawn(async move {
                let value = Bytes::from(vec![7u8; VALUE_BYTES]);
                for i in 0..per_writer {
                    log.write(&io(w * 1_000_000 + i), value.clone())
                        .await
                        .unwrap();
                }
                done.0.set(done.0.get() + 1);
                done.1.notify();
            });
        }
        while done.0.get() < writers {
            let seen = done.1.generation();
            done.1.wait(seen).await;
        }
        (per_s(n, t), log.stats())
    })
    .unwrap();
    let serial_n = 500u64;
    let base = write_fdatasync_per_s(&dir.join("serial-uring"), serial_n);
    println!(
        "append 4KiB sync=0 on io_uring, {writers} writers: {ours:.0} writes/s, {:.1} writes per \
         sync round ({} fdatasync calls in {} rounds); write+fdatasync per write {base:.0}/s; \
         ratio {:.2}",
        n as f64 / stats.sync_rounds.max(1) as f64,
        stats.fsyncs,
        stats.sync_rounds,
        ours / base
    );
}

fn read_cached(dir: &Path, n: u64, reads: u64, rounds: u32) {
    let value = Bytes::from(vec![9u8; VALUE_BYTES]);
    let log = open(&dir.join("r"), 3600);
    let mut offsets = Vec::new();
    for i in 0..n {
        offsets.push(block_on(log.write(&io(i), value.clone())).unwrap());
    }
    let keys: Vec<RawId> = (0..n).map(key).collect();
    let mut x = 12345u64;
    let picks: Vec<usize> = (0..reads)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            usize::try_from(x % n).unwrap()
        })
        .collect();
    let f = File::open(&*offsets[0].path).unwrap();
    for verify in [true, false] {
        let mut ratios = Vec::new();
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            for &p in &picks {
                let r = run_now(log.read(&keys[p], 0, 0, verify)).unwrap();
                assert_eq!(r.data.len(), VALUE_BYTES);
            }
            ours.push(per_s(reads, t));
            let mut buf = vec![0u8; VALUE_BYTES];
            let t = Instant::now();
            for &p in &picks {
                f.read_exact_at(&mut buf, offsets[p].data_offset).unwrap();
            }
            base.push(per_s(reads, t));
            ratios.push(ours[ours.len() - 1] / base[base.len() - 1]);
        }
        println!(
            "read 4KiB page cache (verify {verify}): {:.0} reads/s; plain pread {:.0}/s; ratio {:.2} (median of {rounds}: {})",
            median(&mut ours),
            median(&mut base),
            median(&mut ratios.clone()),
            ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ")
        );
    }
}

#[path = "blob/keys.rs"]
mod keys;
use keys::{index_load, read_sealed_vs_hot, resident_per_key};

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for sub in ["a", "g", "r"] {
        std::fs::create_dir_all(p.join(sub)).unwrap();
    }
    let only = std::env::args().nth(1).unwrap_or_default();
    if only.is_empty() {
        resident_per_key(1_000_000);
    }
    if only == "read" {
        read_cached(p, 10_000, 50_000, 5);
        return;
    }
    if only == "sealed" {
        read_sealed_vs_hot(p, 1_000_000, 1_000_000, 5);
        return;
    }
    if only == "load" {
        index_load(p, 1_000_000, true);
        index_load(p, 1_000_000, false);
        return;
    }
    if only == "commit" {
        for _ in 0..3 {
            append_group_commit(p, 64, 100);
            append_group_commit_uring(p, 64, 100);
        }
        return;
    }
    append_no_sync(p, 20_000, 5);
    if only == "append" {
        return;
    }
    append_group_commit(p, 64, 100);
    append_group_commit_uring(p, 64, 100);
    read_cached(p, 10_000, 50_000, 5);
    if only != "quick" {
        index_load(p, 1_000_000, true);
        index_load(p, 1_000_000, false);
    }
}
