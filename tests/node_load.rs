//! A bounded load loop against a real `dnet_ioserv` (ignored by default; run it on a release
//! build): 4 KiB WRITE and READ requests/s with 1 and with 64 connections, each a blocking
//! raw socket with one request in flight, and the CPU use of every shard thread read from
//! `/proc/<pid>/task/<tid>/stat` over the same interval.
//!
//! `cargo test --release --test node_load -- --ignored --nocapture`

mod common;

use common::raw::{read_request, write_request, RawConn};
use common::{NodeSpec, TestNode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long each measured phase runs.
const PHASE_MS: u64 = 2_000;
/// Distinct keys each connection cycles through.
const KEYS_PER_CONN: u32 = 256;
const VALUE_BYTES: usize = 4096;

/// (thread name, utime + stime in clock ticks) of every `shard-*` thread of `pid`.
fn shard_ticks(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        if !name.starts_with("shard-") {
            continue;
        }
        // Fields after the name: state is field 3, utime 14 and stime 15 (1-based).
        let rest: Vec<&str> = stat[close + 2..].split(' ').collect();
        let utime: u64 = rest.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stime: u64 = rest.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        out.push((name, utime + stime));
    }
    out.sort();
    out
}

fn key(conn: usize, i: u32) -> Vec<u8> {
    format!("load-{conn}-{i}").into_bytes()
}

/// Shard thread name and its CPU use in percent of one core.
type ShardCpu = Vec<(String, f64)>;

/// Run `conns` connections doing writes (`written` empty) or reads of the keys each
/// connection wrote before, for PHASE_MS. Returns requests/s, shard CPU and the number of
/// keys each connection holds.
fn phase(node: &TestNode, conns: usize, written: &[u32]) -> (f64, ShardCpu, Vec<u32>) {
    let write = written.is_empty();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let value = vec![0x5au8; VALUE_BYTES];
    let mut threads = Vec::new();
    let mut links: Vec<RawConn> = (0..conns)
        .map(|_| RawConn::handshaken(node.addr()).0)
        .collect();
    let pid = node.pid().expect("node pid");
    let before = shard_ticks(pid);
    let t0 = Instant::now();
    for (c, mut link) in links.drain(..).enumerate() {
        let (stop, done, value) = (stop.clone(), done.clone(), value.clone());
        let keys = written.get(c).copied().unwrap_or(KEYS_PER_CONN).max(1);
        threads.push(std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let k = key(c, i % keys);
                let (h, body) = if write {
                    write_request(&k, 1, &value)
                } else {
                    read_request(&k, 1)
                };
                let replies = link.call(h, &body);
                let ok = replies.last().is_some_and(|r| r.header.status == 0);
                assert!(ok, "request failed: {:?}", replies.last().map(|r| r.header));
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            i.min(keys)
        }));
    }
    std::thread::sleep(Duration::from_millis(PHASE_MS));
    stop.store(true, Ordering::Relaxed);
    let held: Vec<u32> = threads
        .into_iter()
        .map(|t| t.join().expect("load thread"))
        .collect();
    let secs = t0.elapsed().as_secs_f64();
    let after = shard_ticks(pid);
    let cpu = after
        .iter()
        .map(|(name, ticks)| {
            let was = before.iter().find(|b| &b.0 == name).map_or(0, |b| b.1);
            // Clock ticks are 1/100 s on Linux.
            (name.clone(), (ticks - was) as f64 / 100.0 / secs * 100.0)
        })
        .collect();
    (done.load(Ordering::Relaxed) as f64 / secs, cpu, held)
}

#[test]
#[ignore = "load measurement; run on a release build with --ignored --nocapture"]
fn measure_4k_write_and_read_rates() {
    for sync_s in [0u32, 5] {
        let node = TestNode::start_with(NodeSpec {
            backends: vec![(1, 1)],
            extra_options: vec!["\"shard_count\": 2".into()],
            blob_size: "1G".into(),
            sync_s,
            ..NodeSpec::default()
        });
        println!("backend sync: {sync_s}");
        measure(&node);
    }
}

fn measure(node: &TestNode) {
    for conns in [1usize, 64] {
        let (w, wcpu, held) = phase(node, conns, &[]);
        let (r, rcpu, _) = phase(node, conns, &held);
        println!("{conns:>2} conns: WRITE 4KiB {w:>8.0} req/s  shard CPU % {wcpu:?}");
        println!("{conns:>2} conns: READ  4KiB {r:>8.0} req/s  shard CPU % {rcpu:?}");
        assert!(w > 0.0 && r > 0.0);
    }
}
