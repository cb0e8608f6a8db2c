//! Forwarding to a peer that stops answering (SIGSTOP: the link stays up, nothing comes
//! back): the forwarded request answers -ETIMEDOUT after the node's `wait_timeout` (2 s in
//! the test config) instead of waiting for the link to die.

mod common;

use common::cluster::{free_port, mesh, wait_for, ClusterNode, RawConn};
use elliptics::key::RawId;
use elliptics::protocol::errno;
use std::time::{Duration, Instant};

fn point(first: u8) -> RawId {
    let mut id = RawId::ZERO;
    id.0[0] = first;
    id
}

#[test]
fn forwarded_request_to_a_silent_peer_times_out_after_wait_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut nodes = vec![
        ClusterNode::new(dir.path(), 1, port, &[(1, 1)]),
        ClusterNode::new(dir.path(), 2, port, &[(1, 1)]),
    ];
    nodes[0].set_ids(1, &[point(0x00)]);
    nodes[1].set_ids(1, &[point(0x80)]);
    mesh(&mut nodes);
    for n in nodes.iter_mut() {
        n.start();
    }
    let mut raw = RawConn::dial(nodes[0].addr());
    wait_for(20, "the nodes to join", || raw.route_list_len() == 2);
    let on_b = point(0x90);
    // The link from this connection's shard to B is up and answering.
    assert_eq!(raw.lookup(on_b, 1, 0), errno::ENOENT, "forwarded to B");

    nodes[1].freeze(true);
    let started = Instant::now();
    let status = raw.lookup(on_b, 1, 0);
    let took = started.elapsed();
    nodes[1].freeze(false);
    assert_eq!(status, errno::ETIMEDOUT);
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "answered after {took:?}, wait_timeout is 2 s"
    );
    // B is back: the next forwarded request is answered again.
    assert_eq!(
        raw.lookup(on_b, 1, 0),
        errno::ENOENT,
        "B answers after thaw"
    );
}
