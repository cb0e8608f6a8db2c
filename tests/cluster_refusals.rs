//! Joins that must be refused: a wrong auth cookie, and a node whose ring points already
//! exist in the group. Both nodes keep serving.

mod common;

use common::cluster::{free_port, route_list_len, ClusterNode, RawConn};
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, command, errno, Auth, CmdHeader};
use std::time::Duration;

#[test]
fn wrong_auth_cookie_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut a = ClusterNode::new(dir.path(), 1, port, &[(1, 1)]);
    let mut b = ClusterNode::new(dir.path(), 2, port, &[(1, 1)]);
    b.cookie = "another-cookie".into();
    b.remotes = vec![a.remote()];
    a.start();
    b.start();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(route_list_len(a.addr()), 1, "a did not admit b");
    assert_eq!(route_list_len(b.addr()), 1, "b did not keep a");
    let mut raw = RawConn::dial(a.addr());
    let h = CmdHeader {
        cmd: command::AUTH,
        flags: cmd_flags::DIRECT | cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    };
    let replies = raw.exchange(h, &Auth::from_cookie_text("wrong").encode());
    assert_eq!(replies.last().map(|(h, _)| h.status), Some(errno::EPERM));
}

#[test]
fn duplicate_ring_points_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut a = ClusterNode::new(dir.path(), 1, port, &[(1, 1)]);
    let mut b = ClusterNode::new(dir.path(), 2, port, &[(1, 1)]);
    let points = [RawId::from_key(b"p1"), RawId::from_key(b"p2")];
    a.set_ids(1, &points);
    b.set_ids(1, &points);
    b.remotes = vec![a.remote()];
    a.start();
    b.start();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(route_list_len(a.addr()), 1);
    assert_eq!(route_list_len(b.addr()), 1);
    let id = RawId::from_key(b"some key");
    for node in [&a, &b] {
        let mut raw = RawConn::dial(node.addr());
        assert_eq!(
            raw.lookup(id, 1, 0),
            errno::ENOENT,
            "{} still serves",
            node.host
        );
    }
}
