//! The properties the fuzz targets check, shared with the stable replay of their corpora
//! (`tests/fuzz_corpora_replay.rs`), so a finding added to `fuzz/corpus/<target>` is
//! checked the same way by `cargo test` without a fuzzer.
//!
//! | target           | input                                    | property                                                        |
//! |------------------|------------------------------------------|-----------------------------------------------------------------|
//! | `srw_frame`      | bytes from a worker's socket             | frames split and decode without panics; the fast path agrees with the general reader; a frame cut short asks for more bytes; re-encoding is stable |
//! | `srw_package`    | a stored app record                      | the record, tar and manifest decoders fail cleanly; an unpack never writes outside the app directory |
//! | `config_parse`   | a node config, srw config, profile or manifest as text | parsers return a value or a typed error with a message, never panic |
//! | `blob_recovery`  | mode byte, u16 index length, index bytes, data bytes | opening a log over those files recovers or fails with a typed error; a recovered log serves its records, takes a write, and reopens with the same keys |
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use elliptics::srw::frame;
use std::path::Path;

/// Bytes from a worker's socket, frame after frame.
pub fn srw_frame(data: &[u8]) {
    let mut rest = data;
    loop {
        let fast = frame::decode(rest);
        let general = frame::decode_general(rest);
        match (&fast, &general) {
            (Ok(Some((f, used))), Ok(Some((g, used_g)))) => {
                assert_eq!(used, used_g, "both readers use the same bytes");
                assert_eq!(encoded(f), encoded(g), "both readers give the same frame");
            }
            (Ok(None), Ok(None)) => {}
            (Err(e), Err(_)) => assert!(!e.to_string().is_empty()),
            _ => panic!("the fast path and the general reader disagree: {fast:?} / {general:?}"),
        }
        let Ok(Some((f, used))) = fast else { break };
        assert!(used > 0 && used <= rest.len());
        let short = frame::decode(&rest[..used - 1]);
        assert!(matches!(short, Ok(None)), "a frame cut short: {short:?}");
        let _ = (f.error_code(), f.bytes_arg(0), f.bytes_arg(1));
        let bytes = encoded(&f);
        let (again, n) = frame::decode(&bytes)
            .expect("a re-encoded frame decodes")
            .expect("a re-encoded frame is whole");
        assert_eq!(n, bytes.len());
        assert_eq!(encoded(&again), bytes, "re-encoding is stable");
        rest = &rest[used..];
    }
}

fn encoded(f: &frame::Frame) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_into(&mut out, f.channel, f.kind, &f.args);
    out
}

/// A stored `apps/<name>` record (or a bare tar) checked and unpacked into a scratch
/// directory: whatever is accepted lands inside the app directory only.
pub fn srw_package(data: &[u8], scratch: &Path) {
    use elliptics::srw::{spool, store};
    if let Err(e) = store::decode_document(data, "manifest") {
        assert!(!e.to_string().is_empty());
    }
    let package = match store::decode_package(data) {
        Ok(p) => p,
        Err(_) => data.to_vec(),
    };
    let _ = std::fs::remove_dir_all(scratch);
    let apps = scratch.join("spool");
    std::fs::create_dir_all(&apps).unwrap();
    let app_dir = apps.join("app");
    let checked = spool::check_package(&package, "app");
    let unpacked = spool::unpack(&package, &app_dir);
    if let Err(e) = &unpacked {
        assert!(!e.to_string().is_empty());
    }
    if checked.is_ok() {
        assert!(
            unpacked.is_ok(),
            "a package that passes the check unpacks: {unpacked:?}"
        );
    }
    let outside: Vec<_> = std::fs::read_dir(scratch)
        .unwrap()
        .chain(std::fs::read_dir(&apps).unwrap())
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n != "spool" && n != "app")
        .collect();
    assert!(outside.is_empty(), "written outside the app: {outside:?}");
}

/// Text as every configuration document the node reads.
pub fn config_parse(data: &[u8]) {
    use elliptics::config::{NodeConfig, SrwConfig};
    use elliptics::srw::store::{Manifest, Profile};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match NodeConfig::from_json_str(text) {
        Ok(loaded) => {
            let _ = format!("{:?}", loaded.config);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Err(e) = SrwConfig::from_json_str(text) {
        assert!(!e.to_string().is_empty());
    }
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) {
        if let Err(e) = Profile::from_json(&doc) {
            assert!(!e.to_string().is_empty());
        }
        if let Err(e) = Manifest::from_json(&doc) {
            assert!(!e.to_string().is_empty());
        }
    }
}

/// The files of a blob log made of fuzz bytes, opened (recovery scan), used, reopened.
///
/// Input: a mode byte (bit 0: periodic sync, bit 1: records without footers, bit 2: the
/// index is also the sorted index of a closed file followed by an empty open file), a
/// little-endian u16 index length, the index bytes, then the data file bytes.
pub fn blob_recovery(data: &[u8], scratch: &Path) {
    use bytes::Bytes;
    use elliptics::blob::{BlobLog, BlobOptions, BLOB_FLAG_NO_FOOTER};
    use elliptics::io::sync::StdFile;
    use elliptics::key::RawId;
    use elliptics::protocol::IoAttr;
    use futures::executor::block_on;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (index_len, rest) = match rest {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, rest),
    };
    let (index, blob) = rest.split_at(index_len.min(rest.len()));
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    let prefix = scratch.join("data");
    let name = |suffix: &str| scratch.join(format!("data-0.{suffix}"));
    std::fs::write(name("0"), blob).unwrap();
    std::fs::write(name("0.index"), index).unwrap();
    if mode & 4 != 0 {
        std::fs::write(name("0.index.sorted"), index).unwrap();
        std::fs::write(name("1"), b"").unwrap();
        std::fs::write(name("1.index"), b"").unwrap();
    }
    let mut opts = BlobOptions::new(&prefix);
    opts.sync_s = i64::from(mode & 1);
    if mode & 2 != 0 {
        opts.blob_flags |= BLOB_FLAG_NO_FOOTER;
    }
    let log = match block_on(BlobLog::<StdFile>::open(opts.clone())) {
        Ok(log) => log,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut keys: Vec<RawId> = log.iter_meta().map(|(id, _)| id).collect();
    for id in &keys {
        if let Err(e) = block_on(log.read(id, 0, 0, true)) {
            assert!(!e.to_string().is_empty());
        }
    }
    let fresh = RawId::from_key(b"written after recovery");
    let value = b"value after recovery";
    let io = IoAttr {
        id: fresh,
        size: value.len() as u64,
        ..IoAttr::default()
    };
    if block_on(log.write(&io, Bytes::from_static(value))).is_ok() {
        let back = block_on(log.read(&fresh, 0, 0, true)).expect("a fresh write reads back");
        assert_eq!(back.data, value);
        if !keys.contains(&fresh) {
            keys.push(fresh);
        }
    }
    drop(log);
    let again = block_on(BlobLog::<StdFile>::open(opts)).expect("a recovered log reopens");
    let mut reopened: Vec<RawId> = again.iter_meta().map(|(id, _)| id).collect();
    keys.sort();
    reopened.sort();
    assert_eq!(keys, reopened, "a recovered log reopens with the same keys");
}
