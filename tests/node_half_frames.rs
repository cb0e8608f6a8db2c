//! Clients that send the start of a frame and stop: the node holds a bounded amount of
//! memory for all of them together, closes a connection whose frame makes no progress for
//! `frame_stall_timeout` seconds, and leaves connections that idle between frames alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raw::{read_request, write_request, RawConn};
use common::{NodeSpec, TestNode};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// Connections that each announce a 60 MiB WRITE and send 8 MiB of it.
const HALF_FRAME_CONNECTIONS: usize = 40;
const ANNOUNCED_BYTES: usize = 60 << 20;
const SENT_BYTES: usize = 8 << 20;
/// Idle handshaken connections that must stay cheap and open.
const IDLE_CONNECTIONS: usize = 2000;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// The first `SENT_BYTES` of a WRITE frame announcing `ANNOUNCED_BYTES` of data.
fn half_write_frame(i: usize) -> Vec<u8> {
    let (mut header, body) = write_request(format!("half-{i}").as_bytes(), 1, &[]);
    header.size = (body.len() + ANNOUNCED_BYTES) as u64;
    header.trans = 1;
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(&body);
    bytes.resize(bytes.len() + SENT_BYTES, 0x42);
    bytes
}

/// A fresh connection that completes a WRITE and a READ of `key`.
fn write_and_read(node: &TestNode, key: &str) {
    let (mut c, _) = RawConn::handshaken(node.addr());
    let (h, body) = write_request(key.as_bytes(), 1, b"small value");
    assert_eq!(c.call(h, &body).last().unwrap().header.status, 0);
    let (h, body) = read_request(key.as_bytes(), 1);
    assert_eq!(c.call(h, &body).last().unwrap().header.status, 0);
}

#[test]
fn connections_holding_half_sent_frames_hold_bounded_node_memory_together() {
    let node = TestNode::start(&[1]);
    let pid = node.pid().unwrap();
    let before = rss_bytes(pid);
    let senders: Vec<_> = (0..HALF_FRAME_CONNECTIONS)
        .map(|i| {
            let addr = node.addr();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
                // A connection the node does not read from yet cannot send it all.
                let _ = s.write_all(&half_write_frame(i));
                s
            })
        })
        .collect();
    let open: Vec<TcpStream> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    // Other clients are served meanwhile.
    write_and_read(&node, "while-half-frames-wait");
    let grown = rss_bytes(pid).saturating_sub(before);
    eprintln!("half frames: the node grew by {} MiB", grown >> 20);
    assert!(
        grown < 128 << 20,
        "{HALF_FRAME_CONNECTIONS} connections with {} MiB of half frames each grew the node \
         by {} MiB",
        SENT_BYTES >> 20,
        grown >> 20
    );
    drop(open);
}

#[test]
fn a_half_sent_frame_that_stops_is_closed_and_idle_connections_stay_open() {
    let node = TestNode::start_with(NodeSpec {
        extra_options: vec!["\"frame_stall_timeout\": 1".into()],
        ..NodeSpec::default()
    });
    let pid = node.pid().unwrap();
    let before = rss_bytes(pid);
    let idle: Vec<RawConn> = (0..IDLE_CONNECTIONS)
        .map(|_| RawConn::handshaken(node.addr()).0)
        .collect();
    let grown = rss_bytes(pid).saturating_sub(before);
    eprintln!(
        "{IDLE_CONNECTIONS} idle connections: the node grew by {} MiB",
        grown >> 20
    );

    let mut stalled = RawConn::handshaken(node.addr()).0;
    let frame = half_write_frame(0);
    stalled.send_bytes(&frame[..4096]);
    let mut small = RawConn::handshaken(node.addr()).0;
    let (mut h, body) = write_request(b"small-stalled", 1, b"value");
    h.size = body.len() as u64;
    let mut bytes = h.encode().to_vec();
    bytes.extend_from_slice(&body[..10]);
    small.send_bytes(&bytes);

    assert!(stalled.is_closed_by_peer(10_000), "a large frame stalled");
    assert!(small.is_closed_by_peer(10_000), "a small frame stalled");
    // The idle connections outlived the stall timeout and still serve.
    for mut c in idle.into_iter().step_by(100) {
        let (h, body) = read_request(b"missing", 1);
        let replies = c.call(h, &body);
        assert!(!replies.is_empty());
    }
    assert!(
        grown < 64 << 20,
        "{IDLE_CONNECTIONS} idle connections cost the node {} MiB",
        grown >> 20
    );
    write_and_read(&node, "after-stalls");
}
