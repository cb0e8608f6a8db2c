//! Automatic and controlled defragmentation against a real `dnet_ioserv`: a node under
//! `sync: 0` rewriting a small key set keeps its bytes on disk bounded (timed compact
//! passes give the space of old copies back), and `dnet_ioclient -d start|status` starts a
//! pass that leaves live keys readable, removed keys gone, and its count in the monitor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::ioclient;

use common::kv::read;
use common::{session, NodeSpec, TestNode};
use elliptics::client::{Key, Session};
use elliptics::protocol::errno;
use std::path::Path;
use std::time::{Duration, Instant};

const VALUE_BYTES: usize = 4096;

fn value(key: u32, round: u32) -> Vec<u8> {
    let mut v = format!("{key}:{round};").repeat(VALUE_BYTES / 8);
    v.truncate(VALUE_BYTES);
    v.into_bytes()
}

fn write(s: &Session, key: &str, data: &[u8]) {
    s.write_data(&Key::from(key), data, 0)
        .wait()
        .expect("write");
}

/// Bytes of every file under `dir`, and how many files there are.
fn disk_use(dir: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        if meta.is_file() {
            bytes += meta.len();
            files += 1;
        }
    }
    (bytes, files)
}

fn node_with(backend_extra: &[&str]) -> TestNode {
    TestNode::start_with(NodeSpec::small_files("256K", backend_extra))
}

#[test]
fn a_node_rewriting_a_small_key_set_under_group_commit_keeps_its_disk_use_bounded() {
    const KEYS: u32 = 40;
    const ROUNDS: u32 = 40;
    let node = node_with(&[
        "\"defrag_timeout\": 1",
        "\"defrag_percentage\": 50",
        "\"defrag_splay\": 12",
    ]);
    let s = session(&node, &[1]);
    for round in 0..ROUNDS {
        // A round's writes are in flight together and share their fdatasyncs.
        let keys: Vec<Key> = (0..KEYS)
            .map(|k| Key::from(format!("dk-{k}").as_str()))
            .collect();
        let values: Vec<Vec<u8>> = (0..KEYS).map(|k| value(k, round)).collect();
        let writes = keys
            .iter()
            .zip(&values)
            .map(|(key, v)| s.write_data(key, v, 0))
            .collect();
        for r in elliptics::client::join_all(writes).wait().expect("writes") {
            r.expect("write");
        }
    }
    let written = u64::from(KEYS * ROUNDS) * VALUE_BYTES as u64;
    let live = u64::from(KEYS) * VALUE_BYTES as u64;
    // Two copies of every live value, plus the open file and one more being filled.
    let bound = 2 * live + 2 * (256 << 10) + 64 * 1024;
    let data_dir = node.dir.path().join("eblob-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut used = disk_use(&data_dir);
    while used.0 > bound && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        used = disk_use(&data_dir);
    }
    assert!(
        used.0 <= bound,
        "{} bytes on disk in {} files after writing {written} bytes of which {live} are live (bound {bound})",
        used.0,
        used.1
    );
    assert!(used.1 <= 12, "{} files on disk", used.1);
    for k in 0..KEYS {
        assert_eq!(
            read(&s, &format!("dk-{k}")),
            Ok(value(k, ROUNDS - 1)),
            "dk-{k}"
        );
    }
}

fn monitor_defrag(s: &Session) -> serde_json::Value {
    let text = s.monitor_stat(u64::MAX).wait().expect("monitor")[0]
        .payload
        .clone()
        .expect("json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("monitor json");
    json["backends"][0]["defrag"].clone()
}

#[test]
fn ioclient_defrag_start_runs_a_pass_that_status_and_the_monitor_report() {
    // No timed pass: only the one asked for.
    let node = node_with(&["\"defrag_timeout\": 0"]);
    let s = session(&node, &[1]);
    for k in 0..300 {
        write(&s, &format!("dc-{k}"), &value(k, 0));
    }
    for k in (0..300).step_by(2) {
        s.remove(&Key::from(format!("dc-{k}").as_str()))
            .wait()
            .expect("remove");
    }
    let data_dir = node.dir.path().join("eblob-1");
    let before = disk_use(&data_dir).0;
    assert_eq!(monitor_defrag(&s)["runs"], 0);
    let start = ioclient(&node, &["-b", "1", "-d", "start"]);
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = String::new();
    while Instant::now() < deadline {
        let out = ioclient(&node, &["-b", "1", "-d", "status"]);
        assert!(out.status.success());
        status = String::from_utf8_lossy(&out.stdout).into_owned();
        if status.contains("defrag state: not started") && monitor_defrag(&s)["runs"] != 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(status.contains("defrag state: not started"), "{status}");
    let defrag = monitor_defrag(&s);
    assert!(defrag["files_rewritten"].as_u64().unwrap() > 0, "{defrag}");
    assert!(defrag["bytes_freed"].as_u64().unwrap() > 0, "{defrag}");
    assert!(disk_use(&data_dir).0 < before);
    for k in 0..300 {
        let got = read(&s, &format!("dc-{k}"));
        if k % 2 == 0 {
            assert_eq!(got, Err(errno::ENOENT), "dc-{k}");
        } else {
            assert_eq!(got, Ok(value(k, 0)), "dc-{k}");
        }
    }
    let stop = ioclient(&node, &["-b", "1", "-d", "stop"]);
    assert!(stop.status.success());
}
