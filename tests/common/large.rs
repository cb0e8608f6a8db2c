//! Large values for the streaming tests: values generated from a seed at any offset (so a
//! test never holds a whole one), a WRITE sent head first and then its value in pieces,
//! and the anonymous memory of a process.

use super::raw::{write_request, RawConn};
use elliptics::protocol::IoAttr;
use std::io::Write;

/// Bytes of an io_attr on the wire.
pub const IO_ATTR_BYTES: u64 = 208;
/// Bytes generated and sent per write call.
pub const SEND_CHUNK_BYTES: u64 = 1 << 20;

/// Word `k` (bytes `8k..8k + 8`) of the value with `seed`: cheap, and different at every
/// offset that matters.
fn word_at(seed: u64, k: u64) -> [u8; 8] {
    ((k ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k).to_le_bytes()
}

/// Bytes `from..from + len` of the value with `seed`.
pub fn value_part(seed: u64, from: u64, len: u64) -> Vec<u8> {
    let first = from / 8;
    let last = (from + len).div_ceil(8);
    let mut words = Vec::with_capacity(((last - first) * 8) as usize);
    for k in first..last {
        words.extend_from_slice(&word_at(seed, k));
    }
    let skip = (from - first * 8) as usize;
    words.drain(..skip);
    words.truncate(len as usize);
    words
}

/// Send the head of a WRITE (transaction `trans`, group 1) of `total` bytes of `key`'s
/// value `seed`, then its first `sent` bytes; the transaction.
pub fn start_write(
    c: &mut RawConn,
    key: &str,
    seed: u64,
    total: u64,
    sent: u64,
    trans: u64,
) -> u64 {
    let (mut header, body) = write_request(key.as_bytes(), 1, &[]);
    let mut io = IoAttr::decode(&body).expect("a WRITE request carries an io_attr");
    io.size = total;
    header.size = IO_ATTR_BYTES + total;
    header.trans = trans;
    let mut head = header.encode().to_vec();
    head.extend_from_slice(&io.encode());
    c.send_bytes(&head);
    send_value(c, seed, 0, sent);
    header.trans
}

/// Send bytes `from..from + len` of value `seed`, a chunk at a time.
pub fn send_value(c: &mut RawConn, seed: u64, from: u64, len: u64) {
    let mut at = from;
    while at < from + len {
        let n = SEND_CHUNK_BYTES.min(from + len - at);
        c.stream
            .write_all(&value_part(seed, at, n))
            .expect("send the value");
        at += n;
    }
}

/// Anonymous memory of process `pid`, in bytes.
pub fn rss_anon_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in the process status");
    kb * 1024
}
