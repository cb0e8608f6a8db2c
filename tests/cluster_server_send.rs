//! SEND (server-send) on a node holding groups 1 and 2: copy keys to the other group, keep a
//! newer destination without OVERWRITE (-EBADFD), and MOVE removes the source.

mod common;

use common::cluster::{free_port, server_send, ClusterNode, RawConn};
use elliptics::client::{ClientConfig, Key, Node, Session};
use elliptics::key::RawId;
use elliptics::protocol::{errno, iflags, DnetTime};

fn write(s: &mut Session, group: u32, key: &str, data: &[u8], tsec: Option<u64>) {
    s.set_groups(&[group]);
    if let Some(tsec) = tsec {
        s.set_timestamp(DnetTime { tsec, tnsec: 0 });
    }
    s.write_data(&Key::from(key), data, 0)
        .wait()
        .expect("write");
}

/// SEND `keys` from group 1 to group 2; the per-key statuses and the final status.
fn send(raw: &mut RawConn, keys: &[&str], flags: u64) -> (Vec<i32>, i32) {
    let (per_key, last) = server_send(raw, keys, flags, 0);
    (
        per_key.into_iter().map(|(_, status)| status).collect(),
        last,
    )
}

fn read(raw: &mut RawConn, key: &str, group: u32) -> (i32, Vec<u8>) {
    raw.read(RawId::from_key(key.as_bytes()), group)
}

#[test]
fn send_copies_keeps_newer_destinations_and_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = ClusterNode::new(dir.path(), 1, free_port(), &[(1, 1), (2, 2)]);
    node.start();
    let client = Node::new(ClientConfig::default());
    client.add_remotes(&[&node.remote()]).expect("connect");
    let mut s = Session::new(&client);
    let mut raw = RawConn::dial(node.addr());

    let copied: Vec<String> = (0..50).map(|i| format!("copy-{i}")).collect();
    for k in &copied {
        write(&mut s, 1, k, k.as_bytes(), None);
    }
    let names: Vec<&str> = copied.iter().map(String::as_str).collect();
    assert_eq!(read(&mut raw, names[0], 2).0, errno::ENOENT);
    let (statuses, last) = send(&mut raw, &names, 0);
    assert_eq!((statuses, last), (vec![0; 50], 0));
    for k in &names {
        assert_eq!(
            read(&mut raw, k, 2),
            (0, k.as_bytes().to_vec()),
            "{k} copied"
        );
        assert_eq!(read(&mut raw, k, 1).0, 0, "{k} still in the source");
    }

    write(&mut s, 1, "stamped", b"old source", Some(1000));
    write(&mut s, 2, "stamped", b"newer destination", Some(2000));
    let (statuses, _) = send(&mut raw, &["stamped"], 0);
    assert_eq!(statuses, vec![errno::EBADFD]);
    assert_eq!(read(&mut raw, "stamped", 2).1, b"newer destination");
    let (statuses, _) = send(&mut raw, &["stamped"], iflags::OVERWRITE);
    assert_eq!(statuses, vec![0]);
    assert_eq!(read(&mut raw, "stamped", 2).1, b"old source");

    let moved: Vec<String> = (0..10).map(|i| format!("move-{i}")).collect();
    for k in &moved {
        write(&mut s, 1, k, k.as_bytes(), Some(3000));
    }
    let names: Vec<&str> = moved.iter().map(String::as_str).collect();
    let (statuses, last) = send(&mut raw, &names, iflags::MOVE);
    assert_eq!((statuses, last), (vec![0; 10], 0));
    for k in &names {
        assert_eq!(
            read(&mut raw, k, 2),
            (0, k.as_bytes().to_vec()),
            "{k} moved"
        );
        assert_eq!(
            read(&mut raw, k, 1).0,
            errno::ENOENT,
            "{k} gone from the source"
        );
    }
    let (statuses, _) = send(&mut raw, &["never-written"], 0);
    assert_eq!(statuses, vec![errno::ENOENT]);
}
