//! Stable replay of the fuzz corpus plus seeded random and mutated frames through every
//! decoder: nothing panics, failures are typed `DecodeError`s, and whatever decodes
//! re-encodes to bytes that decode to the same value.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]

use std::path::{Path, PathBuf};

use elliptics::key::RawId;
use elliptics::protocol::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PAYLOAD_BYTES_MAX: u64 = 1 << 20;
const RANDOM_INPUTS: usize = 100_000;
const SEED: u64 = 0x2026_1101;

/// Counts what happened, so the test can prove it exercised both paths.
#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    err: usize,
}

fn note<T>(t: &mut Tally, r: &Result<T, DecodeError>) {
    match r {
        Ok(_) => t.ok += 1,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            t.err += 1;
        }
    }
}

macro_rules! stable {
    ($t:expr, $decode:expr, $encode:expr, $bytes:expr) => {{
        let r = $decode($bytes);
        note($t, &r);
        if let Ok(v) = r {
            let enc = $encode(&v);
            assert_eq!($decode(&enc[..]).expect("re-encoded value decodes"), v);
        }
    }};
}

fn with_data<T: Copy>(v: &(T, &[u8]), enc: impl Fn(&T) -> Vec<u8>) -> Vec<u8> {
    let mut out = enc(&v.0);
    out.extend_from_slice(v.1);
    out
}

/// Every body decoder, then the bytes as a stream of frames.
fn all_decoders(t: &mut Tally, b: &[u8]) {
    stable!(t, CmdHeader::decode, |v: &CmdHeader| v.encode(), b);
    stable!(t, IoAttr::decode, |v: &IoAttr| v.encode(), b);
    stable!(t, DnetAddr::decode, |v: &DnetAddr| v.encode(), b);
    stable!(t, AddrContainer::decode, |v: &AddrContainer| v.encode(), b);
    stable!(t, IdContainer::decode, |v: &IdContainer| v.encode(), b);
    stable!(
        t,
        NodeAnnouncement::decode,
        |v: &NodeAnnouncement| v.encode(),
        b
    );
    stable!(t, LookupReply::decode, |v: &LookupReply| v.encode(), b);
    stable!(t, Sph::decode, |v: &Sph| v.encode(), b);
    stable!(t, ExecPayload::decode, |v: &ExecPayload| v.encode(), b);
    stable!(t, Auth::decode, |v: &Auth| v.encode(), b);
    stable!(t, NodeStatus::decode, |v: &NodeStatus| v.encode(), b);
    stable!(
        t,
        MonitorStatRequest::decode,
        |v: &MonitorStatRequest| v.encode(),
        b
    );
    stable!(
        t,
        BackendControl::decode,
        |v: &BackendControl| v.encode(),
        b
    );
    stable!(
        t,
        BackendStatusList::decode,
        |v: &BackendStatusList| v.encode(),
        b
    );
    stable!(
        t,
        IteratorRequest::decode,
        |v: &IteratorRequest| v.encode(),
        b
    );
    stable!(
        t,
        ServerSendRequest::decode,
        |v: &ServerSendRequest| v.encode(),
        b
    );
    stable!(
        t,
        IteratorResponse::decode_with_data,
        |v: &(IteratorResponse, &[u8])| with_data(v, |r| r.encode().to_vec()),
        b
    );
    stable!(
        t,
        IoAttr::decode_with_data,
        |v: &(IoAttr, &[u8])| with_data(v, |r| r.encode().to_vec()),
        b
    );
    frames(t, b);
}

fn frames(t: &mut Tally, bytes: &[u8]) {
    let mut rest = bytes;
    loop {
        let split = split_frame(rest, PAYLOAD_BYTES_MAX);
        note(t, &split);
        let Ok((frame, used)) = split else { break };
        assert!(used >= HEADER_SIZE_BYTES && used <= rest.len());
        let body = decode_body(&frame.header, frame.payload);
        note(t, &body);
        if let Ok(body) = body {
            let enc = body.encode();
            assert_eq!(decode_body(&frame.header, &enc).unwrap(), body);
        }
        rest = &rest[used..];
    }
}

fn corpus_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            corpus_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut files = Vec::new();
    corpus_files(&root, &mut files);
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn fuzz_corpus_replays_without_panics() {
    let inputs = corpus();
    assert!(inputs.len() >= 20, "corpus has {} files", inputs.len());
    let mut t = Tally::default();
    for input in &inputs {
        all_decoders(&mut t, input);
        // The bodies target reads its first byte as the decoder selector.
        if let Some((_, rest)) = input.split_first() {
            all_decoders(&mut t, rest);
        }
    }
    assert!(t.ok > 0 && t.err > 0, "{t:?}");
}

#[test]
fn seeded_random_bytes_are_rejected_with_typed_errors() {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut t = Tally::default();
    let mut buf = Vec::new();
    for _ in 0..RANDOM_INPUTS {
        let len = rng.gen_range(0..600);
        buf.clear();
        buf.extend((0..len).map(|_| rng.gen::<u8>()));
        all_decoders(&mut t, &buf);
    }
    assert!(t.err > RANDOM_INPUTS, "seed {SEED}: {t:?}");
}

fn valid_frames() -> Vec<Vec<u8>> {
    let addr = DnetAddr::from("127.0.0.1:1025".parse::<std::net::SocketAddr>().unwrap());
    let bodies: Vec<(i32, bool, Vec<u8>)> = vec![
        (
            command::REVERSE_LOOKUP,
            true,
            NodeAnnouncement {
                addrs: AddrContainer {
                    node_addr_num: 1,
                    addrs: vec![addr],
                },
                ids: IdContainer {
                    backends: vec![BackendIds {
                        backend_id: 1,
                        group_id: 1,
                        flags: 0,
                        ids: vec![RawId::from_key(b"ring")],
                    }],
                },
            }
            .encode(),
        ),
        (
            command::WRITE,
            true,
            LookupReply::new(addr, FileInfo::default(), "/data/data-0.0").encode(),
        ),
        (command::WRITE, false, {
            let mut p = IoAttr {
                size: 5,
                ..IoAttr::default()
            }
            .encode()
            .to_vec();
            p.extend_from_slice(b"hello");
            p
        }),
        (
            command::BACKEND_STATUS,
            true,
            BackendStatusList {
                backends: vec![BackendStatus::default()],
            }
            .encode(),
        ),
        (
            command::ITERATOR,
            false,
            IteratorRequest {
                ranges: vec![IteratorRange::default()],
                groups: vec![1],
                ..IteratorRequest::default()
            }
            .encode(),
        ),
        (
            command::EXEC,
            false,
            ExecPayload {
                sph: Sph::default(),
                event: b"app@event",
                data: b"data",
            }
            .encode(),
        ),
    ];
    bodies
        .into_iter()
        .map(|(cmd, reply, payload)| {
            let h = CmdHeader {
                cmd,
                flags: if reply { cmd_flags::REPLY } else { 0 },
                size: payload.len() as u64,
                ..CmdHeader::default()
            };
            let mut f = h.encode().to_vec();
            f.extend_from_slice(&payload);
            f
        })
        .collect()
}

#[test]
fn mutated_valid_frames_never_panic() {
    let mut rng = StdRng::seed_from_u64(SEED ^ 0xff);
    let originals = valid_frames();
    let mut t = Tally::default();
    for f in &originals {
        frames(&mut t, f);
        let (frame, _) = split_frame(f, PAYLOAD_BYTES_MAX).unwrap();
        decode_body(&frame.header, frame.payload).expect("valid fixture decodes");
    }
    for _ in 0..20_000 {
        let mut f = originals[rng.gen_range(0..originals.len())].clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..f.len());
            match rng.gen_range(0..3) {
                0 => f[i] ^= 1 << rng.gen_range(0..8),
                1 => f[i] = rng.gen(),
                _ => f.truncate(i),
            }
            if f.is_empty() {
                break;
            }
        }
        all_decoders(&mut t, &f);
    }
    assert!(t.ok > 0 && t.err > 0, "seed {}: {t:?}", SEED ^ 0xff);
}
