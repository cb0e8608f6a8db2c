//! Replies on a connection that a large READ streams through: a reply is one whole frame,
//! so the streamed reply cannot be interleaved with others, but small READs pipelined
//! right behind the large one are answered before its frame starts, and those sent while
//! it streams follow it, none lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raw::{read_request, write_request, RawConn};
use common::{NodeSpec, TestNode};
use elliptics::protocol::{CmdHeader, IoAttr, HEADER_SIZE_BYTES};
use std::io::{Read, Write};
use std::time::Duration;

const MIB: usize = 1 << 20;
const LARGE_BYTES: usize = 24 * MIB;

/// The next reply frame: its header and how many payload bytes it carried.
fn next_reply(c: &mut RawConn) -> (CmdHeader, u64) {
    let h = next_reply_head(c);
    skip_payload(c, h.size);
    (h, h.size)
}

/// A READ frame of `key` under `trans`.
fn read_frame(key: &str, trans: u64) -> Vec<u8> {
    let (mut h, body) = read_request(key.as_bytes(), 1);
    h.trans = trans;
    h.size = body.len() as u64;
    let mut frame = h.encode().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[test]
fn small_reads_pipelined_behind_a_large_read_are_answered_before_its_frame() {
    let node = TestNode::start_with(NodeSpec {
        blob_flags: "0".into(),
        ..NodeSpec::default()
    });
    let (mut c, _) = RawConn::handshaken(node.addr());
    c.stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let large: Vec<u8> = (0..LARGE_BYTES).map(|i| (i % 251) as u8).collect();
    for (key, value) in [("large", &large[..]), ("small", &b"small value"[..])] {
        let (h, body) = write_request(key.as_bytes(), 1, value);
        assert_eq!(c.call(h, &body).last().unwrap().header.status, 0);
    }
    // One write: the large READ first, then three small ones.
    let mut burst = read_frame("large", 100);
    for trans in 101..104 {
        burst.extend_from_slice(&read_frame("small", trans));
    }
    c.stream.write_all(&burst).unwrap();
    let mut order = Vec::new();
    while order.len() < 4 {
        let (h, size) = next_reply(&mut c);
        if h.trans == 100 {
            assert_eq!(
                size as usize,
                LARGE_BYTES + IoAttr::default().encode().len(),
                "the large value whole"
            );
        }
        order.push(h.trans);
    }
    assert_eq!(
        order.last(),
        Some(&100),
        "the small replies ready before the large frame started went first: {order:?}"
    );
    // Small READs sent while a large reply streams follow it, none lost.
    c.stream.write_all(&read_frame("large", 200)).unwrap();
    let h = next_reply_head(&mut c);
    assert_eq!(h.trans, 200);
    c.stream.write_all(&read_frame("small", 201)).unwrap();
    skip_payload(&mut c, h.size);
    let (h, size) = next_reply(&mut c);
    assert_eq!((h.trans, h.status), (201, 0));
    assert!(size > 0);
}

/// The next reply's header, its payload left unread.
fn next_reply_head(c: &mut RawConn) -> CmdHeader {
    let mut head = [0u8; HEADER_SIZE_BYTES];
    c.stream.read_exact(&mut head).unwrap();
    CmdHeader::decode(&head).unwrap()
}

fn skip_payload(c: &mut RawConn, mut left: u64) {
    let mut buf = vec![0u8; MIB];
    while left > 0 {
        let n = (left as usize).min(MIB);
        c.stream.read_exact(&mut buf[..n]).unwrap();
        left -= n as u64;
    }
}
