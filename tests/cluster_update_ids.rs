//! UPDATE_IDS pushes: disabling, enabling and re-keying a backend reaches every connection
//! that holds the node's ids, a client's route table and a joined peer's alike.

mod common;

use common::cluster::{free_port, mesh, route_list_len, wait_for, ClusterNode, RawConn};
use elliptics::client::{backend_command, ClientConfig, Key, Node, Session};
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, errno};
use std::net::SocketAddr;

fn point(first: u8) -> RawId {
    let mut id = RawId::ZERO;
    id.0[0] = first;
    id
}

/// Node A (group 1 at 0x00..) and node B (group 1 at 0x80.., group 2 at 0x40..), joined.
fn two_nodes(dir: &std::path::Path) -> Vec<ClusterNode> {
    let port = free_port();
    let mut nodes = vec![
        ClusterNode::new(dir, 1, port, &[(1, 1)]),
        ClusterNode::new(dir, 2, port, &[(1, 1), (2, 2)]),
    ];
    nodes[0].set_ids(1, &[point(0x00)]);
    nodes[1].set_ids(1, &[point(0x80)]);
    nodes[1].set_ids(2, &[point(0x40)]);
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

/// Route entries of `addr` in `group`, as the client sees them.
fn points_of(client: &Node, addr: SocketAddr, group: u32) -> Vec<RawId> {
    client
        .routes()
        .into_iter()
        .filter(|(g, _, a, _)| *g == group && *a == addr)
        .map(|(_, p, _, _)| p)
        .collect()
}

fn control(s: &Session, addr: SocketAddr, backend: u32, command: u32, ids: &[RawId]) {
    s.backend_control(addr, backend, command, 0, 0, ids)
        .wait()
        .expect("backend control");
}

#[test]
fn client_routes_follow_disable_enable_and_set_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = two_nodes(dir.path());
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let client = Node::new(ClientConfig::default());
    client.add_remotes(&[&nodes[0].remote()]).expect("connect");
    wait_for(10, "client to know both nodes", || {
        client.connections().len() == 2
    });
    assert_eq!(points_of(&client, b, 1), vec![point(0x80)]);
    assert_eq!(
        route_list_len(a),
        2,
        "ROUTE_LIST names joined nodes, never clients"
    );
    let mut s = Session::new(&client);

    control(&s, b, 2, backend_command::DISABLE, &[]);
    wait_for(5, "group 2 to leave the client's routes", || {
        points_of(&client, b, 2).is_empty()
    });
    s.set_groups(&[2]);
    let err = s
        .write_data(&Key::from("g2-key"), b"v", 0)
        .wait()
        .expect_err("no route in group 2");
    assert_eq!(err.status, errno::ENXIO);

    control(&s, b, 2, backend_command::ENABLE, &[]);
    wait_for(5, "group 2 to come back", || {
        points_of(&client, b, 2) == vec![point(0x40)]
    });
    let written = s.write_data(&Key::from("g2-key"), b"v", 0).wait();
    assert!(written.is_ok(), "write after enable: {written:?}");

    control(&s, b, 1, backend_command::DISABLE, &[]);
    wait_for(5, "B's group 1 to leave the routes", || {
        points_of(&client, b, 1).is_empty()
    });
    assert_eq!(
        points_of(&client, a, 1),
        vec![point(0x00)],
        "A keeps its point"
    );
    s.set_groups(&[1]);
    let key = Key::from("moves-to-a");
    let entries = s
        .write_data(&key, b"x", 0)
        .wait()
        .expect("write lands on A");
    assert!(entries.iter().all(|e| e.status == 0));

    control(&s, b, 1, backend_command::ENABLE, &[]);
    wait_for(5, "B's group 1 to come back", || {
        points_of(&client, b, 1) == vec![point(0x80)]
    });
    control(
        &s,
        b,
        1,
        backend_command::SET_IDS,
        &[point(0xc0), point(0xe0)],
    );
    wait_for(5, "B's new points", || {
        points_of(&client, b, 1) == vec![point(0xc0), point(0xe0)]
    });
}

#[test]
fn joined_peer_forwards_by_the_pushed_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = two_nodes(dir.path());
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let client = Node::new(ClientConfig::default());
    client.add_remotes(&[&nodes[1].remote()]).expect("connect");
    let s = Session::new(&client);
    let mut raw_a = RawConn::dial(a);
    let owned_by_b = point(0x90);
    let later_b = point(0xd0);
    let direct = |raw: &mut RawConn, id| raw.lookup(id, 1, cmd_flags::DIRECT);
    assert_eq!(
        direct(&mut raw_a, owned_by_b),
        errno::ENOTSUP,
        "B owns 0x90"
    );

    control(&s, b, 1, backend_command::DISABLE, &[]);
    wait_for(5, "A to take over B's range", || {
        direct(&mut raw_a, owned_by_b) == errno::ENOENT
    });
    control(&s, b, 1, backend_command::ENABLE, &[]);
    wait_for(5, "A to hand the range back", || {
        direct(&mut raw_a, owned_by_b) == errno::ENOTSUP
    });
    control(&s, b, 1, backend_command::SET_IDS, &[point(0xc0)]);
    wait_for(5, "A to see B's new point", || {
        direct(&mut raw_a, owned_by_b) == errno::ENOENT
            && direct(&mut raw_a, later_b) == errno::ENOTSUP
    });
}
