//! `dnet_ioserv` on the wire, without the client library: the original server's captured
//! requests replayed byte for byte, the handshake's version check and advertised address,
//! and bad input that must never take the node down.

mod common;

use common::raw::{handshake_header, read_request, write_request, RawConn, RawReply};
use common::{capture, session, TestNode};
use elliptics::client::Key;
use elliptics::protocol::{
    cmd_flags, command, errno, CmdHeader, DnetAddr, FileInfo, IdContainer, HEADER_SIZE_BYTES,
};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// The payload size with the parts that legitimately differ between servers taken out:
/// ring ids in the handshake and the data path in lookup and write replies.
fn comparable_size(cmd: i32, payload: &[u8]) -> usize {
    match cmd {
        command::REVERSE_LOOKUP => {
            let addrs = payload
                .get(4..8)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .expect("addr_num") as usize;
            let ids_at = 8 + 32 * addrs;
            let ids = IdContainer::decode(payload.get(ids_at..).expect("id container"))
                .expect("id container decodes");
            let id_bytes: usize = ids.backends.iter().map(|b| b.ids.len() * 64).sum();
            payload.len() - id_bytes
        }
        command::LOOKUP | command::WRITE if !payload.is_empty() => {
            let (_, flen) = FileInfo::decode(payload.get(32..144).expect("file info"))
                .expect("file info decodes");
            payload.len() - flen as usize
        }
        _ => payload.len(),
    }
}

fn assert_like(ours: &RawReply, original: &[u8], what: &str) {
    let orig = CmdHeader::decode(original).expect("captured header");
    let orig_payload = &original[HEADER_SIZE_BYTES..];
    let h = &ours.header;
    assert_eq!(
        (h.cmd, h.flags, h.status, h.trans),
        (orig.cmd, orig.flags, orig.status, orig.trans),
        "{what}: cmd/flags/status/trans"
    );
    assert_eq!(h.size as usize, ours.payload.len());
    assert_eq!(
        comparable_size(h.cmd, &ours.payload),
        comparable_size(orig.cmd, orig_payload),
        "{what}: payload size"
    );
    if h.cmd == command::READ && h.status == 0 {
        assert_eq!(
            ours.payload.get(208..),
            orig_payload.get(208..),
            "{what}: read data"
        );
    }
}

/// Replay every client frame of `name` on one connection and compare each reply with the
/// server frame captured after it.
fn replay(node: &TestNode, name: &str) {
    let messages = capture::load(name);
    assert!(messages.len() >= 4, "{name}: too few messages");
    let mut conn = RawConn::connect(node.addr());
    let mut i = 0;
    while i < messages.len() {
        let m = &messages[i];
        assert!(m.from_client, "{name}: message {i} starts with a request");
        conn.send_bytes(&m.bytes);
        i += 1;
        while i < messages.len() && !messages[i].from_client {
            let ours = conn
                .recv()
                .unwrap_or_else(|| panic!("{name}: no reply {i}"));
            assert_like(
                &ours,
                &messages[i].bytes,
                &format!("{name} message {}", i + 1),
            );
            i += 1;
        }
    }
}

#[test]
fn captured_requests_get_replies_shaped_like_the_originals() {
    let node = TestNode::start(&[1]);
    for name in [
        "ioclient-write.txt",
        "ioclient-read.txt",
        "ioclient-read-missing.txt",
        "python-write-read.txt",
        "ioclient-write-rawid.txt",
    ] {
        replay(&node, name);
    }
}

/// A fresh client can still write and read.
fn assert_serves(node: &TestNode) {
    let s = session(node, &[1]);
    let key = Key::from(format!("probe-{}", node.port).as_str());
    s.write_data(&key, b"still here", 0)
        .wait()
        .expect("write after bad input");
    let got = s
        .read_data(&key, 0, 0)
        .wait()
        .expect("read after bad input");
    assert_eq!(
        got.into_iter().find_map(|e| e.payload).map(|p| p.data),
        Some(b"still here".to_vec())
    );
}

#[test]
fn garbage_bytes_do_not_take_the_node_down() {
    let node = TestNode::start(&[1]);
    let mut junk = vec![0u8; 64 * 1024];
    let mut x: u32 = 0x1234_5678;
    for b in junk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut s = TcpStream::connect(node.addr()).expect("connect");
    let _ = s.write_all(&junk);
    drop(s);
    let mut s = RawConn::connect(node.addr());
    let _ = s.stream.write_all(&junk[..1000]);
    assert_serves(&node);
}

#[test]
fn truncated_header_then_close_does_not_take_the_node_down() {
    let node = TestNode::start(&[1]);
    let (h, _) = write_request(b"k", 1, b"v");
    let mut s = TcpStream::connect(node.addr()).expect("connect");
    s.write_all(&h.encode()[..60]).expect("send half a header");
    drop(s);
    assert_serves(&node);
}

#[test]
fn header_announcing_two_to_the_63_bytes_is_refused_with_e2big_and_closed() {
    let node = TestNode::start(&[1]);
    let (mut c, _) = RawConn::handshaken(node.addr());
    let (mut h, _) = write_request(b"huge", 1, b"");
    h.size = 1 << 63;
    h.trans = 7;
    c.send_bytes(&h.encode());
    let reply = c.recv().expect("an error ack before the close");
    assert_eq!((reply.header.trans, reply.header.status), (7, errno::E2BIG));
    assert!(c.is_closed_by_peer(2000));
    assert_serves(&node);
}

#[test]
fn write_body_shorter_than_its_io_attr_is_an_error_and_the_link_stays_up() {
    let node = TestNode::start(&[1]);
    let (mut c, _) = RawConn::handshaken(node.addr());
    let (h, mut body) = write_request(b"short-body", 1, &[7u8; 1000]);
    body.truncate(208 + 10);
    let replies = c.call(h, &body);
    let last = replies.last().expect("a reply");
    assert_eq!(last.header.status, errno::EINVAL);
    let (h, body) = write_request(b"short-body", 1, b"whole");
    let replies = c.call(h, &body);
    assert_eq!(replies.last().map(|r| r.header.status), Some(0));
    assert_serves(&node);
}

#[test]
fn unknown_command_is_acked_with_an_error_and_the_link_stays_up() {
    let node = TestNode::start(&[1]);
    let (mut c, _) = RawConn::handshaken(node.addr());
    let h = CmdHeader {
        cmd: 99,
        flags: cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    };
    let replies = c.call(h, b"whatever");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].header.status, errno::ENOTSUP);
    assert_eq!(replies[0].header.cmd, 99);
    assert!(replies[0].header.flags & cmd_flags::REPLY != 0);
    let (h, body) = write_request(b"after-unknown", 1, b"ok");
    assert_eq!(c.call(h, &body).last().map(|r| r.header.status), Some(0));
    let (h, body) = read_request(b"after-unknown", 1);
    let read = c.call(h, &body);
    assert_eq!(
        read.last().and_then(|r| r.payload.get(208..)),
        Some(&b"ok"[..])
    );
}

#[test]
fn five_hundred_silent_connections_do_not_starve_a_client() {
    let node = TestNode::start(&[1]);
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(node.addr()).expect("idle connection"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_serves(&node);
    drop(idle);
    assert_serves(&node);
}

#[test]
fn wrong_protocol_version_is_refused_with_eproto_and_closed() {
    let node = TestNode::start(&[1]);
    for version in [[3, 26, 11, 1], [2, 25, 0, 0]] {
        let mut c = RawConn::connect(node.addr());
        c.send(&handshake_header(version), &[]);
        let reply = c.recv().expect("an error ack");
        assert_eq!(reply.header.status, errno::EPROTO, "version {version:?}");
        assert_eq!(reply.header.cmd, command::REVERSE_LOOKUP);
        assert!(c.is_closed_by_peer(2000), "version {version:?} left open");
    }
    assert_serves(&node);
}

#[test]
fn handshake_reply_advertises_the_configured_address_and_backend() {
    let node = TestNode::start(&[1, 2]);
    let (_, reply) = RawConn::handshaken(node.addr());
    assert_eq!(reply.header.flags, cmd_flags::NOLOCK | cmd_flags::REPLY);
    let p = &reply.payload;
    assert_eq!(p.get(0..8), Some(&[1u8, 0, 0, 0, 1, 0, 0, 0][..]));
    let addr = DnetAddr::decode(&p[8..40]).expect("dnet_addr");
    assert_eq!(addr.to_socket_addr(), Some(node.addr()));
    let ids = IdContainer::decode(&p[40..]).expect("id container");
    let mut groups: Vec<(i32, i32)> = ids
        .backends
        .iter()
        .map(|b| (b.backend_id, b.group_id))
        .collect();
    groups.sort();
    assert_eq!(groups, vec![(1, 1), (2, 2)]);
    assert!(ids.backends.iter().all(|b| !b.ids.is_empty()));
}

#[test]
fn connections_opened_right_after_a_closed_one_are_served() {
    let node = TestNode::start(&[1]);
    let mut failures = 0;
    for _ in 0..200 {
        drop(TcpStream::connect(node.addr()).expect("probe"));
        let mut c = RawConn::connect(node.addr());
        c.send(&handshake_header([2, 26, 11, 1]), &[]);
        if c.recv().is_none() {
            failures += 1;
        }
    }
    assert_eq!(failures, 0, "handshakes dropped out of 200");
}

#[test]
fn first_connection_after_start_is_served() {
    let mut failures = 0;
    for _ in 0..10 {
        let node = TestNode::start(&[1]);
        let mut c = RawConn::connect(node.addr());
        c.send(&handshake_header([2, 26, 11, 1]), &[]);
        if c.recv().is_none() {
            failures += 1;
        }
    }
    assert_eq!(failures, 0, "first handshakes dropped out of 10");
}

/// The node's anonymous resident memory in KiB (its mapped blob files left out).
fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon")
}

#[test]
fn a_client_that_never_reads_its_replies_holds_a_bounded_share_of_node_memory() {
    let node = TestNode::start(&[1]);
    let s = session(&node, &[1]);
    let value = vec![5u8; 64 << 10];
    s.write_data(&Key::from("big"), &value, 0)
        .wait()
        .expect("write");
    let pid = node.pid().expect("pid");
    let before_kib = rss_anon_kib(pid);

    // 1000 READs of the 64 KiB value per batch: 64 MB of replies asked for per 328 KB sent.
    let (header, payload) = read_request(b"big", 1);
    let mut batch = Vec::new();
    for trans in 0..1000u64 {
        let mut h = header;
        h.trans = trans;
        h.size = payload.len() as u64;
        batch.extend_from_slice(&h.encode());
        batch.extend_from_slice(&payload);
    }
    let (conn, _) = RawConn::handshaken(node.addr());
    let mut stream = conn.stream;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .expect("write timeout");
    let mut batches_sent = 0;
    while batches_sent < 64 && stream.write_all(&batch).is_ok() {
        batches_sent += 1;
    }
    assert!(batches_sent < 64, "the node read 4 GB worth of requests");

    // Other clients are served while this one holds its replies.
    let read = s
        .read_data(&Key::from("big"), 0, 0)
        .wait()
        .expect("read while a client stalls");
    assert_eq!(
        read.into_iter().find_map(|e| e.payload).map(|p| p.data),
        Some(value)
    );
    let grown_kib = rss_anon_kib(pid).saturating_sub(before_kib);
    assert!(grown_kib < 256 << 10, "node grew {grown_kib} KiB");
    drop(stream);
    s.read_data(&Key::from("big"), 0, 0)
        .wait()
        .expect("read after the stalled client left");
}
