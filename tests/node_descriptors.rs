//! Clients that send requests and go away without reading the replies: every descriptor
//! the node opened for them is closed again, whether they closed quietly (FIN), reset the
//! connection (RST) or pipelined many requests first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raw::{read_request, write_request, RawConn};
use common::TestNode;
use elliptics::protocol::{command, CmdHeader};
use std::io::Read;
use std::time::{Duration, Instant};

/// Connections of each kind the test opens and abandons.
const CONNECTIONS_PER_KIND: usize = 30;
/// How long the node may take to close what the clients left behind.
const SETTLE_WAIT_MS: u64 = 15_000;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The node's descriptor count once it stops falling (or `deadline_ms` passed).
fn settled_fds(pid: u32, at_most: usize, deadline_ms: u64) -> usize {
    let deadline = Instant::now() + Duration::from_millis(deadline_ms);
    loop {
        let n = open_fds(pid);
        if n <= at_most || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn frame(header: CmdHeader, payload: &[u8], trans: u64) -> Vec<u8> {
    let mut h = header;
    h.trans = trans;
    h.size = payload.len() as u64;
    let mut bytes = h.encode().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

fn lookup_request(key: &[u8]) -> (CmdHeader, Vec<u8>) {
    let (mut header, payload) = read_request(key, 1);
    header.cmd = command::LOOKUP;
    (header, payload)
}

/// Send `bytes` on a fresh connection and close it without reading anything. With
/// `reset`, wait until a reply is in the socket first, so the close resets the connection.
fn send_and_abandon(node: &TestNode, bytes: &[u8], reset: bool) {
    let mut c = RawConn::connect(node.addr());
    c.send_bytes(bytes);
    if reset {
        let mut one = [0u8; 1];
        let _ = c.stream.peek(&mut one);
    }
    drop(c);
}

#[test]
fn clients_that_close_without_reading_their_replies_leave_no_descriptors_behind() {
    let node = TestNode::start(&[1]);
    let pid = node.pid().unwrap();
    let value = vec![0x5au8; 256 * 1024];
    let keys: Vec<String> = (0..8).map(|i| format!("fd-key-{i}")).collect();
    {
        let (mut c, _) = RawConn::handshaken(node.addr());
        for key in &keys {
            let (h, body) = write_request(key.as_bytes(), 1, &value);
            let replies = c.call(h, &body);
            assert_eq!(replies.last().unwrap().header.status, 0, "write {key}");
        }
        // Let the node finish with this connection before counting.
        c.stream.shutdown(std::net::Shutdown::Both).unwrap();
        let _ = c.stream.read(&mut [0u8; 1]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let baseline = open_fds(pid);

    for i in 0..CONNECTIONS_PER_KIND {
        let key = keys[i % keys.len()].as_bytes();
        let (h, body) = lookup_request(key);
        send_and_abandon(&node, &frame(h, &body, 1), false);
        let (h, body) = read_request(key, 1);
        send_and_abandon(&node, &frame(h, &body, 1), false);
        let (h, body) = write_request(format!("fd-new-{i}").as_bytes(), 1, &value);
        send_and_abandon(&node, &frame(h, &body, 1), false);
        let mut pipelined = Vec::new();
        for (t, k) in keys.iter().enumerate() {
            let (h, body) = read_request(k.as_bytes(), 1);
            pipelined.extend(frame(h, &body, t as u64 + 1));
            let (h, body) = lookup_request(k.as_bytes());
            pipelined.extend(frame(h, &body, t as u64 + 100));
        }
        send_and_abandon(&node, &pipelined, false);
        let (h, body) = read_request(key, 1);
        send_and_abandon(&node, &frame(h, &body, 1), true);
    }

    let opened = CONNECTIONS_PER_KIND * 5;
    let left = settled_fds(pid, baseline + 2, SETTLE_WAIT_MS);
    assert!(
        left <= baseline + 2,
        "{opened} abandoned connections left the node with {left} descriptors open \
         ({baseline} before them)"
    );
    // And the node still serves.
    let (mut c, _) = RawConn::handshaken(node.addr());
    let (h, body) = read_request(keys[0].as_bytes(), 1);
    let replies = c.call(h, &body);
    assert_eq!(replies.last().unwrap().header.status, 0);
}

/// The soft and hard "Max open files" of process `pid`.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let mut fields = line.split_whitespace().skip(3);
    (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    )
}

#[test]
fn a_node_started_under_a_low_soft_descriptor_limit_raises_it_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let config = dir.path().join("ioserv.json");
    let spec = common::NodeSpec::default();
    std::fs::write(&config, common::render_config(&spec, dir.path(), port)).unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -S -n 256 && exec \"$0\" -c \"$1\"")
        .arg(env!("CARGO_BIN_EXE_dnet_ioserv"))
        .arg(&config)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = dir.path().join("ioserv.log");
    let deadline = Instant::now() + Duration::from_millis(common::NODE_START_TIMEOUT_MS);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listening on")
    {
        assert!(Instant::now() < deadline, "the node did not start");
        assert!(child.try_wait().unwrap().is_none(), "the node exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (soft, hard) = open_files_limits(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert_ne!(soft, "256", "the soft limit was left as started");
    assert_eq!(soft, hard);
}
