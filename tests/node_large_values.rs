//! Values larger than a frame the node buffers: a WRITE streams from the socket into the
//! blob and a READ streams back, byte-identical, with node memory that does not grow with
//! the value; a value cut off mid-way (closed connection, kill -9) leaves nothing visible
//! and loses nothing acknowledged; a value above `value_bytes_max` gets -E2BIG; small
//! requests keep being answered while a large value streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::large::{
    rss_anon_bytes, send_value, start_write as start_write_as, value_part, IO_ATTR_BYTES,
    SEND_CHUNK_BYTES,
};
use common::raw::{read_request, write_request, RawConn};
use common::{NodeSpec, TestNode};
use elliptics::protocol::{cmd_flags, errno, CmdHeader, IoAttr, HEADER_SIZE_BYTES};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// A node whose records carry checksum footers, one shard unless `shards` says more.
fn node_with(extra: &[&str]) -> TestNode {
    TestNode::start_with(NodeSpec {
        blob_flags: "0".into(),
        extra_options: extra.iter().map(|s| s.to_string()).collect(),
        ..NodeSpec::default()
    })
}

/// Samples a process's anonymous memory until dropped; the highest value seen.
struct PeakRss {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    fn watch(pid: u32) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_anon_bytes(pid)));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_anon_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        PeakRss {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn peak(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

/// Send the start of a WRITE of `total` bytes of `key`'s value `seed`, and its first
/// `sent` bytes.
fn start_write(c: &mut RawConn, key: &str, seed: u64, total: u64, sent: u64) -> u64 {
    start_write_as(c, key, seed, total, sent, 77)
}

/// WRITE `total` bytes of value `seed` to `key`, streamed from the generator; the status.
fn write_value(c: &mut RawConn, key: &str, seed: u64, total: u64) -> i32 {
    let trans = start_write(c, key, seed, total, total);
    let replies = c.recv_transaction(trans);
    replies.last().unwrap().header.status
}

/// READ `size` bytes (0: to the end) at `offset` of `key` and compare them with value
/// `seed` as they arrive; the status, and the bytes compared.
fn read_value(c: &mut RawConn, key: &str, seed: u64, offset: u64, size: u64) -> (i32, u64) {
    let (header, body) = read_request(key.as_bytes(), 1);
    let mut io = IoAttr::decode(&body).unwrap();
    io.offset = offset;
    io.size = size;
    let trans = c.request(header, &io.encode());
    let mut head = [0u8; HEADER_SIZE_BYTES];
    c.stream.read_exact(&mut head).unwrap();
    let reply = CmdHeader::decode(&head).unwrap();
    assert_eq!(reply.trans, trans);
    if reply.size == 0 {
        return (reply.status, 0);
    }
    let mut attr = vec![0u8; IO_ATTR_BYTES as usize];
    c.stream.read_exact(&mut attr).unwrap();
    let data_bytes = reply.size - IO_ATTR_BYTES;
    assert_eq!(IoAttr::decode(&attr).unwrap().size, data_bytes);
    let mut buf = vec![0u8; SEND_CHUNK_BYTES as usize];
    let mut at = 0;
    while at < data_bytes {
        let n = SEND_CHUNK_BYTES.min(data_bytes - at);
        c.stream.read_exact(&mut buf[..n as usize]).unwrap();
        assert!(
            buf[..n as usize] == value_part(seed, offset + at, n)[..],
            "bytes at {} differ",
            offset + at
        );
        at += n;
    }
    assert_eq!(reply.flags & cmd_flags::MORE, 0, "one final reply");
    (reply.status, at)
}

fn small_write(c: &mut RawConn, key: &str, value: &[u8]) {
    let (h, body) = write_request(key.as_bytes(), 1, value);
    assert_eq!(c.call(h, &body).last().unwrap().header.status, 0);
}

/// The value of a small key, or the error status.
fn small_read(c: &mut RawConn, key: &str) -> Result<Vec<u8>, i32> {
    let (h, body) = read_request(key.as_bytes(), 1);
    let replies = c.call(h, &body);
    let last = replies.last().unwrap();
    if last.header.status != 0 {
        return Err(last.header.status);
    }
    Ok(last.payload[IO_ATTR_BYTES as usize..].to_vec())
}

#[test]
fn a_value_above_the_old_frame_cap_round_trips_with_memory_far_below_its_size() {
    let node = node_with(&[]);
    let pid = node.pid().unwrap();
    let value_bytes = 200 * MIB + 12_345;
    let (mut c, _) = RawConn::handshaken(node.addr());
    c.stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let before = rss_anon_bytes(pid);
    let watch = PeakRss::watch(pid);
    assert_eq!(write_value(&mut c, "big", 1, value_bytes), 0);
    let write_growth = watch.peak().saturating_sub(before);
    let watch = PeakRss::watch(pid);
    assert_eq!(read_value(&mut c, "big", 1, 0, 0), (0, value_bytes));
    let read_growth = watch.peak().saturating_sub(before);
    eprintln!(
        "node anonymous memory grew by {} MiB writing and {} MiB reading {} MiB",
        write_growth >> 20,
        read_growth >> 20,
        value_bytes >> 20
    );
    assert!(write_growth < value_bytes / 2, "write grew {write_growth}");
    assert!(read_growth < value_bytes / 2, "read grew {read_growth}");
    // Ranges read only their bytes: across chunk boundaries, and a small one far in.
    let at = 100 * MIB + 777;
    assert_eq!(
        read_value(&mut c, "big", 1, at, 9 * MIB + 5),
        (0, 9 * MIB + 5)
    );
    assert_eq!(read_value(&mut c, "big", 1, 150 * MIB + 1, 1000), (0, 1000));
    let tail = 5 * MIB;
    let end = value_bytes - tail;
    assert_eq!(read_value(&mut c, "big", 1, end, 0), (0, tail));
    // The connection still serves ordinary requests after the streams.
    small_write(&mut c, "after", b"small");
    assert_eq!(small_read(&mut c, "after").unwrap(), b"small");
}

#[test]
fn a_connection_cut_mid_value_leaves_the_key_as_it_was_and_the_node_serving() {
    let node = node_with(&["\"frame_stall_timeout\": 2"]);
    let (mut c, _) = RawConn::handshaken(node.addr());
    small_write(&mut c, "kept", b"the old value");
    let (mut cut, _) = RawConn::handshaken(node.addr());
    start_write(&mut cut, "kept", 2, 64 * MIB, 20 * MIB);
    drop(cut);
    let (mut stalled, _) = RawConn::handshaken(node.addr());
    start_write(&mut stalled, "fresh", 3, 64 * MIB, 10 * MIB);
    assert!(
        stalled.is_closed_by_peer(10_000),
        "a stalled value's connection is closed"
    );
    assert_eq!(small_read(&mut c, "kept").unwrap(), b"the old value");
    assert_eq!(small_read(&mut c, "fresh"), Err(errno::ENOENT));
    assert_eq!(write_value(&mut c, "fresh", 3, 20 * MIB), 0);
    assert_eq!(read_value(&mut c, "fresh", 3, 0, 0), (0, 20 * MIB));
}

#[test]
fn kill_9_mid_value_exposes_nothing_partial_and_loses_nothing_acknowledged() {
    let mut node = node_with(&[]);
    let (mut c, _) = RawConn::handshaken(node.addr());
    for i in 0..20 {
        small_write(
            &mut c,
            &format!("acked-{i}"),
            format!("value {i}").as_bytes(),
        );
    }
    assert_eq!(write_value(&mut c, "big-acked", 4, 12 * MIB), 0);
    small_write(&mut c, "rewritten", b"before the crash");
    let (mut torn, _) = RawConn::handshaken(node.addr());
    start_write(&mut torn, "rewritten", 5, 80 * MIB, 30 * MIB);
    let (mut torn_new, _) = RawConn::handshaken(node.addr());
    start_write(&mut torn_new, "torn-new", 6, 80 * MIB, 30 * MIB);
    // The node has taken the bytes sent so far once a request after them is answered.
    small_write(&mut c, "acked-last", b"last");
    node.signal(libc::SIGKILL);
    node.restart();
    let (mut c, _) = RawConn::handshaken(node.addr());
    for i in 0..20 {
        let want = format!("value {i}").into_bytes();
        assert_eq!(small_read(&mut c, &format!("acked-{i}")).unwrap(), want);
    }
    assert_eq!(small_read(&mut c, "acked-last").unwrap(), b"last");
    assert_eq!(read_value(&mut c, "big-acked", 4, 0, 0), (0, 12 * MIB));
    assert_eq!(
        small_read(&mut c, "rewritten").unwrap(),
        b"before the crash"
    );
    assert_eq!(small_read(&mut c, "torn-new"), Err(errno::ENOENT));
    small_write(&mut c, "after-restart", b"works");
    assert_eq!(small_read(&mut c, "after-restart").unwrap(), b"works");
}

#[test]
fn a_value_above_value_bytes_max_gets_e2big_and_the_limit_in_the_log() {
    let node = node_with(&["\"value_bytes_max\": \"8M\""]);
    let (mut c, _) = RawConn::handshaken(node.addr());
    let trans = start_write(&mut c, "too-big", 7, 20 * MIB, 0);
    let replies = c.recv_transaction(trans);
    assert_eq!(replies.last().unwrap().header.status, errno::E2BIG);
    let log = node.log();
    assert!(
        log.contains("value_bytes_max (8388608 bytes)"),
        "the log names the limit: {log}"
    );
    let (mut c, _) = RawConn::handshaken(node.addr());
    assert_eq!(write_value(&mut c, "fits", 8, 6 * MIB), 0);
    assert_eq!(small_read(&mut c, "too-big"), Err(errno::ENOENT));
}

#[test]
fn small_reads_on_the_same_shard_are_answered_while_a_large_value_streams_in() {
    let node = node_with(&["\"shard_count\": 1"]);
    let (mut small, _) = RawConn::handshaken(node.addr());
    small_write(&mut small, "small", b"tiny value");
    let (mut big, _) = RawConn::handshaken(node.addr());
    let total = 120 * MIB;
    let trans = start_write(&mut big, "streaming", 9, total, 10 * MIB);
    let mut sent = 10 * MIB;
    for _ in 0..10 {
        for _ in 0..5 {
            assert_eq!(small_read(&mut small, "small").unwrap(), b"tiny value");
        }
        send_value(&mut big, 9, sent, 11 * MIB);
        sent += 11 * MIB;
    }
    send_value(&mut big, 9, sent, total - sent);
    assert_eq!(big.recv_transaction(trans).last().unwrap().header.status, 0);
    assert_eq!(read_value(&mut small, "streaming", 9, 0, 0), (0, total));
}

/// Flip one byte of the value of the only record in the node's data file.
fn corrupt_value_byte(node: &TestNode, value_offset: u64) {
    use std::os::unix::fs::FileExt;
    let path = node.dir.path().join("eblob-1").join("data-0.0");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // The record starts the file: its 96-byte header, its 48-byte ext header, the value.
    let at = 96 + 48 + value_offset;
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x20;
    file.write_all_at(&b, at).unwrap();
}

#[test]
fn a_large_read_answers_eilseq_before_its_first_byte_and_closes_after_it() {
    let node = node_with(&["\"shard_count\": 1"]);
    let (mut c, _) = RawConn::handshaken(node.addr());
    let value_bytes = 40 * MIB;
    assert_eq!(write_value(&mut c, "damaged", 10, value_bytes), 0);
    corrupt_value_byte(&node, 30 * MIB + 3);
    // Before the damage the range reads fine; a read that reaches it stops there.
    assert_eq!(
        read_value(&mut c, "damaged", 10, 0, 20 * MIB),
        (0, 20 * MIB)
    );
    let (header, body) = read_request(b"damaged", 1);
    c.request(header, &body);
    let mut head = [0u8; HEADER_SIZE_BYTES];
    c.stream.read_exact(&mut head).unwrap();
    assert_eq!(
        CmdHeader::decode(&head).unwrap().size,
        IO_ATTR_BYTES + value_bytes
    );
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    assert!(
        (rest.len() as u64) < IO_ATTR_BYTES + 30 * MIB + 3,
        "the damaged bytes never leave: {} bytes came",
        rest.len()
    );
    assert!(node
        .log()
        .contains("a streamed READ failed after its header was sent"));
    corrupt_value_byte(&node, 5);
    let (mut c, _) = RawConn::handshaken(node.addr());
    assert_eq!(read_value(&mut c, "damaged", 10, 0, 0), (errno::EILSEQ, 0));
    assert_eq!(small_read(&mut c, "damaged"), Err(errno::EILSEQ));
}
