//! A node dies under load and comes back; `dnet_recovery dc` restores its group, and
//! `merge` after a fourth node joins moves keys to their new owners. Second runs copy
//! nothing.

mod common;

use common::cluster::{free_port, mesh, route_list_len, wait_for, ClusterNode, RawConn};
use elliptics::client::{ClientConfig, Key, Node, Session};
use elliptics::key::RawId;
use elliptics::protocol::cmd_flags;
use elliptics::routing::Routes;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const KEY_COUNT: usize = 1_000;
const LATE_KEY_COUNT: usize = 300;
const CLIENT_TIMEOUT_S: u64 = 2;

/// Run dnet_recovery and return (copied, removed, failed) from its summary line.
fn recovery(kind: &str, remote: &str, groups: &str) -> (u64, u64, u64) {
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_recovery"))
        .args([kind, "-r", remote, "-g", groups, "-w", "10", "-n", "4"])
        .output()
        .expect("run dnet_recovery");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{kind} failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> u64 {
        let at = text
            .find(name)
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        text[at + name.len()..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("number")
    };
    (field("copied:"), field("removed:"), field("failed:"))
}

fn owners(client: &Node, group: u32) -> Routes<SocketAddr> {
    let mut routes = Routes::new();
    for (g, point, addr, _) in client.routes() {
        if g == group {
            let _ = routes.insert_points(g, &[point], addr);
        }
    }
    routes
}

/// Three nodes (two in group 1, one in group 2) that know each other, and a client of all.
fn start_cluster(dir: &std::path::Path, port: u16) -> (Vec<ClusterNode>, Node) {
    let layout: [&[(u32, u32)]; 3] = [&[(1, 1)], &[(1, 1)], &[(1, 2)]];
    let mut nodes: Vec<ClusterNode> = layout
        .iter()
        .enumerate()
        .map(|(i, b)| ClusterNode::new(dir, i as u8 + 1, port, b))
        .collect();
    mesh(&mut nodes);
    for n in nodes.iter_mut() {
        n.start();
    }
    for n in &nodes {
        let addr = n.addr();
        wait_for(20, "the mesh", || route_list_len(addr) == 3);
    }
    let client = Node::new(ClientConfig {
        wait_timeout_s: CLIENT_TIMEOUT_S,
        check_timeout_s: 1,
        ..ClientConfig::default()
    });
    client.add_remotes(&[&nodes[0].remote()]).expect("connect");
    wait_for(10, "client routes", || client.connections().len() == 3);
    (nodes, client)
}

/// With group 2's only node dead: reads fall back to group 1 and writes reach group 1 and
/// report group 2's failure, each within the client's timeout. The late keys written.
fn load_without_group_2(session: &Session, keys: &[String]) -> Vec<String> {
    let mut reader = session.clone();
    reader.set_groups(&[2, 1]);
    for k in keys {
        let started = Instant::now();
        let read = reader
            .read_data(&Key::from(k.as_str()), 0, 0)
            .wait()
            .expect("read falls back to group 1");
        assert!(started.elapsed() < Duration::from_secs(CLIENT_TIMEOUT_S + 1));
        assert!(read.iter().any(|e| e.status == 0));
    }
    let late: Vec<String> = (0..LATE_KEY_COUNT).map(|i| format!("late-{i}")).collect();
    for k in &late {
        let started = Instant::now();
        let entries = session
            .write_data(&Key::from(k.as_str()), b"late value", 0)
            .wait()
            .expect("write to group 1");
        assert!(started.elapsed() < Duration::from_secs(CLIENT_TIMEOUT_S + 1));
        assert!(entries.iter().any(|e| e.group == 1 && e.status == 0));
        assert!(
            entries.iter().any(|e| e.group == 2 && e.status != 0),
            "group 2 failure reported"
        );
    }
    late
}

/// A fourth node joins group 1: merge moves keys to their new owners, and a second merge
/// finds nothing to move.
fn merge_after_a_join(
    dir: &std::path::Path,
    port: u16,
    nodes: &[ClusterNode],
    client: &Node,
    keys: &[String],
) {
    let a1 = nodes[0].addr();
    let mut n4 = ClusterNode::new(dir, 4, port, &[(1, 1)]);
    n4.remotes = nodes.iter().map(ClusterNode::remote).collect();
    n4.start();
    wait_for(20, "node 4 to join", || route_list_len(a1) == 4);
    let (copied, removed, failed) = recovery("merge", &nodes[0].remote(), "1");
    assert!(
        copied > 0 && copied == removed && failed == 0,
        "merge moved {copied}/{removed}"
    );
    wait_for(20, "client sees node 4", || client.connections().len() == 4);
    let routes = owners(client, 1);
    let all: Vec<SocketAddr> = nodes
        .iter()
        .map(ClusterNode::addr)
        .chain([n4.addr()])
        .collect();
    let mut raws: Vec<RawConn> = all.iter().map(|a| RawConn::dial(*a)).collect();
    for k in keys {
        let id = RawId::from_key(k.as_bytes());
        let owner = *routes.owner(1, &id).expect("owner");
        let at = all.iter().position(|a| *a == owner).expect("known owner");
        assert_eq!(
            raws[at].lookup(id, 1, cmd_flags::DIRECT),
            0,
            "{k} on its group 1 owner"
        );
    }
    assert_eq!(recovery("merge", &nodes[0].remote(), "1"), (0, 0, 0));
}

#[test]
fn node_loss_restart_dc_and_merge_keep_every_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let (mut nodes, client) = start_cluster(dir.path(), port);
    let mut session = Session::new(&client);
    session.set_groups(&[1, 2]);
    let keys: Vec<String> = (0..KEY_COUNT).map(|i| format!("failover-{i}")).collect();
    for k in &keys {
        session
            .write_data(&Key::from(k.as_str()), k.as_bytes(), 0)
            .wait()
            .expect("write");
    }

    // Group 2 lives on node 3 alone: kill it under load.
    nodes[2].kill();
    let late = load_without_group_2(&session, &keys);

    // Restart: it rejoins, the client reconnects.
    nodes[2].start();
    let a1 = nodes[0].addr();
    wait_for(20, "node 3 to rejoin", || route_list_len(a1) == 3);
    wait_for(20, "client reconnect", || client.connections().len() == 3);

    let (copied, _, failed) = recovery("dc", &nodes[0].remote(), "1,2");
    assert_eq!((copied, failed), (LATE_KEY_COUNT as u64, 0));
    let mut raw3 = RawConn::dial(nodes[2].addr());
    for k in late.iter().chain(keys.iter()) {
        assert_eq!(
            raw3.lookup(RawId::from_key(k.as_bytes()), 2, cmd_flags::DIRECT),
            0,
            "{k} in group 2"
        );
    }
    assert_eq!(recovery("dc", &nodes[0].remote(), "1,2"), (0, 0, 0));
    let all_keys: Vec<String> = late.into_iter().chain(keys).collect();
    merge_after_a_join(dir.path(), port, &nodes, &client, &all_keys);
}
