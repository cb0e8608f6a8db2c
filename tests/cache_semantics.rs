//! The 2.26 in-memory cache against a real `dnet_ioserv` (`options.cache`): the replies of
//! the recorded session in `tests/data/wire-captures/python-cache.txt`, what survives a
//! restart, timestamps and user flags kept, cache-only writes never on disk, reads that
//! populate the cache, and writes to cached keys without the CACHE flag.

mod common;

use common::{session, NodeSpec, TestNode};
use elliptics::client::{Key, Session};
use elliptics::protocol::{cmd_flags, io_flags, DnetTime};
use std::time::{Duration, Instant};

const CACHE: u32 = io_flags::CACHE;
const CACHE_ONLY: u32 = io_flags::CACHE_ONLY;

fn cached_node(cache: &str) -> TestNode {
    TestNode::start_with(NodeSpec {
        extra_options: vec!["\"shard_count\": 2".into(), format!("\"cache\": {cache}")],
        ..NodeSpec::default()
    })
}

fn with_flags(s: &Session, ioflags: u32) -> Session {
    let mut s = s.clone();
    s.set_ioflags(ioflags);
    s
}

fn read(s: &Session, key: &str) -> Result<(Vec<u8>, elliptics::protocol::IoAttr), i32> {
    let entries = s
        .read_data(&Key::from(key), 0, 0)
        .wait()
        .map_err(|e| e.status)?;
    let p = entries
        .into_iter()
        .find_map(|e| e.payload)
        .ok_or(elliptics::protocol::errno::ENOENT)?;
    Ok((p.data, p.io))
}

fn read_bytes(s: &Session, key: &str) -> Result<Vec<u8>, i32> {
    read(s, key).map(|(data, _)| data)
}

/// LOOKUP that skips the cache (the NOCACHE cflag): is the key on disk?
fn on_disk(s: &Session, key: &str) -> bool {
    let mut s = with_flags(s, 0);
    s.set_cflags(cmd_flags::NOCACHE);
    s.lookup(&Key::from(key)).wait().is_ok()
}

/// Stop the node with SIGTERM (a clean shutdown), then start it again on its data.
fn clean_restart(node: &mut TestNode) {
    node.signal(15);
    assert!(
        node.wait_exit(15_000).is_some(),
        "the node stops on SIGTERM"
    );
    node.restart();
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(15), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_recorded_cache_session_gets_the_original_replies_and_restart_keeps_only_the_synced_key() {
    let mut node = cached_node(r#"{"size": 1048576}"#);
    let s = session(&node, &[1]);

    let w = with_flags(&s, CACHE)
        .write_data(&Key::from("ckey"), b"cached data", 0)
        .wait()
        .expect("cache write");
    let info = w[0].payload.as_ref().expect("file info");
    assert_eq!((info.size, info.offset, info.record_flags), (11, 0, 0));
    assert_eq!(info.path, "", "a cache write names no blob file");
    let (data, io) = read(&with_flags(&s, CACHE), "ckey").expect("cache read");
    assert_eq!(data, b"cached data");
    assert_eq!((io.total_size, io.size, io.record_flags), (11, 11, 0));
    assert_eq!(
        io.timestamp, info.mtime,
        "the read shows the write's timestamp"
    );

    with_flags(&s, CACHE | CACHE_ONLY)
        .write_data(&Key::from("conly"), b"cache only data", 0)
        .wait()
        .expect("cache-only write");
    assert_eq!(
        read_bytes(&with_flags(&s, CACHE), "conly"),
        Ok(b"cache only data".to_vec())
    );
    assert_eq!(
        read_bytes(&with_flags(&s, 0), "conly"),
        Ok(b"cache only data".to_vec()),
        "a cached key is read from the cache without the CACHE flag"
    );
    let look = with_flags(&s, 0)
        .lookup(&Key::from("conly"))
        .wait()
        .expect("lookup of a cache-only key");
    let look = look[0].payload.as_ref().expect("lookup info");
    assert_eq!((look.size, look.offset, look.path.as_str()), (0, 0, ""));

    with_flags(&s, CACHE | io_flags::CACHE_REMOVE_FROM_DISK)
        .remove(&Key::from("ckey"))
        .wait()
        .expect("remove from cache and disk");
    assert_eq!(read_bytes(&with_flags(&s, 0), "ckey"), Err(-2));

    with_flags(&s, 0)
        .write_cache(&Key::from("clife"), b"short lived", 1)
        .wait()
        .expect("write_cache with a lifetime");
    assert_eq!(
        read_bytes(&with_flags(&s, CACHE), "clife"),
        Ok(b"short lived".to_vec())
    );
    // When its lifetime ends the dirty entry is written to disk and leaves the cache.
    wait_until("the expired entry reaches the disk", || {
        on_disk(&s, "clife")
    });
    assert_eq!(
        read_bytes(&with_flags(&s, CACHE), "clife"),
        Ok(b"short lived".to_vec())
    );

    clean_restart(&mut node);
    let s = session(&node, &[1]);
    assert_eq!(read_bytes(&s, "ckey"), Err(-2), "removed from disk");
    assert_eq!(read_bytes(&s, "conly"), Err(-2), "cache-only never on disk");
    assert_eq!(read_bytes(&s, "clife"), Ok(b"short lived".to_vec()));
}

#[test]
fn a_written_back_value_keeps_its_timestamp_and_user_flags_on_disk() {
    let mut node = cached_node(r#"{"size": 1048576, "sync_timeout": 2}"#);
    let mut s = with_flags(&session(&node, &[1]), CACHE);
    let ts = DnetTime {
        tsec: 1_700_000_000,
        tnsec: 123_456_789,
    };
    s.set_timestamp(ts);
    s.set_user_flags(0xfeed);
    s.write_data(&Key::from("meta"), b"with metadata", 0)
        .wait()
        .expect("cache write");
    let (_, io) = read(&s, "meta").expect("cache read");
    assert_eq!((io.timestamp, io.user_flags), (ts, 0xfeed));
    let look = s.lookup(&Key::from("meta")).wait().expect("lookup");
    assert_eq!(look[0].payload.as_ref().map(|p| p.mtime), Some(ts));
    assert!(!on_disk(&s, "meta"), "dirty until sync_timeout");
    wait_until("the write-back", || on_disk(&s, "meta"));
    node.kill();
    node.restart();
    let s = session(&node, &[1]);
    let (data, io) = read(&s, "meta").expect("read from disk after a kill");
    assert_eq!(data, b"with metadata");
    assert_eq!((io.timestamp, io.user_flags), (ts, 0xfeed));
}

#[test]
fn a_clean_shutdown_writes_dirty_entries_and_drops_cache_only_ones() {
    let mut node = cached_node(r#"{"size": 1048576, "sync_timeout": 3600}"#);
    let s = session(&node, &[1]);
    with_flags(&s, CACHE)
        .write_data(&Key::from("dirty"), b"not yet on disk", 0)
        .wait()
        .expect("cache write");
    with_flags(&s, CACHE | CACHE_ONLY)
        .write_data(&Key::from("only"), b"memory only", 0)
        .wait()
        .expect("cache-only write");
    assert!(!on_disk(&s, "dirty") && !on_disk(&s, "only"));
    clean_restart(&mut node);
    let s = session(&node, &[1]);
    assert_eq!(read_bytes(&s, "dirty"), Ok(b"not yet on disk".to_vec()));
    assert_eq!(read_bytes(&s, "only"), Err(-2));
}

#[test]
fn a_cache_read_populates_the_cache_and_a_cache_only_read_does_not() {
    let node = cached_node(r#"{"size": 1048576}"#);
    let s = session(&node, &[1]);
    s.write_data(&Key::from("disk-key"), b"from disk", 0)
        .wait()
        .expect("plain write");
    let objects = || {
        let text = s.monitor_stat(1).wait().expect("monitor")[0]
            .payload
            .clone()
            .expect("json");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        doc["cache"]["total_cache"]["size_stats"]["objects"]
            .as_u64()
            .expect("objects")
    };
    assert_eq!(objects(), 0, "a plain write does not fill the cache");
    assert_eq!(
        read_bytes(&with_flags(&s, CACHE | CACHE_ONLY), "disk-key"),
        Err(-2),
        "a cache-only read of a disk-only key"
    );
    assert_eq!(
        read_bytes(&with_flags(&s, CACHE), "disk-key"),
        Ok(b"from disk".to_vec())
    );
    assert_eq!(objects(), 1, "the CACHE read populated the cache");
    assert_eq!(
        read_bytes(&with_flags(&s, CACHE | CACHE_ONLY), "disk-key"),
        Ok(b"from disk".to_vec())
    );
}

#[test]
fn a_write_without_the_cache_flag_to_a_cached_key_updates_the_cache() {
    let node = cached_node(r#"{"size": 1048576}"#);
    let s = session(&node, &[1]);
    with_flags(&s, CACHE | CACHE_ONLY)
        .write_data(&Key::from("k"), b"first", 0)
        .wait()
        .expect("cache-only write");
    with_flags(&s, 0)
        .write_data(&Key::from("k"), b"second value", 0)
        .wait()
        .expect("plain write");
    assert_eq!(
        read_bytes(&with_flags(&s, CACHE | CACHE_ONLY), "k"),
        Ok(b"second value".to_vec())
    );
    with_flags(&s, 0)
        .write_data(&Key::from("k"), b"X", 3)
        .wait()
        .expect("write at an offset");
    assert_eq!(read_bytes(&with_flags(&s, 0), "k"), Ok(b"secX".to_vec()));
    let part = with_flags(&s, 0)
        .read_data(&Key::from("k"), 1, 2)
        .wait()
        .expect("partial read")[0]
        .payload
        .clone()
        .expect("data");
    assert_eq!((part.data.as_slice(), part.io.total_size), (&b"ec"[..], 4));
}
