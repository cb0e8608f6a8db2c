//! SEND with OVERWRITE (what `dnet_recovery` uses) from a node holding group 1 to a peer
//! holding group 2, where the node writes each window of keys to the peer as one batch.
//!
//! - Small values (copied into the batch's buffer) and large ones (written as they are,
//!   more than one window of bytes) arrive byte for byte, with their timestamps.
//! - With the peer killed, every key is answered with an error and the request ends: the
//!   dead link answers its waiting writes at once (not with the request's timeout).

mod common;

use common::cluster::{
    server_send, two_groups as joined_two_groups, wait_for, ClusterNode, RawConn,
};
use elliptics::client::{Key, Node, Session};
use elliptics::key::RawId;
use elliptics::protocol::{errno, iflags, DnetTime};

/// Node 1 holds group 1, node 2 group 2; a client connected to both, once node 1 routes
/// to node 2.
fn two_groups(dir: &std::path::Path) -> (Vec<ClusterNode>, Node) {
    let (nodes, client) = joined_two_groups(dir);
    wait_for(20, "node 1 routing to node 2", || {
        RawConn::dial(nodes[0].addr()).route_list_len() >= 2
    });
    (nodes, client)
}

/// A value of `len` bytes that differs per key.
fn value_of(key: &str, len: usize) -> Vec<u8> {
    key.bytes().cycle().take(len).collect()
}

/// SEND `keys` with OVERWRITE from group 1 on `raw`'s node to group 2: the per-key statuses
/// by key, and the final status.
fn send(raw: &mut RawConn, keys: &[String]) -> (Vec<(RawId, i32)>, i32) {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    server_send(raw, &keys, iflags::OVERWRITE, 5)
}

#[test]
fn send_copies_small_and_large_values_to_a_peer_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (nodes, client) = two_groups(dir.path());
    let mut session = Session::new(&client);
    session.set_groups(&[1]);
    session.set_timestamp(DnetTime {
        tsec: 1_700_000_000,
        tnsec: 7,
    });
    // 1 500 small keys (more than a window per shard) and 40 of 300 KiB (12 MiB, more
    // than a window's bytes).
    let mut keys: Vec<(String, usize)> = (0..1500).map(|i| (format!("small-{i}"), 16)).collect();
    keys.extend((0..40).map(|i| (format!("large-{i}"), 300 * 1024)));
    for chunk in keys.chunks(100) {
        let pending: Vec<_> = chunk
            .iter()
            .map(|(k, len)| session.write_data(&Key::from(k.as_str()), &value_of(k, *len), 0))
            .collect();
        for p in pending {
            p.wait().expect("write to group 1");
        }
    }
    let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    let (statuses, last) = send(&mut RawConn::dial(nodes[0].addr()), &names);
    assert_eq!(last, 0, "SEND ends with success");
    assert_eq!(statuses.len(), names.len(), "one response per key");
    assert!(
        statuses.iter().all(|(_, s)| *s == 0),
        "every key copied: {:?}",
        statuses
            .iter()
            .filter(|(_, s)| *s != 0)
            .take(5)
            .collect::<Vec<_>>()
    );
    let mut on_2 = RawConn::dial(nodes[1].addr());
    for (k, len) in &keys {
        let (status, data) = on_2.read(RawId::from_key(k.as_bytes()), 2);
        assert_eq!(status, 0, "{k} in group 2");
        assert!(
            data == value_of(k, *len),
            "{k}: group 2 holds the same bytes"
        );
    }
    let mut check = Session::new(&client);
    check.set_groups(&[2]);
    for (k, len) in [&keys[0], &keys[keys.len() - 1]] {
        let entries = check
            .lookup(&Key::from(k.as_str()))
            .wait()
            .expect("lookup in group 2");
        let info = entries
            .iter()
            .find_map(|e| e.payload.clone())
            .expect("lookup info");
        assert_eq!(info.size, *len as u64, "{k}: size");
        assert_eq!(info.mtime.tsec, 1_700_000_000, "{k}: timestamp kept");
    }
}

#[test]
fn send_to_a_killed_peer_answers_every_key_with_an_error_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut nodes, client) = two_groups(dir.path());
    let mut session = Session::new(&client);
    session.set_groups(&[1]);
    let names: Vec<String> = (0..300).map(|i| format!("orphan-{i}")).collect();
    for k in &names {
        session
            .write_data(&Key::from(k.as_str()), k.as_bytes(), 0)
            .wait()
            .expect("write to group 1");
    }
    let mut raw = RawConn::dial(nodes[0].addr());
    // The link to node 2 is up and in use before node 2 dies.
    let (statuses, _) = send(&mut raw, &names[..10]);
    assert!(statuses.iter().all(|(_, s)| *s == 0), "{statuses:?}");
    nodes[1].kill();
    let (statuses, last) = send(&mut raw, &names);
    assert_eq!(last, 0, "the request itself ends normally");
    assert_eq!(statuses.len(), names.len(), "one response per key");
    assert!(
        statuses.iter().all(|(_, s)| *s != 0),
        "no key reported copied to a dead peer"
    );
    assert!(
        statuses.iter().all(|(_, s)| *s != errno::ETIMEDOUT),
        "failed by the dead link, not by the timeout: {:?}",
        statuses.iter().take(5).collect::<Vec<_>>()
    );
}
