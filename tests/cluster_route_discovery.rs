//! Route discovery between joined nodes: node 1 and node 3 each list only node 2 as a
//! remote; after a `check_timeout` (1 s here) each has asked node 2 for its ROUTE_LIST and
//! joined the other, so both route lists name all three nodes and node 1 forwards a key
//! owned by node 3.

mod common;

use common::cluster::{free_port, wait_for, ClusterNode, RawConn};
use elliptics::client::{ClientConfig, Key, Node, Session};
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, command, AddrContainer, CmdHeader};
use std::collections::BTreeSet;
use std::net::SocketAddr;

fn route_list(addr: SocketAddr) -> BTreeSet<SocketAddr> {
    let mut raw = RawConn::dial(addr);
    let h = CmdHeader {
        cmd: command::ROUTE_LIST,
        flags: cmd_flags::NEED_ACK | cmd_flags::DIRECT | cmd_flags::NOLOCK,
        ..CmdHeader::default()
    };
    raw.exchange(h, &[])
        .iter()
        .filter_map(|(_, p)| AddrContainer::decode(p).ok())
        .flat_map(|c| c.addrs)
        .filter_map(|a| a.to_socket_addr())
        .collect()
}

#[test]
fn nodes_joined_through_a_common_peer_find_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut nodes: Vec<ClusterNode> = (1..=3)
        .map(|n| ClusterNode::new(dir.path(), n, port, &[(1, 1)]))
        .collect();
    for (n, byte) in nodes.iter().zip([0x10u8, 0x50, 0x90]) {
        n.set_ids(1, &[RawId([byte; 64])]);
    }
    let hub = nodes[1].remote();
    nodes[0].remotes = vec![hub.clone()];
    nodes[2].remotes = vec![hub];
    nodes[1].start();
    nodes[0].start();
    nodes[2].start();
    let all: BTreeSet<SocketAddr> = nodes.iter().map(ClusterNode::addr).collect();
    let (first, third) = (nodes[0].addr(), nodes[2].addr());
    wait_for(20, "node 1 and node 3 to list all three nodes", || {
        route_list(first) == all && route_list(third) == all
    });

    // A key on node 3's own ring point is node 3's; node 1 forwards it there.
    let id = RawId([0x90; 64]);
    let client = Node::new(ClientConfig::default());
    client.add_remotes(&[&nodes[2].remote()]).expect("connect");
    let mut s = Session::new(&client);
    s.set_groups(&[1]);
    s.write_data(&Key::from(id), b"owned-by-three", 0)
        .wait()
        .expect("write");
    assert_eq!(
        RawConn::dial(third).lookup(id, 1, cmd_flags::DIRECT),
        0,
        "node 3 owns the key"
    );
    assert_ne!(
        RawConn::dial(first).lookup(id, 1, cmd_flags::DIRECT),
        0,
        "node 1 does not hold it"
    );
    assert_eq!(
        RawConn::dial(first).read(id, 1),
        (0, b"owned-by-three".to_vec())
    );
}
