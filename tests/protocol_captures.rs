//! Every frame of every capture of the original 2.26.11.1 server and clients: split it with
//! `split_frame`, decode header and body by command, check each annotated field against what
//! the codec decoded, and re-encode the frame byte-identically.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use elliptics::key::hex_string;
use elliptics::protocol::{
    command, decode_body, split_frame, Body, CmdHeader, DnetAddr, HandshakeVersion, IoAttr,
    HEADER_SIZE_BYTES,
};

const PAYLOAD_BYTES_MAX: u64 = 1 << 20;

fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wire-captures")
}

/// One message of a capture: its bytes and the annotated facts.
struct Message {
    title: String,
    bytes: Vec<u8>,
    total_bytes: usize,
    annotations: Vec<(String, String)>,
}

fn parse_capture(text: &str) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("message #") {
            let total = rest
                .split("total ")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .expect("message line names its total size");
            out.push(Message {
                title: line.to_string(),
                bytes: Vec::new(),
                total_bytes: total,
                annotations: Vec::new(),
            });
            continue;
        }
        let Some(msg) = out.last_mut() else { continue };
        if let Some(hex) = hexdump_bytes(line) {
            msg.bytes.extend(hex);
        } else {
            msg.annotations.extend(annotations(line));
        }
    }
    out
}

/// "    0010  00 01 ...  ascii": the bytes of one hexdump line.
fn hexdump_bytes(line: &str) -> Option<Vec<u8>> {
    let rest = line.strip_prefix("    ")?;
    let (offset, tail) = rest.split_once("  ")?;
    if offset.len() != 4 || !offset.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = tail.split("  ").next()?;
    hex.split(' ')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

fn annotations(line: &str) -> Vec<(String, String)> {
    let trimmed = line.trim();
    let mut out = Vec::new();
    // Header lines: "[0x50..0x53] cmd          (i32)    = 2 (REVERSE_LOOKUP)".
    if let Some((left, value)) = trimmed.split_once(" = ") {
        if let Some(field) = left.strip_prefix('[').and_then(|l| l.split_once("] ")) {
            let name = field.1.split_whitespace().next().unwrap_or("");
            let key = if left.contains('(') {
                format!("hdr.{name}")
            } else {
                format!("io.{name}")
            };
            out.push((key, value.split_whitespace().next().unwrap_or("").into()));
            return out;
        }
        if let Some(len) = left.strip_suffix(" bytes)") {
            // "file name (27 bytes) = b'...'" / "data after io_attr (26 bytes) = b'...'".
            let (what, n) = len.rsplit_once(" (").unwrap();
            out.push((format!("{what}.len"), n.into()));
            out.push((what.into(), value.into()));
            return out;
        }
        if left.starts_with("id[") {
            out.push((left.into(), value.into()));
        }
    }
    for word in trimmed.split_whitespace() {
        if let Some((k, v)) = word.split_once('=') {
            let k = k.trim_start_matches('(');
            let v = v.trim_end_matches([')', ',']);
            if !k.is_empty() && k != "t" && !k.starts_with('[') {
                out.push((k.into(), v.into()));
            }
        }
    }
    out
}

/// Decimal for anything numeric (0x.. or decimal), the text otherwise.
fn normalize(v: &str) -> String {
    if let Some(hex) = v.strip_prefix("0x") {
        if let Ok(n) = u64::from_str_radix(hex, 16) {
            return n.to_string();
        }
    }
    v.parse::<i64>()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| v.to_string())
}

/// Python's repr of bytes, as the annotations print data and paths.
fn py_repr(bytes: &[u8]) -> String {
    let mut s = String::from("b'");
    for &b in bytes {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            b'\\' => s.push_str("\\\\"),
            b'\'' => s.push_str("\\'"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('\'');
    s
}

type Facts = BTreeMap<String, Vec<String>>;

fn add(f: &mut Facts, k: &str, v: impl ToString) {
    f.entry(k.to_string())
        .or_default()
        .push(normalize(&v.to_string()));
}

fn addr_facts(f: &mut Facts, a: &DnetAddr) {
    let sa = a.to_socket_addr().expect("captured addresses are IPv4");
    add(
        f,
        "family",
        u16::from_le_bytes([a.sockaddr[0], a.sockaddr[1]]),
    );
    add(f, "family", a.family);
    add(f, "port", sa.port());
    add(f, "ip", sa.ip());
    add(f, "addr_len", a.addr_len);
}

fn io_facts(f: &mut Facts, io: &IoAttr) {
    add(f, "io.parent", hex_string(&io.parent.0));
    add(f, "io.id", hex_string(&io.id.0));
    add(f, "start", io.start);
    add(f, "num", io.num);
    add(f, "timestamp.tsec", io.timestamp.tsec);
    add(f, "timestamp.tnsec", io.timestamp.tnsec);
    add(f, "user_flags", io.user_flags);
    add(f, "total_size", io.total_size);
    add(f, "record_flags", io.record_flags);
    add(f, "reserved2", io.reserved2);
    add(f, "flags(io)", io.flags);
    add(f, "offset", io.offset);
    add(f, "size", io.size);
}

fn header_facts(f: &mut Facts, h: &CmdHeader) {
    add(f, "hdr.id.id", hex_string(&h.id.0));
    add(f, "hdr.id.group_id", h.group_id);
    add(f, "hdr.id.reserved", h.reserved);
    add(f, "hdr.status", h.status);
    add(f, "hdr.cmd", h.cmd);
    add(f, "hdr.backend_id", h.backend_id);
    add(f, "hdr.trace_id", h.trace_id);
    add(f, "hdr.flags", h.flags);
    add(f, "hdr.trans", h.trans);
    add(f, "hdr.size", h.size);
    if h.cmd == command::REVERSE_LOOKUP {
        let v = HandshakeVersion::from_id(&h.id);
        add(f, "indexes_shard_count", v.indexes_shard_count);
    }
}

fn body_facts(f: &mut Facts, body: &Body<'_>) {
    match body {
        Body::Announcement(a) => {
            add(f, "node_addr_num", a.addrs.node_addr_num);
            add(f, "addr_num", a.addrs.addrs.len());
            a.addrs.addrs.iter().for_each(|x| addr_facts(f, x));
            add(f, "backends_count", a.ids.backends.len());
            for b in &a.ids.backends {
                add(f, "backend_id", b.backend_id);
                add(f, "group_id", b.group_id);
                add(f, "flags", b.flags);
                add(f, "ids_count", b.ids.len());
                for (i, id) in b.ids.iter().enumerate() {
                    add(f, &format!("id[{i}]"), hex_string(&id.0));
                }
            }
        }
        Body::AddrList(c) => {
            add(f, "node_addr_num", c.node_addr_num);
            add(f, "addr_num", c.addrs.len());
            c.addrs.iter().for_each(|x| addr_facts(f, x));
        }
        Body::Lookup(l) => {
            addr_facts(f, &l.addr);
            add(f, "flen", l.path_with_nul.len());
            add(f, "checksum", hex_string(&l.info.checksum));
            add(f, "record_flags", l.info.record_flags);
            add(f, "size", l.info.size);
            add(f, "offset", l.info.offset);
            let m = l.info.mtime;
            add(f, "mtime", format!("{}.{:09}", m.tsec, m.tnsec));
            add(f, "file name.len", l.path_with_nul.len());
            f.entry("file name".into())
                .or_default()
                .push(py_repr(&l.path_with_nul));
        }
        Body::Io { io, data } => {
            io_facts(f, io);
            add(f, "data after io_attr.len", data.len());
            f.entry("data after io_attr".into())
                .or_default()
                .push(py_repr(data));
        }
        Body::IoAttr(io) => io_facts(f, io),
        Body::Empty => {}
        other => panic!("captures hold no {other:?}"),
    }
}

fn check_message(file: &str, m: &Message) -> usize {
    let ctx = format!("{file}: {}", m.title);
    assert_eq!(m.bytes.len(), m.total_bytes, "{ctx}: hexdump length");
    let (frame, used) = split_frame(&m.bytes, PAYLOAD_BYTES_MAX).expect(&ctx);
    assert_eq!(used, m.bytes.len(), "{ctx}: frame fills the message");
    let body = decode_body(&frame.header, frame.payload)
        .unwrap_or_else(|e| panic!("{ctx}: body does not decode: {e}"));

    let mut re = frame.header.encode().to_vec();
    body.encode_into(&mut re);
    assert_eq!(re, m.bytes, "{ctx}: re-encoding is not byte-identical");

    let mut facts = Facts::new();
    header_facts(&mut facts, &frame.header);
    body_facts(&mut facts, &body);
    assert!(!m.annotations.is_empty(), "{ctx}: no annotations parsed");
    for (k, v) in &m.annotations {
        let want = if v.starts_with("b'") {
            v.clone()
        } else {
            normalize(v)
        };
        let ours = facts
            .get(k)
            .unwrap_or_else(|| panic!("{ctx}: annotated field {k} not decoded"));
        assert!(
            ours.contains(&want),
            "{ctx}: {k} = {want}, decoded {ours:?}"
        );
    }
    m.annotations.len()
}

#[test]
fn every_captured_frame_decodes_to_its_annotations_and_reencodes_identically() {
    // The five captures of the first recording, whose annotations this checker reads; the later
    // ones (indexes, cache, write variants, backend status, find) are replayed by the tests of
    // the features they show.
    let dir = captures_dir();
    let files: Vec<PathBuf> = [
        "ioclient-read-missing.txt",
        "ioclient-read.txt",
        "ioclient-write-rawid.txt",
        "ioclient-write.txt",
        "python-write-read.txt",
    ]
    .iter()
    .map(|name| dir.join(name))
    .collect();
    let mut frames = 0;
    let mut fields = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let messages = parse_capture(&text);
        assert!(!messages.is_empty(), "{}: no messages", path.display());
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for m in &messages {
            fields += check_message(&name, m);
            frames += 1;
        }
        // The whole stream of one direction splits back into the same frames.
        let stream: Vec<u8> = messages.iter().flat_map(|m| m.bytes.clone()).collect();
        let mut rest = &stream[..];
        let mut n = 0;
        while !rest.is_empty() {
            let (_, used) = split_frame(rest, PAYLOAD_BYTES_MAX).unwrap();
            rest = &rest[used..];
            n += 1;
        }
        assert_eq!(n, messages.len(), "{name}: stream splits into its messages");
    }
    assert_eq!(frames, 34, "frames across all captures");
    eprintln!("checked {fields} annotated fields");
    assert!(fields >= 400, "only {fields} annotated fields were checked");
}

#[test]
fn captured_missing_key_lookup_is_a_bare_enoent_ack() {
    let text = std::fs::read_to_string(captures_dir().join("ioclient-read-missing.txt"))
        .expect("ioclient-read-missing.txt is present");
    let messages = parse_capture(&text);
    let ack = messages
        .iter()
        .map(|m| CmdHeader::decode(&m.bytes).unwrap())
        .find(|h| h.cmd == command::LOOKUP && h.is_reply())
        .expect("a LOOKUP reply");
    assert_eq!(ack.status, -2);
    assert_eq!(ack.size, 0);
    assert_eq!(ack.flags, 0x200);
    assert_eq!(messages.iter().map(|m| m.bytes.len()).max(), Some(244));
    assert!(messages.iter().all(|m| m.bytes.len() >= HEADER_SIZE_BYTES));
}
