//! Two joined nodes: a WRITE large enough to stream, sent to the node that does not own
//! its key, is relayed to the owner as it arrives (the relaying node's memory does not
//! grow with the value) and reads back byte-identical from the owner; a client that stops
//! mid-value leaves nothing on either node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::cluster::{free_port, mesh, route_list_len, wait_for, ClusterNode, RawConn};
use common::large::{rss_anon_bytes, start_write as start_write_as, value_part, IO_ATTR_BYTES};
use common::raw::write_request;
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, errno, CmdHeader, HEADER_SIZE_BYTES};
use std::io::Read;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// Send the head of a WRITE of `total` bytes of value `seed` and its first `sent` bytes.
fn start_write(c: &mut RawConn, key: &str, seed: u64, total: u64, sent: u64) -> u64 {
    start_write_as(c, key, seed, total, sent, 91)
}

/// Two nodes, group 1 on each: node 1 owns the keys below 0x80.., node 2 the rest.
fn two_nodes(dir: &std::path::Path) -> Vec<ClusterNode> {
    let port = free_port();
    let mut nodes: Vec<ClusterNode> = (1..=2)
        .map(|n| ClusterNode::new(dir, n, port, &[(1, 1)]))
        .collect();
    let mut high = RawId::ZERO;
    high.0[0] = 0x80;
    nodes[0].set_ids(1, &[RawId::ZERO]);
    nodes[1].set_ids(1, &[high]);
    mesh(&mut nodes);
    for n in nodes.iter_mut() {
        n.start();
    }
    for n in &nodes {
        let addr = n.addr();
        wait_for(20, "both nodes to join", || route_list_len(addr) == 2);
    }
    nodes
}

/// A key whose id node 2 owns.
fn key_of_node_2(prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|k| RawId::from_key(k.as_bytes()).0[0] >= 0x80)
        .unwrap()
}

/// READ `key` whole from `c` (DIRECT to that node), comparing it with value `seed`; the
/// status and the bytes compared.
fn read_value(c: &mut RawConn, key: &str, seed: u64) -> (i32, u64) {
    let (mut header, body) = common::raw::read_request(key.as_bytes(), 1);
    header.flags |= cmd_flags::DIRECT;
    c.request(header, &body);
    let mut head = [0u8; HEADER_SIZE_BYTES];
    c.stream.read_exact(&mut head).unwrap();
    let reply = CmdHeader::decode(&head).unwrap();
    if reply.size == 0 {
        return (reply.status, 0);
    }
    let mut attr = vec![0u8; IO_ATTR_BYTES as usize];
    c.stream.read_exact(&mut attr).unwrap();
    let total = reply.size - IO_ATTR_BYTES;
    let mut buf = vec![0u8; MIB as usize];
    let mut at = 0;
    while at < total {
        let n = MIB.min(total - at);
        c.stream.read_exact(&mut buf[..n as usize]).unwrap();
        assert!(
            buf[..n as usize] == value_part(seed, at, n)[..],
            "bytes at {at} differ"
        );
        at += n;
    }
    (reply.status, at)
}

#[test]
fn a_streamed_write_to_a_node_that_does_not_own_the_key_reaches_its_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = two_nodes(dir.path());
    let relay_pid = nodes[0].pid().unwrap();
    let key = key_of_node_2("relayed");
    let value_bytes = 64 * MIB + 4321;
    let mut c = RawConn::dial(nodes[0].addr());
    c.stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let before = rss_anon_bytes(relay_pid);
    let trans = start_write(&mut c, &key, 7, value_bytes, value_bytes);
    let replies = c.recv_transaction(trans);
    let grown = rss_anon_bytes(relay_pid).saturating_sub(before);
    let last = replies.last().unwrap();
    assert_eq!(last.header.status, 0, "the relayed WRITE is acknowledged");
    assert!(
        replies.iter().all(|r| r.header.trans == trans),
        "replies come back under the client's trans"
    );
    eprintln!(
        "relaying node's anonymous memory grew {} MiB for {} MiB",
        grown >> 20,
        value_bytes >> 20
    );
    assert!(grown < value_bytes / 2, "the relaying node grew {grown}");
    let mut owner = RawConn::dial(nodes[1].addr());
    assert_eq!(read_value(&mut owner, &key, 7), (0, value_bytes));
    // The client's connection keeps serving after the relayed value.
    let small = key_of_node_2("small");
    let (h, body) = write_request(small.as_bytes(), 1, b"after");
    assert_eq!(c.call(h, &body).last().unwrap().header.status, 0);
    assert_eq!(
        c.read(RawId::from_key(small.as_bytes()), 1),
        (0, b"after".to_vec())
    );
}

#[test]
fn a_relayed_value_cut_off_by_its_client_leaves_nothing_on_the_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = two_nodes(dir.path());
    let key = key_of_node_2("cut");
    let mut cut = RawConn::dial(nodes[0].addr());
    start_write(&mut cut, &key, 8, 40 * MIB, 12 * MIB);
    drop(cut);
    let mut owner = RawConn::dial(nodes[1].addr());
    // Once the owner has seen its connection go, a whole value of the key is written.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(read_value(&mut owner, &key, 8).0, errno::ENOENT);
    let mut c = RawConn::dial(nodes[0].addr());
    let trans = start_write(&mut c, &key, 9, 8 * MIB, 8 * MIB);
    assert_eq!(c.recv_transaction(trans).last().unwrap().header.status, 0);
    assert_eq!(read_value(&mut owner, &key, 9), (0, 8 * MIB));
}
