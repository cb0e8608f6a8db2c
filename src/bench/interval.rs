//! What a long run (`dnet_bench --interval-s`) records every interval, for soaks: the
//! interval's rate, latency percentiles and errors, the live bytes the benchmark believes the
//! node holds (every acknowledged WRITE sets its key's size, every acknowledged or -ENOENT
//! DEL clears it), and, when given, the server's resident memory and the bytes and files of
//! its data directory. One JSON object per line on stdout.

use super::Histogram;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// errno of a DEL of a key that is not there: the key is gone either way.
const ENOENT: i32 = crate::protocol::errno::ENOENT;

/// The size of every key as the node acknowledged it, and their sum.
#[derive(Debug)]
pub struct Ledger {
    size_bytes: Vec<u32>,
    live_bytes: u64,
    live_keys: u64,
}

impl Ledger {
    pub fn new(keys: usize) -> Ledger {
        Ledger {
            size_bytes: vec![0; keys],
            live_bytes: 0,
            live_keys: 0,
        }
    }

    fn set(&mut self, key: usize, size_bytes: u32) {
        let Some(slot) = self.size_bytes.get_mut(key) else {
            return;
        };
        let old = std::mem::replace(slot, size_bytes);
        self.live_bytes = self.live_bytes - u64::from(old) + u64::from(size_bytes);
        match (old, size_bytes) {
            (0, s) if s > 0 => self.live_keys += 1,
            (o, 0) if o > 0 => self.live_keys -= 1,
            _ => {}
        }
    }

    /// An acknowledged WRITE of `size_bytes` to `key` (a zero-byte value counts as one byte
    /// so that the key counts as present).
    pub fn written(&mut self, key: usize, size_bytes: usize, status: i32) {
        if status == 0 {
            self.set(key, u32::try_from(size_bytes.max(1)).unwrap_or(u32::MAX));
        }
    }

    /// A DEL of `key` answered with `status`.
    pub fn removed(&mut self, key: usize, status: i32) {
        if status == 0 || status == ENOENT {
            self.set(key, 0);
        }
    }

    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }
}

/// One interval's line.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalLine {
    /// Seconds since the measurement started, at the end of this interval.
    pub t_s: f64,
    pub ops_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: u64,
    pub live_bytes: u64,
    pub live_keys: u64,
    /// VmRSS of `--server-pid` (mapped data files count in it as they are touched).
    pub server_rss_bytes: Option<u64>,
    /// RssAnon of `--server-pid`: the node's own memory, without file pages.
    pub server_anon_bytes: Option<u64>,
    /// Bytes and files under `--data-dir` (file sizes as allocated on disk).
    pub disk_bytes: Option<u64>,
    pub files: Option<u64>,
}

/// Collects one interval at a time and prints it when it ends.
#[derive(Debug)]
pub struct IntervalLog {
    every: Duration,
    start: Option<Instant>,
    next_at: Option<Instant>,
    hist: Histogram,
    errors: u64,
    server_pid: Option<u32>,
    data_dir: Option<PathBuf>,
}

impl IntervalLog {
    pub fn new(every: Duration, server_pid: Option<u32>, data_dir: Option<PathBuf>) -> Self {
        IntervalLog {
            every,
            start: None,
            next_at: None,
            hist: Histogram::default(),
            errors: 0,
            server_pid,
            data_dir,
        }
    }

    /// The measurement starts now.
    pub fn start(&mut self, now: Instant) {
        self.start = Some(now);
        self.next_at = Some(now + self.every);
    }

    #[inline]
    pub fn record(&mut self, latency_ns: u64, status: i32) {
        if status == 0 {
            self.hist.record(latency_ns);
        } else {
            self.errors += 1;
        }
    }

    /// The finished interval's line when `now` has passed its end; the next one starts.
    pub fn tick(&mut self, now: Instant, ledger: &Ledger) -> Option<IntervalLine> {
        let (start, next_at) = (self.start?, self.next_at?);
        if now < next_at {
            return None;
        }
        let secs = self.every.as_secs_f64();
        let usage = self.data_dir.as_deref().map(dir_usage);
        let line = IntervalLine {
            t_s: next_at.saturating_duration_since(start).as_secs_f64(),
            ops_per_s: self.hist.count() as f64 / secs,
            p50_us: self.hist.quantile_ns(0.50) as f64 / 1000.0,
            p99_us: self.hist.quantile_ns(0.99) as f64 / 1000.0,
            errors: self.errors,
            live_bytes: ledger.live_bytes,
            live_keys: ledger.live_keys,
            server_rss_bytes: self.server_pid.and_then(|p| status_bytes(p, "VmRSS:")),
            server_anon_bytes: self.server_pid.and_then(|p| status_bytes(p, "RssAnon:")),
            disk_bytes: usage.map(|u| u.0),
            files: usage.map(|u| u.1),
        };
        self.hist.reset();
        self.errors = 0;
        self.next_at = Some(next_at + self.every);
        Some(line)
    }
}

/// A `kB` field of `/proc/<pid>/status` (such as "VmRSS:"), in bytes.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// (bytes allocated on disk, regular files) under `dir`, recursively.
fn dir_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0u64, 0u64);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return total;
    };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            let (b, f) = dir_usage(&e.path());
            total = (total.0 + b, total.1 + f);
        } else if meta.is_file() {
            total = (total.0 + meta.blocks() * 512, total.1 + 1);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_counts_what_the_node_acknowledged() {
        let mut l = Ledger::new(4);
        l.written(0, 100, 0);
        l.written(1, 4096, 0);
        l.written(2, 50, crate::protocol::errno::EIO); // failed: not stored
        assert_eq!((l.live_bytes, l.live_keys), (4196, 2));
        l.written(0, 10, 0); // rewrite with another size
        assert_eq!((l.live_bytes, l.live_keys), (4106, 2));
        l.removed(1, 0);
        l.removed(3, ENOENT); // was never there
        assert_eq!((l.live_bytes, l.live_keys), (10, 1));
        l.written(9, 10, 0); // outside the key space: ignored
        assert_eq!(l.live_bytes(), 10);
    }

    #[test]
    fn an_interval_reports_once_its_time_has_passed() {
        let mut log = IntervalLog::new(Duration::from_secs(1), None, None);
        let t0 = Instant::now();
        log.start(t0);
        let ledger = Ledger::new(1);
        for _ in 0..10 {
            log.record(1_000, 0);
        }
        log.record(1_000, crate::protocol::errno::ETIMEDOUT);
        assert!(log.tick(t0 + Duration::from_millis(500), &ledger).is_none());
        let line = log
            .tick(t0 + Duration::from_millis(1_001), &ledger)
            .expect("interval over");
        assert_eq!((line.ops_per_s, line.errors), (10.0, 1));
        assert!((line.t_s - 1.0).abs() < 1e-9);
        let next = log
            .tick(t0 + Duration::from_millis(2_001), &ledger)
            .expect("second interval");
        assert_eq!((next.ops_per_s, next.errors), (0.0, 0));
    }
}
