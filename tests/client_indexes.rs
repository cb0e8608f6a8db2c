//! Secondary indexes through the Rust client: against a peer replaying the original
//! server's frames of `python-indexes.txt` (our client must send the original bindings'
//! frames byte for byte and read the original's replies), and against real nodes (the
//! scenarios of the original suite's index tests).

mod common;

use common::capture::{load as capture, Message};
use common::{NodeSpec, TestNode};
use elliptics::client::{ClientConfig, FoundIndexes, Key, Node, Session};
use elliptics::key::RawId;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn patch_port(bytes: &mut [u8], port: u16) {
    let needle = [2u8, 0, 4, 1, 127, 0, 0, 1];
    for i in 0..bytes.len().saturating_sub(needle.len() - 1) {
        if bytes[i..i + needle.len()] == needle {
            bytes[i + 2..i + 4].copy_from_slice(&port.to_be_bytes());
        }
    }
}

fn read_message(s: &mut TcpStream) -> Vec<u8> {
    let mut head = vec![0u8; 120];
    s.read_exact(&mut head).expect("client header");
    let size = u64::from_le_bytes(head[112..120].try_into().expect("size")) as usize;
    assert!(size < 1 << 20, "client announced {size} bytes");
    let mut body = vec![0u8; size];
    s.read_exact(&mut body).expect("client payload");
    head.extend_from_slice(&body);
    head
}

/// Play the server side of `messages` on one connection; returns (captured, sent) client
/// frames.
fn serve(
    listener: TcpListener,
    messages: Vec<Message>,
    port: u16,
) -> std::thread::JoinHandle<Vec<(Vec<u8>, Vec<u8>)>> {
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut seen = Vec::new();
        for mut m in messages {
            if m.from_client {
                seen.push((m.bytes, read_message(&mut s)));
            } else {
                patch_port(&mut m.bytes, port);
                s.write_all(&m.bytes).expect("send server frame");
            }
        }
        seen
    })
}

fn names(found: &[FoundIndexes]) -> BTreeMap<RawId, BTreeMap<RawId, Vec<u8>>> {
    found
        .iter()
        .map(|f| {
            let idx = f
                .indexes
                .iter()
                .map(|e| (e.index, e.data.clone()))
                .collect();
            (f.id, idx)
        })
        .collect()
}

fn id(key: &str) -> RawId {
    RawId::from_key(key.as_bytes())
}

#[test]
fn index_calls_send_the_original_bindings_frames_and_read_the_original_replies() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let server = serve(l, capture("python-indexes.txt"), port);
    let node = Node::new(ClientConfig {
        indexes_shard_count: 16,
        ..ClientConfig::default()
    });
    node.add_remotes(&[&format!("127.0.0.1:{port}:2")])
        .expect("connect to the replaying peer");
    assert_eq!(
        node.indexes_shard_count(),
        2,
        "the shard count the node announced"
    );
    let mut s = Session::new(&node);
    s.set_groups(&[1]);
    let doc1 = Key::from("doc1");
    let set = s
        .set_indexes(&doc1, &[("idx-a", b"data-a"), ("idx-b", b"data-b")])
        .wait()
        .expect("set_indexes");
    assert!(set.iter().all(|e| e.status == 0));
    s.update_indexes(&Key::from("doc2"), &[("idx-a", b"data-a2")])
        .wait()
        .expect("update_indexes");
    let all = s
        .find_all_indexes(&["idx-a", "idx-b"])
        .wait()
        .expect("find_all");
    let any = s
        .find_any_indexes(&["idx-a", "idx-b"])
        .wait()
        .expect("find_any");
    let listed = s.list_indexes(&doc1).wait().expect("list_indexes");
    s.remove_indexes(&doc1, &["idx-b"])
        .wait()
        .expect("remove_indexes");
    let after = s
        .find_any_indexes(&["idx-a", "idx-b"])
        .wait()
        .expect("find_any");

    let seen = server.join().expect("replaying peer");
    assert_eq!(seen.len(), 12, "every client frame of the capture was sent");
    for (i, (want, got)) in seen.iter().enumerate() {
        if i == 0 {
            // The handshake: only our configured shard count may differ from the capture's.
            assert_eq!(got[..20], want[..20]);
            assert_eq!(got[24..], want[24..]);
            continue;
        }
        assert_eq!(
            got, want,
            "client frame {i} differs from the original bindings'"
        );
    }

    let (a, b) = (id("idx-a"), id("idx-b"));
    let both = BTreeMap::from([(a, b"data-a".to_vec()), (b, b"data-b".to_vec())]);
    assert_eq!(names(&all), BTreeMap::from([(id("doc1"), both.clone())]));
    assert_eq!(
        names(&any),
        BTreeMap::from([
            (id("doc1"), both),
            (id("doc2"), BTreeMap::from([(a, b"data-a2".to_vec())])),
        ])
    );
    let listed: Vec<(RawId, Vec<u8>)> = listed.into_iter().map(|e| (e.index, e.data)).collect();
    assert_eq!(
        listed,
        vec![(b, b"data-b".to_vec()), (a, b"data-a".to_vec())]
    );
    assert_eq!(
        names(&after),
        BTreeMap::from([
            (id("doc1"), BTreeMap::from([(a, b"data-a".to_vec())])),
            (id("doc2"), BTreeMap::from([(a, b"data-a2".to_vec())])),
        ])
    );
}

fn node_with(groups: &[u32]) -> TestNode {
    let backends = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (i as u32 + 1, *g))
        .collect();
    TestNode::start_with(NodeSpec {
        backends,
        extra_options: vec![
            "\"indexes_shard_count\": 4".into(),
            "\"shard_count\": 4".into(),
        ],
        ..NodeSpec::default()
    })
}

fn found_objects(found: &[FoundIndexes]) -> BTreeSet<RawId> {
    found.iter().map(|f| f.id).collect()
}

#[test]
fn set_update_and_remove_show_in_find_and_list_as_in_the_original_suite() {
    let node = node_with(&[1]);
    let s = common::session(&node, &[1]);
    let key = Key::from("simple_key");
    let first: Vec<(String, Vec<u8>)> = (1..=5)
        .map(|i| {
            (
                format!("simple_index_{i}"),
                format!("key_data_{i}").into_bytes(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &[u8])> = first
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    s.set_indexes(&key, &pairs).wait().expect("set_indexes");
    let mut expect: BTreeMap<String, Vec<u8>> = first.into_iter().collect();

    let check = |expect: &BTreeMap<String, Vec<u8>>| {
        let names: Vec<&str> = expect.keys().map(String::as_str).collect();
        let by_hash: BTreeMap<RawId, Vec<u8>> =
            expect.iter().map(|(n, d)| (id(n), d.clone())).collect();
        for found in [
            s.find_all_indexes(&names).wait().expect("find_all"),
            s.find_any_indexes(&names).wait().expect("find_any"),
        ] {
            assert_eq!(
                names_of(&found),
                BTreeMap::from([(id("simple_key"), by_hash.clone())])
            );
        }
        let listed: BTreeMap<RawId, Vec<u8>> = s
            .list_indexes(&key)
            .wait()
            .expect("list_indexes")
            .into_iter()
            .map(|e| (e.index, e.data))
            .collect();
        assert_eq!(listed, by_hash);
    };
    fn names_of(found: &[FoundIndexes]) -> BTreeMap<RawId, BTreeMap<RawId, Vec<u8>>> {
        names(found)
    }
    check(&expect);

    let second: Vec<(String, Vec<u8>)> = (4..=7)
        .map(|i| {
            (
                format!("simple_index_{i}"),
                format!("key_data_{i}.2").into_bytes(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &[u8])> = second
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    s.update_indexes(&key, &pairs)
        .wait()
        .expect("update_indexes");
    expect.extend(second);
    check(&expect);

    let removed = ["simple_index_1", "simple_index_2", "simple_index_3"];
    s.remove_indexes(&key, &removed)
        .wait()
        .expect("remove_indexes");
    for r in removed {
        expect.remove(r);
    }
    check(&expect);
    let gone = s
        .find_any_indexes(&removed)
        .wait()
        .expect("find_any of removed");
    assert!(gone.is_empty(), "removed indexes still list {gone:?}");
}

#[test]
fn find_all_intersects_and_find_any_unites_over_many_objects() {
    let node = node_with(&[1]);
    let s = common::session(&node, &[1]);
    // Object i is in "even" or "odd", and in "all".
    for i in 0..40 {
        let parity = if i % 2 == 0 { "even" } else { "odd" };
        let data = format!("{i}");
        s.set_indexes(
            &Key::from(format!("obj-{i}").as_str()),
            &[("all", data.as_bytes()), (parity, data.as_bytes())],
        )
        .wait()
        .expect("set_indexes");
    }
    let objects = |pred: &dyn Fn(usize) -> bool| -> BTreeSet<RawId> {
        (0..40)
            .filter(|i| pred(*i))
            .map(|i| id(&format!("obj-{i}")))
            .collect()
    };
    let evens = s
        .find_all_indexes(&["all", "even"])
        .wait()
        .expect("find_all");
    assert_eq!(found_objects(&evens), objects(&|i| i % 2 == 0));
    assert!(evens.iter().all(|f| f.indexes.len() == 2));
    let none = s
        .find_all_indexes(&["even", "odd"])
        .wait()
        .expect("find_all");
    assert!(none.is_empty(), "no object is both even and odd");
    let every = s
        .find_any_indexes(&["even", "odd"])
        .wait()
        .expect("find_any");
    assert_eq!(found_objects(&every), objects(&|_| true));

    // A new set replaces the list: obj-0 leaves "even" and "all".
    s.set_indexes(&Key::from("obj-0"), &[("odd", b"moved")])
        .wait()
        .expect("set_indexes");
    let odd = s.find_any_indexes(&["odd"]).wait().expect("find_any");
    assert!(found_objects(&odd).contains(&id("obj-0")));
    let all = s.find_any_indexes(&["all"]).wait().expect("find_any");
    assert!(!found_objects(&all).contains(&id("obj-0")));
}

#[test]
fn concurrent_updates_of_one_index_keep_every_object() {
    let node = node_with(&[1]);
    let s = common::session(&node, &[1]);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..4 {
                    let key = format!("writer-{t}-{i}");
                    s.update_indexes(&Key::from(key.as_str()), &[("shared", key.as_bytes())])
                        .wait()
                        .expect("update_indexes");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }
    let found = s.find_any_indexes(&["shared"]).wait().expect("find_any");
    assert_eq!(
        found.len(),
        64,
        "every concurrently added object is in the index"
    );
}

#[test]
fn indexes_survive_a_restart_and_every_group_is_updated() {
    let mut node = node_with(&[1, 2]);
    let s = common::session(&node, &[1, 2]);
    let results = s
        .set_indexes(&Key::from("kept"), &[("durable", b"yes")])
        .wait()
        .expect("set_indexes");
    let finals = results
        .iter()
        .filter(|e| e.status == 0 && e.payload.is_none())
        .count();
    assert_eq!(finals, 2, "one final ack per group");
    node.restart();
    let s = common::session(&node, &[2]);
    let found = s.find_any_indexes(&["durable"]).wait().expect("find_any");
    assert_eq!(found_objects(&found), BTreeSet::from([id("kept")]));
    let listed = s
        .list_indexes(&Key::from("kept"))
        .wait()
        .expect("list_indexes");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].data, b"yes");
}

#[test]
fn every_object_of_many_shared_indexes_is_found_with_every_index() {
    // The original suite's test_more_indexes: 256 keys, each cleared and set with the same
    // 16 indexes (empty data).
    let node = node_with(&[1]);
    let s = common::session(&node, &[1]);
    let names: Vec<String> = (0..16).map(|i| format!("index-{i}")).collect();
    let pairs: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for k in 0..256 {
        let key = Key::from(format!("key-{k}").as_str());
        s.set_indexes(&key, &[]).wait().expect("clear the indexes");
        s.set_indexes(&key, &pairs).wait().expect("set_indexes");
    }
    let all = s.find_all_indexes(&refs).wait().expect("find_all");
    let any = s.find_any_indexes(&refs).wait().expect("find_any");
    assert_eq!(all.len(), 256);
    assert_eq!(any.len(), 256);
    assert!(all.iter().chain(&any).all(|f| f.indexes.len() == 16));
    assert_eq!(found_objects(&all), found_objects(&any));
}
