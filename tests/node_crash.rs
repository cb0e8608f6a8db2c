//! Durability of `dnet_ioserv`: SIGTERM while writing exits 0 and keeps every acknowledged
//! record; kill -9 at random points with `sync: 0` loses no acknowledged record; a full
//! disk answers -ENOSPC, keeps serving reads and leaves no half record behind.

mod common;

use common::kv::read;
use common::raw::{handshake_header, RawConn};
use common::{session, NodeSpec, TestNode};
use elliptics::client::Key;
use elliptics::protocol::errno;
use rand::Rng;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes stored under key number `i` of round `round`: size and content depend on both.
fn value(round: u32, i: u32) -> Vec<u8> {
    let len = 1 + ((i.wrapping_mul(7919) + round * 131) % 8192) as usize;
    (0..len)
        .map(|j| (j as u32 ^ i.wrapping_mul(31) ^ round) as u8)
        .collect()
}

fn key(round: u32, i: u32) -> String {
    format!("r{round}-k{i}")
}

/// Write keys of `round` until a write fails or `stop` is set; returns the acknowledged ones.
fn spawn_writer(
    node: &TestNode,
    round: u32,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<u32>> {
    let s = session(node, &[1]);
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            if s.write_data(&Key::from(key(round, i).as_str()), &value(round, i), 0)
                .wait()
                .is_err()
            {
                break;
            }
            acked.push(i);
            i += 1;
        }
        acked
    })
}

fn assert_all_readable(node: &TestNode, acked: &[(u32, u32)]) {
    let s = session(node, &[1]);
    for (round, i) in acked {
        assert_eq!(
            read(&s, &key(*round, *i)).map(|d| d == value(*round, *i)),
            Ok(true),
            "acknowledged {} lost or changed",
            key(*round, *i)
        );
    }
}

#[test]
fn sigterm_while_writing_exits_zero_and_keeps_acknowledged_records() {
    let mut node = TestNode::start(&[1]);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(&node, 0, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    node.signal(15);
    let status = node.wait_exit(10_000).expect("node exits after SIGTERM");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(status.code(), Some(0), "{}", node.log());
    let acked = writer.join().expect("writer");
    assert!(
        acked.len() > 10,
        "only {} writes before SIGTERM",
        acked.len()
    );
    node.restart_until_listening();
    let acked: Vec<(u32, u32)> = acked.into_iter().map(|i| (0, i)).collect();
    assert_all_readable(&node, &acked);
}

#[test]
fn kill_9_at_random_points_loses_no_acknowledged_record() {
    let mut node = TestNode::start(&[1]);
    let mut rng = rand::thread_rng();
    let mut all: Vec<(u32, u32)> = Vec::new();
    for round in 0..4 {
        let stop = Arc::new(AtomicBool::new(false));
        let writer = spawn_writer(&node, round, stop.clone());
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        node.signal(9);
        let status = node.wait_exit(10_000).expect("killed node is reaped");
        stop.store(true, Ordering::Relaxed);
        assert_eq!(status.code(), None, "killed by a signal");
        all.extend(
            writer
                .join()
                .expect("writer")
                .into_iter()
                .map(|i| (round, i)),
        );
        node.restart_until_listening();
        assert_all_readable(&node, &all);
    }
    assert!(all.len() > 40, "only {} writes in all rounds", all.len());
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    fn new(size: &str) -> TmpfsMount {
        let dir = tempfile::tempdir().expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount")
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        TmpfsMount { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Whether a fresh connection to `node` gets a handshake reply.
fn handshake_answered(node: &TestNode) -> bool {
    let mut c = RawConn::connect(node.addr());
    c.send(&handshake_header([2, 26, 11, 1]), &[]);
    c.recv().is_some()
}

/// Fill a 2 MiB tmpfs through `node` until -ENOSPC; the acknowledged key numbers.
fn fill(node: &TestNode, chunk: impl Fn(u32) -> Vec<u8>) -> Vec<u32> {
    let s = session(node, &[1]);
    let mut acked = Vec::new();
    for i in 0..200u32 {
        if s.write_data(&Key::from(format!("fill-{i}").as_str()), &chunk(i), 0)
            .wait()
            .is_err()
        {
            break;
        }
        acked.push(i);
    }
    acked
}

#[test]
fn first_connection_after_restart_on_a_full_disk_is_answered() {
    let mount = TmpfsMount::new("2m");
    let mut node = TestNode::start_with(NodeSpec {
        backends: vec![(1, 1)],
        data_root: Some(mount.path()),
        extra_options: vec!["\"shard_count\": 1".into()],
        ..NodeSpec::default()
    });
    assert!(fill(&node, |i| vec![i as u8; 48 * 1024]).len() > 5);
    node.restart_until_listening();
    assert!(handshake_answered(&node), "{}", node.log());
    node.kill();
}

#[test]
fn node_waits_for_a_leftover_listener_on_its_port_before_listening() {
    let mut node = TestNode::start(&[1]);
    node.kill();
    // What a killed instance leaves while its ring is torn down: a reuseport listener that
    // nobody accepts on.
    let leftover = elliptics::runtime::TcpListener::bind_reuseport(node.addr(), 16)
        .expect("bind the leftover listener");
    let restarted = std::thread::spawn(move || {
        node.restart_until_listening();
        node
    });
    std::thread::sleep(Duration::from_millis(600));
    drop(leftover);
    let mut node = restarted.join().expect("restart thread");
    let log = node.log();
    assert!(log.contains("another socket still listens on"), "{log}");
    assert!(log.contains("is free now"), "{log}");
    for _ in 0..20 {
        assert!(handshake_answered(&node), "{}", node.log());
    }
    node.kill();
}

fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn full_disk_answers_enospc_keeps_reads_and_leaves_no_half_record() {
    let mount = TmpfsMount::new("2m");
    let mut node = TestNode::start_with(NodeSpec {
        backends: vec![(1, 1)],
        data_root: Some(mount.path()),
        ..NodeSpec::default()
    });
    let s = session(&node, &[1]);
    let chunk = |i: u32| vec![(i % 251) as u8; 48 * 1024];
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..200u32 {
        match s
            .write_data(&Key::from(format!("fill-{i}").as_str()), &chunk(i), 0)
            .wait()
        {
            Ok(_) => acked.push(i),
            Err(e) => {
                assert_eq!(e.status, errno::ENOSPC, "{}", e.message);
                refused = Some(i);
                break;
            }
        }
    }
    let refused = refused.expect("a 2 MiB disk fills up");
    assert!(acked.len() > 5, "only {} writes fit", acked.len());
    assert_eq!(
        s.write_data(&Key::from("after-full"), &chunk(0), 0)
            .wait()
            .map_err(|e| e.status)
            .err(),
        Some(errno::ENOSPC)
    );
    for i in &acked {
        assert_eq!(read(&s, &format!("fill-{i}")), Ok(chunk(*i)), "fill-{i}");
    }
    assert!(free_bytes(&mount.path()) < 48 * 1024);
    drop(s);
    node.restart_until_listening();
    assert!(handshake_answered(&node), "{}", node.log());
    let s = session(&node, &[1]);
    for i in &acked {
        assert_eq!(
            read(&s, &format!("fill-{i}")),
            Ok(chunk(*i)),
            "fill-{i} after restart"
        );
    }
    assert_eq!(read(&s, &format!("fill-{refused}")), Err(errno::ENOENT));
    assert_eq!(read(&s, "after-full"), Err(errno::ENOENT));
    node.kill();
    drop(node);
}

#[test]
fn kill_9_after_same_size_overwrites_with_periodic_sync_keeps_the_latest_values() {
    // `sync` > 0: writes are acknowledged once in the page cache, and a same-size overwrite
    // is a store into the data file's shared map. Process death must keep every one.
    let mut node = TestNode::start_with(NodeSpec {
        sync_s: 60,
        blob_flags: "0".into(),
        ..NodeSpec::default()
    });
    let s = session(&node, &[1]);
    let keys = 300u32;
    for round in 0..3u32 {
        for i in 0..keys {
            let mut v = value(0, i);
            v.iter_mut().for_each(|b| *b ^= round as u8);
            s.write_data(&Key::from(key(0, i).as_str()), &v, 0)
                .wait()
                .expect("write acknowledged");
        }
    }
    node.signal(9);
    node.wait_exit(10_000).expect("killed node is reaped");
    node.restart_until_listening();
    let s = session(&node, &[1]);
    for i in 0..keys {
        let mut want = value(0, i);
        want.iter_mut().for_each(|b| *b ^= 2);
        assert_eq!(read(&s, &key(0, i)), Ok(want), "key {i} after kill -9");
    }
}
