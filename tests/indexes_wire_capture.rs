//! Secondary indexes against the bytes of the original 2.26.11.1 server: the client frames
//! of `python-indexes.txt` (set_indexes, update_indexes, find_all/find_any, list_indexes,
//! remove_indexes, recorded from the original Python bindings) are sent to a real node with
//! `indexes_shard_count` 2, and every reply must equal the original's byte for byte. Only
//! what names the node's own files and clock may differ: the advertised port, the LOOKUP
//! reply's file info, and the READ reply's timestamp.

mod common;

use common::capture::{load as capture, Message};
use common::raw::{RawConn, RawReply};
use common::{NodeSpec, TestNode};
use elliptics::protocol::{cmd_flags, command, CmdHeader, HEADER_SIZE_BYTES};
use std::collections::{HashMap, VecDeque};

/// Offsets inside a READ reply frame of the io_attr timestamp (tsec, tnsec).
const READ_TIMESTAMP_BYTES: std::ops::Range<usize> =
    HEADER_SIZE_BYTES + 0x90..HEADER_SIZE_BYTES + 0xa0;

fn indexes_node() -> TestNode {
    TestNode::start_with(NodeSpec {
        extra_options: vec![
            "\"indexes_shard_count\": 2".into(),
            // Several shards, so tables of one request live on different cores.
            "\"shard_count\": 4".into(),
        ],
        ..NodeSpec::default()
    })
}

fn frame_bytes(r: &RawReply) -> Vec<u8> {
    let mut out = r.header.encode().to_vec();
    out.extend_from_slice(&r.payload);
    out
}

fn header_of(bytes: &[u8]) -> CmdHeader {
    CmdHeader::decode(&bytes[..HEADER_SIZE_BYTES]).expect("captured header decodes")
}

/// Replace the advertised 127.0.0.1:1025 (sockaddr_in 02 00 04 01 7f 00 00 01) by `port`.
fn patch_port(bytes: &mut [u8], port: u16) {
    let needle = [2u8, 0, 4, 1, 127, 0, 0, 1];
    for i in 0..bytes.len().saturating_sub(needle.len() - 1) {
        if bytes[i..i + needle.len()] == needle {
            bytes[i + 2..i + 4].copy_from_slice(&port.to_be_bytes());
        }
    }
}

/// Reply frames read so far, by trans, so that replies of requests sent together may
/// arrive in any order between transactions (never within one).
struct Inbox {
    conn: RawConn,
    waiting: HashMap<u64, VecDeque<RawReply>>,
}

impl Inbox {
    fn next_of(&mut self, trans: u64) -> RawReply {
        loop {
            if let Some(r) = self.waiting.get_mut(&trans).and_then(|q| q.pop_front()) {
                return r;
            }
            let r = self.conn.recv().expect("a reply before the node closed");
            self.waiting.entry(r.header.trans).or_default().push_back(r);
        }
    }
}

fn check_reply(expected: &Message, got: &RawReply, port: u16) {
    let mut want = expected.bytes.clone();
    let mut have = frame_bytes(got);
    let h = header_of(&want);
    match h.cmd {
        command::ROUTE_LIST => patch_port(&mut want, port),
        command::LOOKUP => {
            // The file info names our blob file; the header and record flags must agree.
            let g = got.header;
            assert_eq!(
                (g.cmd, g.status, g.flags, g.backend_id),
                (h.cmd, h.status, h.flags, h.backend_id)
            );
            assert_eq!(g.id, h.id);
            let flags = |b: &[u8]| u64::from_le_bytes(b[32 + 72..32 + 80].try_into().expect("8"));
            let size = |b: &[u8]| u64::from_le_bytes(b[32 + 80..32 + 88].try_into().expect("8"));
            let want_payload = &want[HEADER_SIZE_BYTES..];
            assert_eq!(
                flags(&got.payload),
                flags(want_payload),
                "object table record flags"
            );
            assert_eq!(size(&got.payload), size(want_payload), "object table size");
            return;
        }
        command::READ => {
            want[READ_TIMESTAMP_BYTES].fill(0);
            have[READ_TIMESTAMP_BYTES].fill(0);
        }
        _ => {}
    }
    assert_eq!(
        have,
        want,
        "reply to {} (trans {}) differs from the original",
        command::name(h.cmd).unwrap_or("?"),
        h.trans
    );
}

#[test]
fn index_calls_of_the_original_bindings_get_the_original_replies_byte_for_byte() {
    let node = indexes_node();
    let messages = capture("python-indexes.txt");
    assert!(messages.len() > 30, "the capture holds the whole session");
    let mut inbox = Inbox {
        conn: RawConn::connect(node.addr()),
        waiting: HashMap::new(),
    };
    let mut checked = 0;
    for m in &messages {
        let h = header_of(&m.bytes);
        if m.from_client {
            inbox.conn.send_bytes(&m.bytes);
            continue;
        }
        let got = inbox.next_of(h.trans);
        if h.cmd == command::REVERSE_LOOKUP {
            // Our version and the configured shard count, as the original announced them.
            assert_eq!(
                got.header.id, h.id,
                "handshake version and indexes_shard_count"
            );
            assert_eq!(got.header.flags, h.flags);
            continue;
        }
        check_reply(m, &got, node.port);
        checked += 1;
    }
    assert_eq!(
        checked,
        messages.iter().filter(|m| !m.from_client).count() - 1
    );
}

#[test]
fn a_malformed_index_request_is_refused_and_the_node_keeps_serving() {
    let node = indexes_node();
    let (mut conn, _) = RawConn::handshaken(node.addr());
    for cmd in [
        command::INDEXES_UPDATE,
        command::INDEXES_INTERNAL,
        command::INDEXES_FIND,
    ] {
        let header = CmdHeader {
            cmd,
            group_id: 1,
            flags: cmd_flags::NEED_ACK,
            ..CmdHeader::default()
        };
        // An entry count far past the body.
        let mut body = vec![0u8; 136];
        body[0x80..0x88].copy_from_slice(&u64::MAX.to_le_bytes());
        let replies = conn.call(header, &body);
        assert_eq!(replies.len(), 1);
        assert_eq!(
            replies[0].header.status,
            -22,
            "{} answers -EINVAL",
            command::name(cmd).unwrap_or("?")
        );
    }
    let (write, body) = common::raw::write_request(b"after", 1, b"still serving");
    let replies = conn.call(write, &body);
    assert_eq!(replies.last().expect("reply").header.status, 0);
}
