//! MONITOR_STAT categories and the top keys against a real `dnet_ioserv`: each category
//! bit selects its section, the HTTP paths select the same, and after a write the key's
//! sha512 hex is listed in `top.top_by_size` both over MONITOR_STAT and over HTTP.

mod common;

use common::{free_port, session, NodeSpec, TestNode};
use elliptics::client::{Key, Session};
use elliptics::key::RawId;
use std::io::{Read, Write};
use std::net::TcpStream;

const SECTIONS: [(u64, &str); 7] = [
    (1, "cache"),
    (2, "io"),
    (4, "commands"),
    (16, "backends"),
    (32, "shards"),
    (64, "procfs"),
    (128, "top"),
];

fn monitor(s: &Session, categories: u64) -> serde_json::Value {
    let text = s.monitor_stat(categories).wait().expect("monitor")[0]
        .payload
        .clone()
        .expect("json");
    serde_json::from_str(&text).expect("monitor json")
}

fn http_get(port: u16, path: &str) -> (String, serde_json::Value) {
    let mut http = TcpStream::connect(("127.0.0.1", port)).expect("monitor http");
    write!(http, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut text = String::new();
    http.read_to_string(&mut text).expect("response");
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or_default())
}

fn top_ids(doc: &serde_json::Value) -> Vec<(String, u64)> {
    doc["top"]["top_by_size"]
        .as_array()
        .expect("top_by_size")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().expect("id").to_string(),
                e["size"].as_u64().expect("size"),
            )
        })
        .collect()
}

fn node_with_http() -> (TestNode, u16) {
    node_with_monitor(
        r#", "top": {"top_length": 50, "events_size": 1000, "period_in_seconds": 300}"#,
    )
}

/// A node with an HTTP monitor; `more` is added to its `monitor` block.
fn node_with_monitor(more: &str) -> (TestNode, u16) {
    let port = free_port();
    let node = TestNode::start_with(NodeSpec {
        backends: vec![(1, 1)],
        extra_options: vec![
            "\"shard_count\": 2".into(),
            format!("\"monitor\": {{\"port\": {port}{more}}}"),
        ],
        ..NodeSpec::default()
    });
    (node, port)
}

#[test]
fn without_monitor_top_the_top_list_stays_empty() {
    let (node, port) = node_with_monitor("");
    let s = session(&node, &[1]);
    s.write_data(&Key::from("a-key"), &vec![7u8; 4096], 0)
        .wait()
        .expect("write");
    assert_eq!(top_ids(&monitor(&s, 128)), vec![]);
    let (status, doc) = http_get(port, "/top");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(top_ids(&doc), vec![]);
}

#[test]
fn each_category_bit_selects_only_its_section() {
    let (node, _) = node_with_http();
    let s = session(&node, &[1]);
    for (bit, section) in SECTIONS {
        let doc = monitor(&s, bit);
        assert!(doc.get(section).is_some(), "{bit}: {doc}");
        for (other_bit, other) in SECTIONS {
            if other_bit != bit {
                assert!(doc.get(other).is_none(), "{bit} also gave {other}: {doc}");
            }
        }
    }
    let all = monitor(&s, u64::MAX);
    for (_, section) in SECTIONS {
        assert!(all.get(section).is_some(), "ALL lacks {section}");
    }
    let two = monitor(&s, 16 | 128);
    assert!(two.get("backends").is_some() && two.get("top").is_some());
    assert!(two.get("io").is_none());
}

#[test]
fn written_key_is_listed_in_top_by_size_over_monitor_stat_and_http() {
    let (node, port) = node_with_http();
    let s = session(&node, &[1]);
    let hot = "the-hot-key";
    let hex = RawId::from_key(hot.as_bytes()).to_hex();
    s.write_data(&Key::from(hot), &vec![7u8; 4096], 0)
        .wait()
        .expect("write");
    s.write_data(&Key::from("a-cold-key"), b"x", 0)
        .wait()
        .expect("write");

    let over_wire = top_ids(&monitor(&s, 128));
    assert_eq!(
        over_wire.first(),
        Some(&(hex.clone(), 4096)),
        "{over_wire:?}"
    );
    assert_eq!(over_wire.len(), 2);

    let (status, doc) = http_get(port, "/top");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(top_ids(&doc).iter().any(|(id, _)| *id == hex), "{doc}");
    assert!(doc.get("backends").is_none());

    let (_, doc) = http_get(port, "/?categories=144");
    assert!(doc.get("top").is_some() && doc.get("backends").is_some());
    let (_, doc) = http_get(port, "/all");
    assert!(top_ids(&doc).iter().any(|(id, _)| *id == hex));
    let (_, list) = http_get(port, "/list");
    assert!(list["handlers"]
        .as_array()
        .expect("handlers")
        .iter()
        .any(|h| h == "/procfs"));
    let (status, _) = http_get(port, "/nowhere");
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
}
