//! Replies on a connection that a large READ streams through: a reply is one whole frame,
//! so the streamed reply cannot be interleaved with others, but small READs pipelined
//! right behind the large one are answered before its frame starts, and those sent while
//! it streams follow it, none lost. A LOOKUP with a checksum of a large value reads it a
//! few chunks at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::large::rss_anon_bytes;
use common::raw::{read_request, write_request, RawConn};
use common::{NodeSpec, TestNode};
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, command, CmdHeader, IoAttr, LookupReply, HEADER_SIZE_BYTES};
use sha2::{Digest, Sha512};
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

#[test]
fn a_lookup_with_checksum_of_a_large_value_gives_its_sha512_without_holding_it() {
    let node = TestNode::start_with(NodeSpec {
        blob_flags: "0".into(),
        ..NodeSpec::default()
    });
    let pid = node.pid().unwrap();
    let (mut c, _) = RawConn::handshaken(node.addr());
    c.stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let value: Vec<u8> = (0..16 * MIB)
        .map(|i| (i % 253) as u8 ^ (i >> 20) as u8)
        .collect();
    let (h, body) = write_request(b"checksummed", 1, &value);
    assert_eq!(c.call(h, &body).last().unwrap().header.status, 0);
    let before = rss_anon_bytes(pid);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_anon_bytes(pid));
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };
    let lookup = CmdHeader {
        id: RawId::from_key(b"checksummed"),
        group_id: 1,
        cmd: command::LOOKUP,
        flags: cmd_flags::NEED_ACK | cmd_flags::CHECKSUM,
        ..CmdHeader::default()
    };
    let replies = c.call(lookup, &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let grown = watch.join().unwrap().saturating_sub(before);
    let info = replies
        .iter()
        .find_map(|r| LookupReply::decode(&r.payload).ok())
        .expect("a lookup reply");
    assert_eq!(info.info.size, value.len() as u64);
    let want: [u8; 64] = Sha512::digest(&value).into();
    assert!(info.info.checksum == want, "the value's sha512");
    assert!(
        grown < (value.len() / 2) as u64,
        "the node grew {grown} bytes checksumming {} bytes",
        value.len()
    );
}
