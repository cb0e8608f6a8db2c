//! A value written in prepared pieces (PREPARE / PLAIN_WRITE / COMMIT, the binding's
//! chunked `write_data`) whose pieces are each larger than the node buffers whole: every
//! PLAIN_WRITE streams into the prepared record, the committed value reads back
//! byte-identical, and a kill -9 between the PLAIN_WRITEs and the COMMIT exposes nothing
//! partial, loses nothing acknowledged, and leaves the record to be committed after the
//! restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{session, NodeSpec, TestNode};
use elliptics::client::Key;
use elliptics::protocol::errno;

const MIB: usize = 1 << 20;
/// Each piece: above the 4 MiB from which a WRITE frame streams.
const PIECE_BYTES: usize = 6 * MIB;
const VALUE_BYTES: usize = 3 * PIECE_BYTES + 12_345;

fn value(seed: u8) -> Vec<u8> {
    (0..VALUE_BYTES)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 20) as u8 ^ seed)
        .collect()
}

fn node() -> TestNode {
    TestNode::start_with(NodeSpec {
        blob_flags: "0".into(),
        ..NodeSpec::default()
    })
}

/// The value of `key`, or the error status.
fn read(s: &elliptics::client::Session, key: &str) -> Result<Vec<u8>, i32> {
    match s.read_data(&Key::from(key), 0, 0).wait() {
        Ok(entries) => Ok(entries
            .into_iter()
            .find_map(|e| e.payload)
            .map(|r| r.data)
            .unwrap_or_default()),
        Err(e) => Err(e.status),
    }
}

#[test]
fn a_value_written_in_large_prepared_pieces_reads_back_whole() {
    let node = node();
    let s = session(&node, &[1]);
    let data = value(1);
    let written = s
        .write_data_chunked(&Key::from("chunked"), &data, 0, PIECE_BYTES as u64)
        .expect("chunked write");
    assert!(written.iter().all(|e| e.status == 0));
    let back = read(&s, "chunked").expect("read back");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the committed value differs");
    let log = node.log();
    assert!(
        !log.contains("refusing"),
        "no piece was refused by the node: {log}"
    );
}

#[test]
fn kill_9_between_plain_writes_and_commit_exposes_nothing_and_keeps_the_record() {
    let mut node = node();
    let s = session(&node, &[1]);
    for i in 0..10 {
        let v = format!("value {i}");
        s.write_data(&Key::from(format!("acked-{i}").as_str()), v.as_bytes(), 0)
            .wait()
            .expect("small write");
    }
    let data = value(2);
    let key = Key::from("prepared");
    let end = VALUE_BYTES as u64;
    let (first, rest) = data.split_at(PIECE_BYTES);
    let (second, last) = rest.split_at(PIECE_BYTES);
    s.write_prepare(&key, first, 0, end)
        .wait()
        .expect("prepare");
    s.write_plain(&key, second, PIECE_BYTES as u64)
        .wait()
        .expect("streamed plain write");
    assert_eq!(
        read(&s, "prepared"),
        Err(errno::ENOENT),
        "not committed yet"
    );
    node.signal(libc::SIGKILL);
    node.restart();
    let s = session(&node, &[1]);
    for i in 0..10 {
        let want = format!("value {i}").into_bytes();
        assert_eq!(read(&s, &format!("acked-{i}")).unwrap(), want);
    }
    assert_eq!(
        read(&s, "prepared"),
        Err(errno::ENOENT),
        "an uncommitted record stays invisible after the crash"
    );
    // The acknowledged pieces are still there: the COMMIT, streamed, seals them.
    s.write_commit(&key, last, 2 * PIECE_BYTES as u64, end)
        .wait()
        .expect("commit after restart");
    let back = read(&s, "prepared").expect("read after commit");
    assert!(
        back == data,
        "the value committed after the restart differs"
    );
}
