//! Convergence on join, without waiting for a route check: node A alone, B (group 1) and C
//! (group 2) each list only A as a remote and check routes every 5 s. As soon as A names
//! both, keys are written to groups 1 and 2 and A is killed; B must already know C, so a
//! read through B with groups 1:2 finds every key (group 1 on B, or group 2 on C).

mod common;

use common::cluster::{free_port, wait_for, ClusterNode, RawConn};
use elliptics::client::{ClientConfig, Key, Node, Session};
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, command, AddrContainer, CmdHeader};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;

const KEY_COUNT: usize = 12;

fn route_list(addr: SocketAddr) -> BTreeSet<SocketAddr> {
    let h = CmdHeader {
        cmd: command::ROUTE_LIST,
        flags: cmd_flags::NEED_ACK | cmd_flags::DIRECT | cmd_flags::NOLOCK,
        ..CmdHeader::default()
    };
    RawConn::dial(addr)
        .exchange(h, &[])
        .iter()
        .filter_map(|(_, p)| AddrContainer::decode(p).ok())
        .flat_map(|c| c.addrs)
        .filter_map(|a| a.to_socket_addr())
        .collect()
}

#[test]
fn nodes_joined_through_one_peer_serve_each_other_right_after_it_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut a = ClusterNode::new(dir.path(), 1, port, &[(1, 1)]);
    let mut b = ClusterNode::new(dir.path(), 2, port, &[(1, 1)]);
    let mut c = ClusterNode::new(dir.path(), 3, port, &[(1, 2)]);
    // A owns three quarters of group 1's ring, so most group-1 copies are on A.
    a.set_ids(1, &[RawId([0x00; 64])]);
    b.set_ids(1, &[RawId([0xc0; 64])]);
    c.set_ids(1, &[RawId([0x40; 64])]);
    for n in [&mut a, &mut b, &mut c] {
        n.check_timeout_s = 5;
    }
    b.remotes = vec![a.remote()];
    c.remotes = vec![a.remote()];
    a.start();
    b.start();
    c.start();
    let all: BTreeSet<SocketAddr> = [a.addr(), b.addr(), c.addr()].into();
    wait_for(20, "A to list B and C", || route_list(a.addr()) == all);

    let client = Node::new(ClientConfig::default());
    client.add_remotes(&[&a.remote()]).expect("connect to A");
    let mut session = Session::new(&client);
    session.set_groups(&[1, 2]);
    let keys: Vec<String> = (0..KEY_COUNT).map(|i| format!("converge-{i}")).collect();
    for k in &keys {
        let entries = session
            .write_data(&Key::from(k.as_str()), k.as_bytes(), 0)
            .wait()
            .expect("write");
        assert_eq!(
            entries.iter().filter(|e| e.status == 0).count(),
            2,
            "{k} acknowledged by both groups"
        );
    }
    let on_a = client
        .routes()
        .iter()
        .filter(|(g, _, addr, _)| *g == 1 && *addr == a.addr())
        .count();
    assert!(on_a > 0, "A holds part of group 1");
    drop(client);
    a.kill();

    for k in &keys {
        let out = Command::new(env!("CARGO_BIN_EXE_dnet_ioclient"))
            .current_dir(dir.path())
            .args(["-r", &b.remote(), "-g", "1:2", "-w", "5", "-D", k])
            .output()
            .expect("run dnet_ioclient");
        assert!(
            out.status.success(),
            "read of {k} through B failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, k.as_bytes(), "{k} reads back");
    }
}
