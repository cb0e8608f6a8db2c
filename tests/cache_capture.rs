//! The original 2.26.11.1 server's cache replies, byte for byte: the client frames of
//! `tests/data/wire-captures/python-cache.txt` (CACHE write and read, CACHE|CACHE_ONLY write,
//! reads with and without CACHE, LOOKUP of a cache-only key, DEL with
//! CACHE|CACHE_REMOVE_FROM_DISK, READ after it, write_cache with a lifetime, READ) are sent
//! to a node with `"cache": {"size": 1048576}`, and each reply must equal the captured one
//! (only the port inside the replies' `dnet_addr` differs).

mod common;

use common::capture;
use common::raw::RawConn;
use common::{NodeSpec, TestNode};
use elliptics::protocol::{command, CmdHeader, HEADER_SIZE_BYTES};

/// Messages #5..#24 of the capture (indices 4..24): before the 3-second wait.
const REPLAYED: std::ops::Range<usize> = 4..24;

#[test]
fn cache_requests_of_the_recorded_session_get_the_original_replies_byte_for_byte() {
    let node = TestNode::start_with(NodeSpec {
        extra_options: vec!["\"cache\": {\"size\": 1048576}".into()],
        ..NodeSpec::default()
    });
    let messages = capture::load("python-cache.txt");
    let (mut conn, _) = RawConn::handshaken(node.addr());
    let mut compared = 0;
    for pair in messages[REPLAYED].chunks(2) {
        let (request, expected) = (&pair[0], &pair[1]);
        assert!(request.from_client && !expected.from_client);
        let header = CmdHeader::decode(&request.bytes).expect("captured request");
        conn.send_bytes(&request.bytes);
        let replies = conn.recv_transaction(header.trans);
        assert_eq!(replies.len(), 1, "one reply to {}", header.cmd);
        let reply = &replies[0];
        let mut got = reply.header.encode().to_vec();
        got.extend_from_slice(&reply.payload);
        let mut want = expected.bytes.clone();
        let has_addr = matches!(header.cmd, command::WRITE | command::LOOKUP)
            && want.len() > HEADER_SIZE_BYTES;
        if has_addr {
            // dnet_addr's sockaddr_in port (network order) is ours, not 1025.
            let port = HEADER_SIZE_BYTES + 2;
            want[port..port + 2].copy_from_slice(&node.port.to_be_bytes());
        }
        assert_eq!(
            got, want,
            "reply to cmd {} trans {}",
            header.cmd, header.trans
        );
        compared += 1;
    }
    assert_eq!(compared, 10);
}
