//! Three joined nodes, groups 1 and 2 on each: keys written through the client land on
//! their ring owner in both groups; non-owners forward plain requests and refuse DIRECT ones.

mod common;

use common::cluster::{free_port, mesh, route_list_len, wait_for, ClusterNode, RawConn};
use elliptics::client::{ClientConfig, Key, Node, Session};
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, errno};
use elliptics::routing::Routes;
use std::net::SocketAddr;

const KEY_COUNT: usize = 10_000;

pub fn start_mesh(dir: &std::path::Path, count: u8, backends: &[(u32, u32)]) -> Vec<ClusterNode> {
    let port = free_port();
    let mut nodes: Vec<ClusterNode> = (1..=count)
        .map(|n| ClusterNode::new(dir, n, port, backends))
        .collect();
    mesh(&mut nodes);
    for n in nodes.iter_mut() {
        n.start();
    }
    for n in &nodes {
        let addr = n.addr();
        wait_for(20, "every node to join", || {
            route_list_len(addr) == count as usize
        });
    }
    nodes
}

#[test]
fn every_key_lives_on_its_ring_owner_in_both_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_mesh(dir.path(), 3, &[(1, 1), (2, 2)]);
    let client = Node::new(ClientConfig::default());
    client.add_remotes(&[&nodes[0].remote()]).expect("connect");
    wait_for(10, "client to know all three nodes", || {
        client.connections().len() == 3
    });
    let mut session = Session::new(&client);
    session.set_groups(&[1, 2]);
    let keys: Vec<String> = (0..KEY_COUNT).map(|i| format!("cluster-key-{i}")).collect();
    for chunk in keys.chunks(500) {
        let pending: Vec<_> = chunk
            .iter()
            .map(|k| session.write_data(&Key::from(k.as_str()), k.as_bytes(), 0))
            .collect();
        for p in pending {
            let entries = p.wait().expect("write");
            assert_eq!(entries.iter().filter(|e| e.status == 0).count(), 2);
        }
    }
    let mut routes: Routes<SocketAddr> = Routes::new();
    for (group, point, addr, _) in client.routes() {
        routes
            .insert_points(group, &[point], addr)
            .expect("unique points");
    }
    let mut raws: Vec<(SocketAddr, RawConn)> = nodes
        .iter()
        .map(|n| (n.addr(), RawConn::dial(n.addr())))
        .collect();
    let mut per_node = [0usize; 3];
    for (i, k) in keys.iter().enumerate() {
        let id = RawId::from_key(k.as_bytes());
        for group in [1u32, 2] {
            let owner = *routes.owner(group, &id).expect("owner");
            for (n, (addr, raw)) in raws.iter_mut().enumerate() {
                if *addr == owner {
                    assert_eq!(
                        raw.lookup(id, group, cmd_flags::DIRECT),
                        0,
                        "{k} on its owner"
                    );
                    per_node[n] += 1;
                } else if i % 50 == 0 {
                    assert_eq!(
                        raw.lookup(id, group, cmd_flags::DIRECT),
                        errno::ENOTSUP,
                        "{k} DIRECT elsewhere"
                    );
                    let (status, data) = raw.read(id, group);
                    assert_eq!(
                        (status, data.as_slice()),
                        (0, k.as_bytes()),
                        "{k} forwarded"
                    );
                }
            }
        }
    }
    assert!(
        per_node.iter().all(|n| *n > 0),
        "keys spread over every node: {per_node:?}"
    );
}
