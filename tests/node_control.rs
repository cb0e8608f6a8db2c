//! Node control against a real `dnet_ioserv`: per-shard work in MONITOR_STAT and over HTTP,
//! STATUS (read-only, exit), BACKEND_STATUS, BACKEND_CONTROL (disable/enable, read-only,
//! defrag) and the `dnet_ioclient` command line.

mod common;
use common::ioclient;

use common::kv::{read, write};
use common::{free_port, session, NodeSpec, TestNode};
use elliptics::client::{backend_command, BackendStatus, Key, NodeStatus, Session};
use elliptics::protocol::errno;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

fn keys_served_per_shard(json: &serde_json::Value) -> Vec<u64> {
    json["shards"]
        .as_array()
        .expect("shards array")
        .iter()
        .map(|s| s["keys_served"].as_u64().expect("keys_served"))
        .collect()
}

#[test]
fn keys_of_one_bulk_request_are_served_by_every_shard() {
    let http_port = free_port();
    let node = TestNode::start_with(NodeSpec {
        backends: vec![(1, 1)],
        extra_options: vec![
            "\"shard_count\": 2".into(),
            format!("\"monitor\": {{\"port\": {http_port}}}"),
        ],
        ..NodeSpec::default()
    });
    let s = session(&node, &[1]);
    let keys: Vec<Key> = (0..1000)
        .map(|i| Key::from(format!("spread-{i}").as_str()))
        .collect();
    let writes = keys.iter().map(|k| s.write_data(k, b"x", 0)).collect();
    for r in elliptics::client::join_all(writes).wait().expect("writes") {
        r.expect("write");
    }
    let before: serde_json::Value = serde_json::from_str(
        &s.monitor_stat(u64::MAX).wait().expect("monitor")[0]
            .payload
            .clone()
            .expect("json"),
    )
    .expect("monitor json");
    let got = s.bulk_read(&keys).wait().expect("bulk read");
    assert_eq!(got.iter().filter(|e| e.payload.is_some()).count(), 1000);
    let after_text = s.monitor_stat(u64::MAX).wait().expect("monitor")[0]
        .payload
        .clone()
        .expect("json");
    let after: serde_json::Value = serde_json::from_str(&after_text).expect("monitor json");
    assert_eq!(after["shard_count"], 2);
    let (b, a) = (
        keys_served_per_shard(&before),
        keys_served_per_shard(&after),
    );
    assert_eq!(a.len(), 2);
    let bulk: Vec<u64> = a.iter().zip(&b).map(|(a, b)| a - b).collect();
    assert!(
        bulk.iter().all(|n| *n > 0),
        "one bulk read per shard: {bulk:?}"
    );
    assert_eq!(bulk.iter().sum::<u64>(), 1000);
    let mut http = TcpStream::connect(("127.0.0.1", http_port)).expect("monitor http");
    http.write_all(b"GET /all HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut text = String::new();
    http.read_to_string(&mut text).expect("response");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).expect("body");
    let over_http: serde_json::Value = serde_json::from_str(body).expect("http json");
    let h = keys_served_per_shard(&over_http);
    assert!(h.iter().zip(&a).all(|(h, a)| h >= a), "{h:?} vs {a:?}");
}

fn set_status(s: &Session, node: &TestNode, flags: i32) -> Result<NodeStatus, i32> {
    let status = NodeStatus {
        status_flags: flags,
        ..NodeStatus::UNCHANGED
    };
    s.node_status(node.addr(), status)
        .wait()
        .map_err(|e| e.status)?
        .into_iter()
        .find_map(|e| e.payload)
        .ok_or(errno::EINVAL)
}

#[test]
fn status_read_only_refuses_writes_until_cleared() {
    let node = TestNode::start(&[1]);
    let s = session(&node, &[1]);
    write(&s, "before-ro", b"kept").expect("write");
    let now = set_status(&s, &node, 2).expect("set read-only");
    assert_eq!(now.status_flags, 2);
    assert_eq!(write(&s, "during-ro", b"no"), Err(errno::EROFS));
    let removed = s
        .remove(&Key::from("before-ro"))
        .wait()
        .map_err(|e| e.status);
    assert_eq!(removed.err(), Some(errno::EROFS));
    assert_eq!(read(&s, "before-ro"), Ok(b"kept".to_vec()));
    assert_eq!(set_status(&s, &node, 0).map(|n| n.status_flags), Ok(0));
    write(&s, "after-ro", b"yes").expect("write after clearing");
}

#[test]
fn status_exit_flag_stops_the_node_with_status_zero() {
    let mut node = TestNode::start(&[1]);
    let s = session(&node, &[1]);
    write(&s, "k", b"v").expect("write");
    let _ = set_status(&s, &node, 1);
    let status = node.wait_exit(10_000).expect("node exits");
    assert_eq!(status.code(), Some(0));
}

fn backends(s: &Session, node: &TestNode) -> Vec<BackendStatus> {
    let mut all: Vec<BackendStatus> = s
        .backend_status(node.addr())
        .wait()
        .expect("backend status")
        .into_iter()
        .flat_map(|e| e.payload.unwrap_or_default())
        .collect();
    all.sort_by_key(|b| b.backend_id);
    all
}

fn control(s: &Session, node: &TestNode, backend: u32, command: u32) -> Result<(), i32> {
    s.backend_control(node.addr(), backend, command, 0, 0, &[])
        .wait()
        .map(|_| ())
        .map_err(|e| e.status)
}

#[test]
fn backend_status_lists_every_backend_enabled() {
    let node = TestNode::start(&[1, 2]);
    let s = session(&node, &[1]);
    let all = backends(&s, &node);
    let states: Vec<(u32, i32, bool)> = all
        .iter()
        .map(|b| (b.backend_id, b.state, b.read_only))
        .collect();
    assert_eq!(states, vec![(1, 1, false), (2, 1, false)]);
}

#[test]
fn backend_disable_and_enable_answer_ealready_on_repeat_and_keep_data() {
    let node = TestNode::start(&[1, 2]);
    let s = session(&node, &[1]);
    write(&s, "survives", b"disable cycle").expect("write");
    control(&s, &node, 1, backend_command::DISABLE).expect("disable");
    assert_eq!(backends(&s, &node)[0].state, 0);
    assert_eq!(
        control(&s, &node, 1, backend_command::DISABLE),
        Err(errno::EALREADY)
    );
    assert!(
        read(&s, "survives").is_err(),
        "a disabled backend serves nothing"
    );
    control(&s, &node, 1, backend_command::ENABLE).expect("enable");
    assert_eq!(
        control(&s, &node, 1, backend_command::ENABLE),
        Err(errno::EALREADY)
    );
    assert_eq!(backends(&s, &node)[0].state, 1);
    assert_eq!(read(&s, "survives"), Ok(b"disable cycle".to_vec()));
    let s2 = session(&node, &[2]);
    write(&s2, "other-backend", b"unaffected").expect("group 2 write");
}

#[test]
fn backend_read_only_refuses_writes_and_writeable_restores_them() {
    let node = TestNode::start(&[1, 2]);
    let s = session(&node, &[1]);
    write(&s, "ro-key", b"old").expect("write");
    control(&s, &node, 1, backend_command::READ_ONLY).expect("read-only");
    assert!(backends(&s, &node)[0].read_only);
    assert_eq!(write(&s, "ro-key", b"new"), Err(errno::EROFS));
    assert_eq!(read(&s, "ro-key"), Ok(b"old".to_vec()));
    write(&session(&node, &[2]), "ro-key", b"g2").expect("group 2 stays writable");
    control(&s, &node, 1, backend_command::WRITEABLE).expect("writeable");
    write(&s, "ro-key", b"new").expect("write again");
    assert_eq!(read(&s, "ro-key"), Ok(b"new".to_vec()));
}

#[test]
fn start_defrag_keeps_live_data_and_drops_removed_keys() {
    let node = TestNode::start(&[1]);
    let s = session(&node, &[1]);
    for i in 0..200 {
        write(&s, &format!("df-{i}"), format!("value-{i}").as_bytes()).expect("write");
    }
    for i in (0..200).step_by(2) {
        s.remove(&Key::from(format!("df-{i}").as_str()))
            .wait()
            .expect("remove");
    }
    control(&s, &node, 1, backend_command::START_DEFRAG).expect("defrag");
    for i in 0..200 {
        let got = read(&s, &format!("df-{i}"));
        if i % 2 == 0 {
            assert_eq!(got, Err(errno::ENOENT), "df-{i}");
        } else {
            assert_eq!(got, Ok(format!("value-{i}").into_bytes()), "df-{i}");
        }
    }
}

#[test]
fn ioclient_round_trips_a_binary_file_and_removes_it() {
    let node = TestNode::start(&[1]);
    let data: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(node.dir.path().join("blob.bin"), &data).expect("file");
    let w = ioclient(&node, &["-W", "blob.bin"]);
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let r = ioclient(&node, &["-D", "blob.bin"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(r.stdout == data, "-D returned {} bytes", r.stdout.len());
    let l = ioclient(&node, &["-L", "blob.bin"]);
    let text = String::from_utf8_lossy(&l.stdout);
    assert!(l.status.success());
    assert!(text.contains("\tsize: 200000"), "{text}");
    assert!(text.contains(&format!("Storage address: 127.0.0.1:{}", node.port)));
    let u = ioclient(&node, &["-u", "blob.bin"]);
    assert!(u.status.success(), "{}", String::from_utf8_lossy(&u.stderr));
    let gone = ioclient(&node, &["-D", "blob.bin"]);
    assert!(!gone.status.success());
    assert!(gone.stdout.is_empty());
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(err.contains("No such file or directory: -2"), "{err}");
}

#[test]
fn ioclient_failures_exit_non_zero_with_the_reason_on_stderr() {
    let node = TestNode::start(&[1]);
    let missing = ioclient(&node, &["-W", "no-such-local-file"]);
    assert!(!missing.status.success());
    assert!(!missing.stderr.is_empty());
    let enxio = Command::new(env!("CARGO_BIN_EXE_dnet_ioclient"))
        .current_dir(node.dir.path())
        .args(["-r", &node.remote(), "-g", "42", "-w", "5", "-D", "k"])
        .output()
        .expect("run dnet_ioclient");
    assert!(!enxio.status.success());
    let err = String::from_utf8_lossy(&enxio.stderr);
    assert!(err.contains("-6"), "{err}");
}
