//! The rest of the session API against a real `dnet_ioserv`: offsets, append, CAS,
//! prepare/plain/commit, bulk read, range read and remove, monitor and backend status.

mod common;
use common::session;

use common::{NodeSpec, TestNode};
use elliptics::client::{Key, Session};
use elliptics::key::RawId;
use elliptics::protocol::io_flags;

fn read(s: &Session, key: &Key, offset: u64, size: u64) -> Result<Vec<u8>, i32> {
    let entries = s
        .read_data(key, offset, size)
        .wait()
        .map_err(|e| e.status)?;
    Ok(entries
        .into_iter()
        .find_map(|e| e.payload)
        .map(|p| p.data)
        .unwrap_or_default())
}

#[test]
fn writes_at_offsets_and_partial_reads() {
    let node = TestNode::start(&[1]);
    let s = session(&node, &[1]);
    let k = Key::from("offsets");
    s.write_data(&k, b"55555", 0).wait().expect("write");
    s.write_data(&k, b"43210", 1).wait().expect("write at 1");
    assert_eq!(read(&s, &k, 0, 0), Ok(b"543210".to_vec()));
    assert_eq!(read(&s, &k, 3, 0), Ok(b"210".to_vec()));
    assert_eq!(read(&s, &k, 2, 1), Ok(b"3".to_vec()));
    assert_eq!(read(&s, &k, 100, 0), Err(-7));
}

#[test]
fn append_flag_concatenates() {
    let node = TestNode::start(&[1]);
    let mut s = session(&node, &[1]);
    let k = Key::from("append");
    s.write_data(&k, b"first-", 0).wait().expect("write");
    s.set_ioflags(io_flags::APPEND);
    s.write_data(&k, b"second", 0).wait().expect("append");
    s.set_ioflags(0);
    assert_eq!(read(&s, &k, 0, 0), Ok(b"first-second".to_vec()));
}

#[test]
fn cas_with_the_old_checksum_replaces_the_data() {
    let node = TestNode::start(&[1]);
    let s = session(&node, &[1]);
    let k = Key::from("cas");
    s.write_data(&k, b"old", 0).wait().expect("write");
    s.write_cas(&k, b"new", &RawId::from_key(b"old"))
        .wait()
        .expect("cas");
    assert_eq!(read(&s, &k, 0, 0), Ok(b"new".to_vec()));
    let err = s
        .write_cas(&k, b"newer", &RawId::from_key(b"old"))
        .wait()
        .expect_err("stale csum");
    assert!(err.status < 0);
    assert_eq!(read(&s, &k, 0, 0), Ok(b"new".to_vec()));
}

#[test]
fn prepare_plain_commit_is_invisible_until_committed() {
    let node = TestNode::start(&[1]);
    let s = session(&node, &[1]);
    let k = Key::from("ppc");
    s.write_prepare(&k, b"aaa", 0, 1024)
        .wait()
        .expect("prepare");
    assert_eq!(read(&s, &k, 0, 0), Err(-2));
    s.write_plain(&k, b"bbb", 3).wait().expect("plain");
    assert_eq!(s.lookup(&k).wait().map_err(|e| e.status).err(), Some(-2));
    s.write_commit(&k, b"ccc", 6, 9).wait().expect("commit");
    assert_eq!(read(&s, &k, 0, 0), Ok(b"aaabbbccc".to_vec()));
}

#[test]
fn bulk_read_returns_only_the_keys_that_exist() {
    let node = TestNode::start_with(NodeSpec {
        backends: vec![(1, 1), (2, 2)],
        ..NodeSpec::default()
    });
    let s = session(&node, &[1, 2]);
    let keys: Vec<Key> = (0..20)
        .map(|i| Key::from(format!("bulk-{i}").as_str()))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        s.write_data(k, format!("value-{i}").as_bytes(), 0)
            .wait()
            .expect("write");
    }
    let mut asked = keys.clone();
    asked.push(Key::from("bulk-missing"));
    let found = s.bulk_read(&asked).wait().expect("bulk read");
    assert_eq!(found.len(), 20);
    for (i, k) in keys.iter().enumerate() {
        let id = s.id_of(k);
        let e = found
            .iter()
            .find(|e| e.payload.as_ref().is_some_and(|p| p.io.id == id))
            .expect("key found");
        assert_eq!(
            e.payload.as_ref().map(|p| p.data.clone()),
            Some(format!("value-{i}").into_bytes())
        );
    }
}

#[test]
fn range_read_and_remove_walk_keys_in_order() {
    let node = TestNode::start(&[2]);
    let s = session(&node, &[2]);
    let mut base = [0u8; 64];
    base[0] = 0x42;
    let ids: Vec<RawId> = (0..16u8)
        .map(|i| {
            let mut raw = base;
            raw[5] = i;
            RawId(raw)
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        s.write_data(&Key::Id(*id), format!("r{i}").as_bytes(), 0)
            .wait()
            .expect("write");
    }
    let (begin, end) = (ids[0], ids[15]);
    let entries = s
        .read_data_range(&begin, &end, 3, 14)
        .wait()
        .expect("range read");
    let got: Vec<RawId> = entries
        .iter()
        .filter_map(|e| e.payload.as_ref())
        .filter(|p| p.io.size > 0)
        .map(|p| p.io.id)
        .collect();
    assert_eq!(got, ids[3..16].to_vec());
    let removed = s
        .remove_data_range(&begin, &end)
        .wait()
        .expect("range remove");
    let total: u64 = removed
        .iter()
        .filter_map(|e| e.payload.as_ref())
        .map(|p| p.io.num)
        .sum();
    assert_eq!(total, 16);
    let again = s
        .remove_data_range(&begin, &end)
        .wait()
        .expect("second range remove");
    let total: u64 = again
        .iter()
        .filter_map(|e| e.payload.as_ref())
        .map(|p| p.io.num)
        .sum();
    assert_eq!(total, 0);
}

#[test]
fn monitor_stat_is_json_and_backend_status_lists_the_backend() {
    let node = TestNode::start(&[1]);
    let s = session(&node, &[1]);
    let stats = s.monitor_stat(u64::MAX).wait().expect("monitor");
    let json = stats
        .iter()
        .find_map(|e| e.payload.clone())
        .expect("json body");
    assert!(
        serde_json::from_str::<serde_json::Value>(&json).is_ok(),
        "{json}"
    );
    let status = s
        .backend_status(node.addr())
        .wait()
        .expect("backend status");
    let backends = status
        .iter()
        .find_map(|e| e.payload.clone())
        .expect("status list");
    assert!(
        backends.iter().any(|b| b.backend_id == 1 && b.state == 1),
        "{backends:?}"
    );
}
