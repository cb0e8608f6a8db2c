//! Secondary indexes on three joined nodes: an object's index list and the index tables it
//! is added to have different ring owners, so the node that updates the list sends the
//! changes of tables it does not own to their node (INDEXES_INTERNAL), and a find asks each
//! node for the index shards it holds.

mod common;

use common::cluster::{free_port, mesh, route_list_len, wait_for, ClusterNode};
use elliptics::client::{ClientConfig, Key, Node, Session};
use elliptics::key::RawId;
use std::collections::BTreeSet;

const OBJECTS: usize = 24;

#[test]
fn indexes_spread_over_nodes_are_found_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut nodes: Vec<ClusterNode> = (1..=3)
        .map(|n| ClusterNode::new(dir.path(), n, port, &[(1, 1)]))
        .collect();
    mesh(&mut nodes);
    for n in nodes.iter_mut() {
        n.start();
    }
    for n in &nodes {
        let addr = n.addr();
        wait_for(20, "every node to join", || route_list_len(addr) == 3);
    }
    let client = Node::new(ClientConfig::default());
    client.add_remotes(&[&nodes[0].remote()]).expect("connect");
    wait_for(10, "client to know all three nodes", || {
        client.connections().len() == 3
    });
    let mut s = Session::new(&client);
    s.set_groups(&[1]);
    let mut want = BTreeSet::new();
    for i in 0..OBJECTS {
        let key = format!("spread-{i}");
        let own = format!("own-{i}");
        s.set_indexes(
            &Key::from(key.as_str()),
            &[("spread", b"x"), (own.as_str(), b"y")],
        )
        .wait()
        .expect("set_indexes");
        want.insert(RawId::from_key(key.as_bytes()));
    }
    let found = s.find_any_indexes(&["spread"]).wait().expect("find_any");
    let got: BTreeSet<RawId> = found.iter().map(|f| f.id).collect();
    assert_eq!(
        got, want,
        "every object of the index, whichever node holds its table"
    );
    let both = s
        .find_all_indexes(&["spread", "own-3"])
        .wait()
        .expect("find_all");
    let ids: Vec<RawId> = both.iter().map(|f| f.id).collect();
    assert_eq!(ids, vec![RawId::from_key(b"spread-3")]);
}
