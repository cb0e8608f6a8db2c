//! Chaos under load: five nodes (three in group 1, two in group 2), writers and readers at
//! a steady rate, while a driver SIGKILLs and restarts, or SIGSTOPs and SIGCONTs, one random
//! node at a time. Then every node is brought back, `dnet_recovery merge` and `dc` run, and:
//! every write acknowledged by both groups reads back from both, every write acknowledged
//! by one group reads back from some group, no operation waited much past its timeout, and
//! every node's descriptors and memory stay bounded.
//!
//! The CI form disturbs the cluster for 30 s; `scripts/chaos.sh MINUTES` runs the long form
//! (`CHAOS_SECONDS`) with the same checks and prints the same summary.

mod common;

use common::cluster::{free_port, mesh, route_list_len, wait_for, ClusterNode};
use elliptics::client::{ClientConfig, Key, Node, Session};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: u8 = 5;
const CLIENT_TIMEOUT_S: u64 = 2;
/// An operation that takes longer than this waited past its timeout: a hang.
const HANG: Duration = Duration::from_secs(3 * CLIENT_TIMEOUT_S + 2);
/// Pause between a writer's operations (a steady rate, not a flood).
const OP_PAUSE: Duration = Duration::from_millis(5);
/// A node's open descriptors after the run, at most.
const FDS_MAX: usize = 400;
/// A node's resident memory after the run, at most.
const RSS_MAX_KIB: u64 = 1024 * 1024;

/// What the load saw.
#[derive(Debug, Default)]
struct Tally {
    ops: u64,
    errors: BTreeMap<String, u64>,
    max_latency: Duration,
    hangs: u64,
    /// key -> groups that acknowledged its write.
    acked: BTreeMap<String, Vec<u32>>,
}

impl Tally {
    fn op(&mut self, took: Duration, error: Option<String>) {
        self.ops += 1;
        self.max_latency = self.max_latency.max(took);
        if took > HANG {
            self.hangs += 1;
        }
        if let Some(e) = error {
            *self.errors.entry(e).or_default() += 1;
        }
    }
}

fn client(remote: &str) -> Node {
    let node = Node::new(ClientConfig {
        wait_timeout_s: CLIENT_TIMEOUT_S,
        check_timeout_s: 1,
        ..ClientConfig::default()
    });
    // The driver may be killing or freezing that very node: try again for a while.
    let deadline = Instant::now() + Duration::from_secs(3 * CLIENT_TIMEOUT_S + 10);
    loop {
        match node.add_remotes(&[remote]) {
            Ok(()) => return node,
            Err(e) if Instant::now() < deadline => {
                eprintln!("connect to {remote}: {e}; trying again");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("connect to {remote}: {e}"),
        }
    }
}

/// Kind of an error, for the summary: its errno when it has one.
fn kind(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    text.rsplit(": ").next().unwrap_or(&text).to_string()
}

fn writer(remote: String, id: usize, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let node = client(&remote);
    let mut session = Session::new(&node);
    session.set_groups(&[1, 2]);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("chaos-{id}-{n}");
        n += 1;
        let started = Instant::now();
        let result = session
            .write_data(&Key::from(key.as_str()), key.as_bytes(), 0)
            .wait();
        let took = started.elapsed();
        let mut t = tally.lock().expect("tally");
        match result {
            Ok(entries) => {
                let groups: Vec<u32> = entries
                    .iter()
                    .filter(|e| e.status == 0)
                    .map(|e| e.group)
                    .collect();
                let error = (groups.len() < 2).then(|| format!("write acked by {}", groups.len()));
                t.op(took, error);
                if !groups.is_empty() {
                    t.acked.insert(key, groups);
                }
            }
            Err(e) => t.op(took, Some(format!("write: {}", kind(&e)))),
        }
        drop(t);
        std::thread::sleep(OP_PAUSE);
    }
}

fn reader(remote: String, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let node = client(&remote);
    let mut session = Session::new(&node);
    session.set_groups(&[1, 2]);
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let key = {
            let t = tally.lock().expect("tally");
            let len = t.acked.len();
            (len > 0).then(|| t.acked.keys().nth((n * 7919) % len).cloned())
        }
        .flatten();
        n += 1;
        let Some(key) = key else {
            std::thread::sleep(OP_PAUSE);
            continue;
        };
        let started = Instant::now();
        let result = session.read_data(&Key::from(key.as_str()), 0, 0).wait();
        let took = started.elapsed();
        let error = result.err().map(|e| format!("read: {}", kind(&e)));
        tally.lock().expect("tally").op(took, error);
        std::thread::sleep(OP_PAUSE);
    }
}

/// (descriptors, resident KiB) of a running process.
fn usage(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    (fds, rss)
}

/// Disturb one random node at a time until `until`; returns the actions taken.
fn drive(nodes: &mut [ClusterNode], until: Instant, mut seed: u64) -> BTreeMap<&'static str, u64> {
    let mut actions = BTreeMap::new();
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    while Instant::now() < until {
        let victim = (next() % nodes.len() as u64) as usize;
        let pause = Duration::from_millis(500 + next() % 2000);
        if next() % 2 == 0 {
            nodes[victim].kill();
            std::thread::sleep(pause);
            nodes[victim].start();
            *actions.entry("kill -9 and restart").or_default() += 1;
        } else {
            nodes[victim].freeze(true);
            std::thread::sleep(pause);
            nodes[victim].freeze(false);
            *actions.entry("SIGSTOP and SIGCONT").or_default() += 1;
        }
        std::thread::sleep(Duration::from_millis(300 + next() % 1000));
    }
    actions
}

fn recovery(kind: &str, remote: &str, groups: &str, state_dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_recovery"))
        .args([
            kind, "-r", remote, "-g", groups, "-w", "10", "-n", "4", "-D",
        ])
        .arg(state_dir)
        .output()
        .expect("dnet_recovery");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{kind} failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn acknowledged_writes_survive_kills_and_freezes_under_load() {
    let seconds: u64 = std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut nodes: Vec<ClusterNode> = (1..=NODES)
        .map(|n| ClusterNode::new(dir.path(), n, port, &[(1, if n <= 3 { 1 } else { 2 })]))
        .collect();
    mesh(&mut nodes);
    for n in nodes.iter_mut() {
        n.start();
    }
    let addrs: Vec<_> = nodes.iter().map(ClusterNode::addr).collect();
    let all_joined = || addrs.iter().all(|a| route_list_len(*a) == NODES as usize);
    wait_for(30, "every node to join", all_joined);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut load = Vec::new();
    for (id, n) in nodes.iter().take(2).enumerate() {
        let (r, s, t) = (n.remote(), stop.clone(), tally.clone());
        load.push(std::thread::spawn(move || writer(r, id, s, t)));
    }
    let (r, s, t) = (nodes[4].remote(), stop.clone(), tally.clone());
    load.push(std::thread::spawn(move || reader(r, s, t)));

    let until = Instant::now() + Duration::from_secs(seconds);
    let actions = drive(&mut nodes, until, 0x9e37_79b9_7f4a_7c15 ^ u64::from(port));
    stop.store(true, Ordering::Relaxed);
    for h in load {
        h.join().expect("load thread");
    }
    for n in nodes.iter_mut() {
        if !n.is_running() {
            n.start();
        }
    }
    wait_for(60, "every node to join again", all_joined);

    let state = tempfile::tempdir().expect("state dir");
    let remote = nodes[0].remote();
    let merged = recovery("merge", &remote, "1,2", state.path());
    let dc = recovery("dc", &remote, "1,2", state.path());

    let tally = tally.lock().expect("tally");
    let check = client(&remote);
    let mut lost_both = Vec::new();
    let mut lost_any = Vec::new();
    for (key, groups) in &tally.acked {
        let read_in = |groups: &[u32]| {
            let mut s = Session::new(&check);
            s.set_groups(groups);
            s.read_data(&Key::from(key.as_str()), 0, 0)
                .wait()
                .ok()
                .and_then(|r| r.into_iter().find(|e| e.status == 0))
                .is_some_and(|e| e.payload.is_some_and(|p| p.data == key.as_bytes()))
        };
        if groups.len() == 2 {
            if !read_in(&[1]) || !read_in(&[2]) {
                lost_both.push(key.clone());
            }
        } else if !read_in(&[1, 2]) {
            lost_any.push(key.clone());
        }
    }
    let both = tally.acked.values().filter(|g| g.len() == 2).count();
    println!(
        "chaos {seconds}s: {} ops, actions {actions:?}, errors {:?}, max latency {:?}, hangs {}; \
         writes acked by both groups {both}, by one {}; lost: {} of both, {} of one\n{merged}{dc}",
        tally.ops,
        tally.errors,
        tally.max_latency,
        tally.hangs,
        tally.acked.len() - both,
        lost_both.len(),
        lost_any.len()
    );
    assert!(tally.acked.len() > 100, "the load made progress");
    assert!(lost_both.is_empty(), "lost from a group: {lost_both:?}");
    assert!(lost_any.is_empty(), "lost entirely: {lost_any:?}");
    assert_eq!(tally.hangs, 0, "an operation waited past {HANG:?}");
    for n in &nodes {
        let (fds, rss_kib) = usage(n.pid().expect("running"));
        assert!(fds < FDS_MAX, "{} holds {fds} descriptors", n.host);
        assert!(rss_kib < RSS_MAX_KIB, "{} holds {rss_kib} KiB", n.host);
    }
}
