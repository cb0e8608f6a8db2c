//! The Rust client against a real `dnet_ioserv`: multi-group writes, reads with fallback,
//! read recovery, lookups, removes, namespaces, errors, async use and a dying node.

mod common;
use common::session;

use common::{NodeSpec, TestNode};
use elliptics::client::{Key, Session};
use elliptics::protocol::DnetTime;
use std::time::{Duration, Instant};

fn two_group_node() -> TestNode {
    TestNode::start_with(NodeSpec {
        backends: vec![(1, 1), (2, 2)],
        ..NodeSpec::default()
    })
}

fn read_bytes(s: &Session, key: &str) -> Result<Vec<u8>, i32> {
    let entries = s
        .read_data(&Key::from(key), 0, 0)
        .wait()
        .map_err(|e| e.status)?;
    Ok(entries
        .into_iter()
        .find_map(|e| e.payload)
        .map(|p| p.data)
        .unwrap_or_default())
}

#[test]
fn write_to_all_groups_then_read_returns_exact_bytes() {
    let node = two_group_node();
    let s = session(&node, &[1, 2]);
    let entries = s
        .write_data(&Key::from("new-id"), b"new-data-long", 0)
        .wait()
        .expect("write");
    let groups: Vec<u32> = entries
        .iter()
        .filter(|e| e.status == 0)
        .map(|e| e.group)
        .collect();
    assert_eq!(groups, vec![1, 2]);
    for e in &entries {
        assert_eq!(e.payload.as_ref().map(|p| p.size), Some(13));
        assert_eq!(e.address, Some(node.addr()));
    }
    assert_eq!(read_bytes(&s, "new-id"), Ok(b"new-data-long".to_vec()));
    s.write_data(&Key::from("new-id"), b"short", 0)
        .wait()
        .expect("overwrite");
    assert_eq!(read_bytes(&s, "new-id"), Ok(b"short".to_vec()));
}

#[test]
fn removed_key_reads_as_enoent_and_unknown_group_as_enxio() {
    let node = two_group_node();
    let s = session(&node, &[1, 2]);
    s.write_data(&Key::from("gone"), b"x", 0)
        .wait()
        .expect("write");
    s.remove(&Key::from("gone")).wait().expect("remove");
    assert_eq!(read_bytes(&s, "gone"), Err(-2));
    let s99 = session(&node, &[99]);
    let err = s99
        .read_data(&Key::from("gone"), 0, 0)
        .wait()
        .expect_err("no route");
    assert_eq!(err.status, -6);
}

#[test]
fn read_error_message_names_group_id_and_command() {
    let node = two_group_node();
    let s = session(&node, &[1]);
    let err = s
        .read_data(&Key::from("missing"), 0, 0)
        .wait()
        .expect_err("missing");
    let short = elliptics::key::RawId::from_key(b"missing").short_hex();
    assert_eq!(
        err.message,
        format!("1:{short}: Failed to process READ command: No such file or directory: -2")
    );
}

#[test]
fn read_recovery_rewrites_the_group_that_missed_the_key() {
    let node = two_group_node();
    let s2 = session(&node, &[2]);
    s2.write_data(&Key::from("recover-me"), b"payload", 0)
        .wait()
        .expect("write to group 2");
    let s12 = session(&node, &[1, 2]);
    assert_eq!(read_bytes(&s12, "recover-me"), Ok(b"payload".to_vec()));
    let s1 = session(&node, &[1]);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match read_bytes(&s1, "recover-me") {
            Ok(data) => {
                assert_eq!(data, b"payload");
                break;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(code) => panic!("group 1 was not recovered: {code}"),
        }
    }
}

#[test]
fn lookup_reports_size_and_the_written_timestamp() {
    let node = two_group_node();
    let mut s = session(&node, &[1]);
    s.set_timestamp(DnetTime {
        tsec: 1_500_000_000,
        tnsec: 42,
    });
    s.write_data(&Key::from("2.xml"), b"0123456789", 0)
        .wait()
        .expect("write");
    let entries = s.lookup(&Key::from("2.xml")).wait().expect("lookup");
    let info = entries
        .iter()
        .find_map(|e| e.payload.clone())
        .expect("lookup info");
    assert_eq!(info.size, 10);
    assert_eq!(
        info.mtime,
        DnetTime {
            tsec: 1_500_000_000,
            tnsec: 42
        }
    );
}

#[test]
fn lookup_falls_back_to_the_group_that_has_the_key() {
    let node = two_group_node();
    session(&node, &[2])
        .write_data(&Key::from("only-g2"), b"abc", 0)
        .wait()
        .expect("write");
    let entries = session(&node, &[1, 2])
        .lookup(&Key::from("only-g2"))
        .wait()
        .expect("lookup");
    let statuses: Vec<(u32, i32)> = entries.iter().map(|e| (e.group, e.status)).collect();
    assert_eq!(statuses, vec![(1, -2), (2, 0)]);
}

#[test]
fn namespaces_keep_the_same_key_apart() {
    let node = two_group_node();
    let mut a = session(&node, &[1]);
    a.set_namespace("ns-a");
    let mut b = a.clone();
    b.set_namespace("ns-b");
    a.write_data(&Key::from("k"), b"from a", 0)
        .wait()
        .expect("write a");
    b.write_data(&Key::from("k"), b"from b", 0)
        .wait()
        .expect("write b");
    assert_eq!(read_bytes(&a, "k"), Ok(b"from a".to_vec()));
    assert_eq!(read_bytes(&b, "k"), Ok(b"from b".to_vec()));
}

#[test]
fn results_can_be_awaited() {
    let node = two_group_node();
    let s = session(&node, &[1, 2]);
    let read = futures::executor::block_on(async {
        s.write_data(&Key::from("async"), b"awaited", 0).await?;
        s.read_latest(&Key::from("async"), 0, 0).await
    })
    .expect("async write + read");
    assert_eq!(
        read.into_iter().find_map(|e| e.payload).map(|p| p.data),
        Some(b"awaited".to_vec())
    );
}

#[test]
fn killed_node_fails_requests_at_once_not_after_the_timeout() {
    let mut node = two_group_node();
    let mut s = session(&node, &[1]);
    s.set_timeout(30);
    s.write_data(&Key::from("k"), b"v", 0)
        .wait()
        .expect("write");
    node.kill();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let err = s
        .read_data(&Key::from("k"), 0, 0)
        .wait()
        .expect_err("node is dead");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.status == -6 || err.status == -104,
        "status {}",
        err.status
    );
}
