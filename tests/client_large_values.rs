//! Large values through the client against a real node: `dnet_ioclient -W` sends a file
//! larger than the default 64 MiB frame limit as one WRITE frame streamed from the file,
//! `-D` streams it back to stdout, byte-identical, and the client's memory stays far below
//! the value's size in both directions; the chunked `write_data` (PREPARE / PLAIN_WRITE /
//! COMMIT) stores a value larger than the node's frame limit and larger than `blob_size`,
//! and the chunked read and `read_file` return it whole.

mod common;

use common::{NodeSpec, TestNode};
use elliptics::client::Key;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// Larger than the node's default frame limit (64 MiB).
const FILE_BYTES: usize = 80 << 20;
/// The client's peak RSS must stay under this (a buffering client needs more than the
/// value: 80 MiB).
const CLIENT_PEAK_RSS_BYTES_MAX: u64 = 40 << 20;

/// Deterministic bytes that do not compress or repeat: xorshift64 per 8 bytes.
fn pattern(offset: usize, out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut x = ((offset / 8 + i) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

fn write_pattern_file(path: &std::path::Path, len: usize) {
    let mut f = std::fs::File::create(path).expect("create");
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < len {
        let n = buf.len().min(len - at);
        pattern(at, &mut buf[..n]);
        f.write_all(&buf[..n]).expect("write");
        at += n;
    }
}

/// `VmHWM` (peak resident set) of a live process, 0 once it is gone.
fn peak_rss_bytes(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn big_frame_node() -> TestNode {
    TestNode::start_with(NodeSpec {
        backends: vec![(1, 1)],
        extra_options: vec!["\"frame_payload_bytes_max\": \"256M\"".into()],
        ..NodeSpec::default()
    })
}

fn ioclient(node: &TestNode, dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dnet_ioclient"));
    c.current_dir(dir)
        .args(["-r", &node.remote(), "-g", "1", "-w", "60"]);
    c
}

#[test]
fn ioclient_streams_a_value_larger_than_the_default_frame_limit_both_ways_in_little_memory() {
    let node = big_frame_node();
    let dir = tempfile::tempdir().expect("tempdir");
    write_pattern_file(&dir.path().join("bigvalue"), FILE_BYTES);

    let mut writer = ioclient(&node, dir.path())
        .args(["-W", "bigvalue"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn -W");
    let mut write_peak = 0;
    while writer.try_wait().expect("wait -W").is_none() {
        write_peak = write_peak.max(peak_rss_bytes(writer.id()));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let out = writer.wait_with_output().expect("-W output");
    assert!(
        out.status.success(),
        "-W failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        write_peak < CLIENT_PEAK_RSS_BYTES_MAX,
        "-W of {FILE_BYTES} bytes peaked at {write_peak} bytes of client RSS"
    );

    let mut reader = ioclient(&node, dir.path())
        .args(["-D", "bigvalue"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn -D");
    let mut stdout = reader.stdout.take().expect("stdout");
    let mut got = vec![0u8; 1 << 20];
    let mut want = vec![0u8; 1 << 20];
    // The first bytes out: a client that buffers the reply holds all of it by now. We
    // stop reading, so a streaming client waits on the pipe with little in memory.
    stdout.read_exact(&mut got[..4096]).expect("first bytes");
    let read_peak = peak_rss_bytes(reader.id());
    pattern(0, &mut want[..4096]);
    assert_eq!(got[..4096], want[..4096], "first bytes differ");
    let at = 4096 + assert_pattern_from(&mut stdout, 4096);
    let status = reader.wait().expect("-D exit");
    assert!(status.success(), "-D failed");
    assert_eq!(at, FILE_BYTES, "-D returned {at} of {FILE_BYTES} bytes");
    assert!(
        read_peak < CLIENT_PEAK_RSS_BYTES_MAX,
        "-D of {FILE_BYTES} bytes held {read_peak} bytes of client RSS"
    );

    // -R writes the key's value into the file of the same name.
    std::fs::remove_file(dir.path().join("bigvalue")).expect("remove");
    let out = ioclient(&node, dir.path())
        .args(["-R", "bigvalue"])
        .output()
        .expect("-R");
    assert!(
        out.status.success(),
        "-R failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut file = std::fs::File::open(dir.path().join("bigvalue")).expect("open");
    assert_eq!(assert_pattern_from(&mut file, 0), FILE_BYTES);
}

/// Read `r` to its end, checking every byte against the pattern from `offset`; returns
/// the byte count.
fn assert_pattern_from(r: &mut impl Read, offset: usize) -> usize {
    let mut got = vec![0u8; 1 << 20];
    let mut want = vec![0u8; (1 << 20) + 8];
    let mut at = offset;
    loop {
        let n = r.read(&mut got).expect("read");
        if n == 0 {
            return at - offset;
        }
        let aligned = at - at % 8;
        pattern(aligned, &mut want[..n + 8]);
        let skew = at - aligned;
        assert!(
            got[..n] == want[skew..skew + n],
            "bytes differ near offset {at}"
        );
        at += n;
    }
}

#[test]
fn chunked_write_data_stores_a_value_larger_than_the_frame_limit_and_blob_size() {
    // Frames of at most 1 MiB, data files of 2 MiB: a plain 3 MiB WRITE (below the size
    // from which the node streams a WRITE instead of buffering it) is refused, the chunked
    // one is stored whole.
    let node = TestNode::start_with(NodeSpec {
        backends: vec![(1, 1), (2, 2)],
        extra_options: vec!["\"frame_payload_bytes_max\": \"1M\"".into()],
        blob_size: "2M".into(),
        ..NodeSpec::default()
    });
    let s = common::session(&node, &[1, 2]);
    let mut value = vec![0u8; (3 << 20) + 12_345];
    pattern(0, &mut value);
    let key = Key::from("chunked");
    let plain = common::session(&node, &[1])
        .write_data(&key, &value, 0)
        .wait();
    assert_eq!(plain.map(|_| ()).map_err(|e| e.status), Err(-7));

    let written = s
        .write_data_chunked(&key, &value, 0, 512 << 10)
        .expect("chunked write");
    let groups: Vec<u32> = written
        .iter()
        .filter(|e| e.status == 0)
        .map(|e| e.group)
        .collect();
    assert_eq!(groups, vec![1, 2]);

    let mut back = Vec::new();
    let n = s
        .read_data_chunked(&key, 0, 0, 700 << 10, &mut back)
        .expect("chunked read");
    assert_eq!(n, value.len() as u64);
    assert!(back == value, "chunked read differs");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out");
    let entries = s.read_file(&key, &path, 0, 0).wait().expect("read_file");
    let io = entries
        .iter()
        .find_map(|e| e.payload.as_ref())
        .expect("entry")
        .io;
    assert_eq!(io.size, value.len() as u64);
    assert!(
        std::fs::read(&path).expect("file") == value,
        "read_file differs"
    );

    // A range of the middle, in chunks that do not divide it.
    let mut middle = Vec::new();
    s.read_data_chunked(&key, 1_000_000, 2_000_001, 256 << 10, &mut middle)
        .expect("range read");
    assert!(middle == value[1_000_000..3_000_001], "range read differs");
}

#[test]
fn chunked_write_at_an_offset_lands_each_chunk_in_its_place() {
    let node = TestNode::start(&[1]);
    let s = common::session(&node, &[1]);
    let key = Key::from("offset-chunks");
    let data: Vec<u8> = (0..100u8).collect();
    s.write_data_chunked(&key, &data, 10, 30).expect("chunked");
    let entries = s.read_data(&key, 0, 0).wait().expect("read");
    let got = &entries
        .iter()
        .find_map(|e| e.payload.as_ref())
        .expect("data")
        .data;
    assert_eq!(got.len(), 110);
    assert_eq!(&got[10..], &data[..]);
    let mut tail = Vec::new();
    s.read_data_chunked(&key, 10, 0, 7, &mut tail)
        .expect("chunked read");
    assert_eq!(tail, data);
}

#[test]
fn a_reply_larger_than_the_client_buffers_fails_its_request_and_the_connection_stays() {
    let node = TestNode::start(&[1]);
    let client = elliptics::client::Node::new(elliptics::client::ClientConfig {
        reply_buffered_bytes_max: 64 << 10,
        ..Default::default()
    });
    client.add_remotes(&[&node.remote()]).expect("connect");
    let mut s = elliptics::client::Session::new(&client);
    s.set_groups(&[1]);
    let big = vec![7u8; 1 << 20];
    s.write_data(&Key::from("big"), &big, 0)
        .wait()
        .expect("write");
    let err = s
        .read_data(&Key::from("big"), 0, 0)
        .wait()
        .expect_err("too big");
    assert_eq!(err.status, -7, "{err}");
    // The same connection still serves, and the value streams into a writer.
    let mut out = Vec::new();
    s.read_data_chunked(&Key::from("big"), 0, 0, 32 << 10, &mut out)
        .expect("chunked read");
    assert!(out == big);
}
