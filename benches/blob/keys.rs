//! Key index benchmarks: opening a log of many keys (sealed or open files), reads of
//! keys in sealed files against keys of the open file, and resident bytes per key.

use super::{io, key, median, per_s, run_now, Log};
use bytes::Bytes;
use elliptics::blob::index::{KeyIndex, Loc};
use elliptics::blob::BlobOptions;
use elliptics::key::RawId;
use futures::executor::block_on;
use std::path::Path;
use std::time::Instant;

/// Open a log of `n` small records, either spread over closed (sorted) files of 50 000
/// records or all in the open file; report the open time and resident bytes per key.
pub(super) fn index_load(dir: &Path, n: u64, closed: bool) {
    let d = dir.join(if closed { "closed" } else { "open" });
    let mut o = BlobOptions::new(d.join("data"));
    o.sync_s = 3600;
    o.records_in_blob = if closed { 50_000 } else { n + 1 };
    o.blob_size_bytes = 1 << 40;
    std::fs::create_dir_all(&d).unwrap();
    {
        let log = block_on(Log::open(o.clone())).unwrap();
        let small = Bytes::from_static(b"small value");
        for i in 0..n {
            let mut a = io(i);
            a.size = small.len() as u64;
            block_on(log.write(&a, small.clone())).unwrap();
        }
        block_on(log.sync()).unwrap();
    }
    let rss_before = rss_bytes();
    let t = Instant::now();
    let log = block_on(Log::open(o)).unwrap();
    let s = t.elapsed().as_secs_f64();
    let stats = log.stats();
    println!(
        "index load, {} files ({}): {} records in {s:.3} s ({:.0} records/s); \
         resident bytes per key {:.1}",
        stats.files,
        if closed {
            "closed, sorted"
        } else {
            "one open file"
        },
        stats.records,
        n as f64 / s,
        rss_bytes().saturating_sub(rss_before) as f64 / n as f64
    );
    drop(log);
    std::fs::remove_dir_all(&d).unwrap();
}

/// 16 B reads of `n` keys held in sealed files (four files) against `n` keys of the open
/// file, alternating rounds in the same log.
pub(super) fn read_sealed_vs_hot(dir: &Path, n: u64, reads: u64, rounds: u32) {
    let d = dir.join("sealed-hot");
    let mut o = BlobOptions::new(d.join("data"));
    o.sync_s = 3600;
    o.records_in_blob = n / 4;
    o.blob_size_bytes = 1 << 40;
    std::fs::create_dir_all(&d).unwrap();
    let small = Bytes::from_static(b"sixteen bytes ok");
    let log = block_on(Log::open(o)).unwrap();
    let write = |i: u64| {
        let mut a = io(i);
        a.size = small.len() as u64;
        block_on(log.write(&a, small.clone())).unwrap();
    };
    // Keys 0..n fill four files; n..2n go to the fifth, which stays open.
    for i in 0..2 * n {
        write(i);
    }
    block_on(log.sync()).unwrap();
    let mut x = 777u64;
    let mut picks = |base: u64| -> Vec<RawId> {
        (0..reads)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                key(base + x % n)
            })
            .collect()
    };
    let (sealed, hot) = (picks(0), picks(n));
    let time = |keys: &[RawId]| {
        let t = Instant::now();
        for k in keys {
            let r = run_now(log.read(k, 0, 0, true)).unwrap();
            assert_eq!(r.data.len(), small.len());
        }
        per_s(reads, t)
    };
    let (mut s, mut h, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        h.push(time(&hot));
        s.push(time(&sealed));
        ratios.push(s[s.len() - 1] / h[h.len() - 1]);
    }
    println!(
        "read 16 B, {n} keys in 4 sealed files: {:.0} reads/s; {n} keys of the open file {:.0}/s; \
         ratio {:.2} (median of {rounds}: {}); index {:.1} bytes per key",
        median(&mut s),
        median(&mut h),
        median(&mut ratios.clone()),
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" "),
        log.index_bytes() as f64 / (2 * n) as f64
    );
    drop(log);
    std::fs::remove_dir_all(&d).unwrap();
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

pub(super) fn resident_per_key(n: u64) {
    let before = rss_bytes();
    let mut index = KeyIndex::default();
    for i in 0..n {
        let loc = Loc {
            position: i * 200,
            data_size: 100,
            disk_size: 200,
            file: 0,
            index_slot: u32::try_from(i).unwrap(),
            flags: 0,
        };
        index.insert(key(i), loc);
    }
    let after = rss_bytes();
    println!(
        "index bytes per key, {n} keys of the open file (hash map): resident {:.1}, allocated {:.1}",
        (after.saturating_sub(before)) as f64 / n as f64,
        index.allocated_bytes() as f64 / n as f64
    );
    drop(index);
}
