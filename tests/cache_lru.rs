//! The cache's memory bound against a real `dnet_ioserv`: overflow evicts the least
//! recently used entries and keeps the cache within `size`, a dirty entry pushed out is
//! written to disk first, a key read often outlives a scan of new keys, lifetimes end, and
//! the monitor's `cache` section (MONITOR_STAT and HTTP `/cache`) has 2.26's shape.

mod common;

use common::{free_port, session, NodeSpec, TestNode};
use elliptics::client::{Key, Session};
use elliptics::protocol::{cmd_flags, io_flags};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const ONLY: u32 = io_flags::CACHE | io_flags::CACHE_ONLY;
/// A 32 KiB cache on one shard: about 28 values of 1 KiB with their entry overhead.
const CACHE_BYTES: u64 = 32 * 1024;

fn node(cache: &str, more: &[String]) -> TestNode {
    let mut extra = vec![
        "\"shard_count\": 1".to_string(),
        format!("\"cache\": {cache}"),
    ];
    extra.extend_from_slice(more);
    TestNode::start_with(NodeSpec {
        extra_options: extra,
        ..NodeSpec::default()
    })
}

fn flags(s: &Session, ioflags: u32) -> Session {
    let mut s = s.clone();
    s.set_ioflags(ioflags);
    s
}

fn key(n: usize) -> Key {
    Key::from(format!("key-{n}").as_str())
}

fn read(s: &Session, k: &Key) -> Result<Vec<u8>, i32> {
    let entries = s.read_data(k, 0, 0).wait().map_err(|e| e.status)?;
    entries
        .into_iter()
        .find_map(|e| e.payload)
        .map(|p| p.data)
        .ok_or(elliptics::protocol::errno::ENOENT)
}

fn size_stats(s: &Session) -> serde_json::Value {
    let text = s.monitor_stat(1).wait().expect("monitor")[0]
        .payload
        .clone()
        .expect("json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    doc["cache"]["total_cache"]["size_stats"].clone()
}

#[test]
fn overflow_evicts_the_least_recently_used_and_stays_within_size() {
    let node = node(&format!(r#"{{"size": {CACHE_BYTES}}}"#), &[]);
    let s = session(&node, &[1]);
    for n in 0..100 {
        flags(&s, ONLY)
            .write_data(&key(n), &vec![n as u8; 1024], 0)
            .wait()
            .expect("cache-only write");
    }
    let stats = size_stats(&s);
    let size = stats["size"].as_u64().expect("size");
    let objects = stats["objects"].as_u64().expect("objects");
    assert!(
        size <= CACHE_BYTES,
        "{size} bytes cached in a {CACHE_BYTES}-byte cache"
    );
    assert!((20..100).contains(&objects), "{objects} entries");
    assert!(
        size >= objects * 1024,
        "each entry is charged at least its value"
    );
    assert_eq!(
        read(&flags(&s, ONLY), &key(0)),
        Err(-2),
        "the oldest is gone"
    );
    assert_eq!(read(&flags(&s, ONLY), &key(99)), Ok(vec![99u8; 1024]));
}

#[test]
fn a_key_read_often_outlives_a_scan_of_new_keys() {
    let cache = format!(r#"{{"size": {CACHE_BYTES}, "pages_proportions": [1, 1]}}"#);
    let node = node(&cache, &[]);
    let s = session(&node, &[1]);
    let hot = Key::from("hot");
    flags(&s, ONLY)
        .write_data(&hot, b"hot value", 0)
        .wait()
        .expect("write");
    for round in 0..5 {
        assert_eq!(read(&flags(&s, ONLY), &hot), Ok(b"hot value".to_vec()));
        for n in 0..20 {
            flags(&s, ONLY)
                .write_data(&key(round * 20 + n), &[1u8; 1024], 0)
                .wait()
                .expect("cold write");
        }
    }
    assert_eq!(read(&flags(&s, ONLY), &hot), Ok(b"hot value".to_vec()));
    assert_eq!(read(&flags(&s, ONLY), &key(0)), Err(-2));
}

#[test]
fn a_dirty_entry_pushed_out_by_overflow_is_written_to_disk_first() {
    let node = node(
        &format!(r#"{{"size": {CACHE_BYTES}, "sync_timeout": 3600}}"#),
        &[],
    );
    let s = session(&node, &[1]);
    for n in 0..100 {
        flags(&s, io_flags::CACHE)
            .write_data(&key(n), &vec![n as u8; 1024], 0)
            .wait()
            .expect("cache write");
    }
    // Every value is readable: from the cache, or from disk once written back.
    for n in 0..100 {
        assert_eq!(
            read(&flags(&s, 0), &key(n)),
            Ok(vec![n as u8; 1024]),
            "key {n}"
        );
    }
    let mut nocache = flags(&s, 0);
    nocache.set_cflags(cmd_flags::NOCACHE);
    let start = Instant::now();
    while nocache.lookup(&key(0)).wait().is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "key 0 reaches disk"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Once the write-backs are done, nothing waits outside the pages.
    while size_stats(&s)["removing_objects"] != 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "write-backs end");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(size_stats(&s)["size"].as_u64().expect("size") <= CACHE_BYTES);
}

#[test]
fn an_entry_leaves_the_cache_when_its_lifetime_ends() {
    let node = node(r#"{"size": 1048576}"#, &[]);
    let s = session(&node, &[1]);
    let mut s = flags(&s, io_flags::CACHE_ONLY | io_flags::CACHE_REMOVE_FROM_DISK);
    s.write_cache(&Key::from("brief"), b"gone soon", 1)
        .wait()
        .expect("write_cache");
    assert_eq!(size_stats(&s)["objects"], 1);
    let start = Instant::now();
    while size_stats(&s)["objects"] != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the lifetime ends"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.set_ioflags(io_flags::CACHE);
    assert_eq!(read(&s, &Key::from("brief")), Err(-2));
}

#[test]
fn the_cache_section_has_the_original_shape_over_monitor_stat_and_http() {
    let port = free_port();
    let node = node(
        r#"{"size": 1048576, "pages_proportions": [2, 1]}"#,
        &[format!("\"monitor\": {{\"port\": {port}}}")],
    );
    let s = session(&node, &[1]);
    flags(&s, io_flags::CACHE)
        .write_data(&Key::from("k"), &[5u8; 1000], 0)
        .wait()
        .expect("write");
    let mut http = TcpStream::connect(("127.0.0.1", port)).expect("monitor http");
    write!(http, "GET /cache HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut text = String::new();
    http.read_to_string(&mut text).expect("response");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(body).expect("json");
    let total = &doc["cache"]["total_cache"]["size_stats"];
    assert_eq!(total["objects"], 1);
    assert_eq!(total["removing_objects"], 0);
    assert_eq!(total["removing_size"], 0);
    let size = total["size"].as_u64().expect("size");
    assert!(size >= 1000, "{size}");
    let max: Vec<u64> = serde_json::from_value(total["pages_max_sizes"].clone()).expect("max");
    assert_eq!(max, vec![699_050, 349_525]);
    let pages: Vec<u64> = serde_json::from_value(total["pages_sizes"].clone()).expect("pages");
    assert_eq!(pages, vec![0, size], "a new entry sits in the coldest page");
    assert_eq!(doc["cache"]["caches"]["Cache_00"], *total);
    assert_eq!(size_stats(&s), *total);
}
