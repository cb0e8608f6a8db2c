//! A real shard for unit tests: a node config with blob backends in a temporary directory,
//! the node-wide state built from it as `start` builds it, and one shard (shard count 1)
//! with its logs open, run on this thread's io_uring runtime. Replies are read back from
//! an [`Outbox`] exactly as the connection's writer would send them.

use super::outbox::Outbox;
use super::reply::Frames;
use super::shard::Shard;
use crate::config::NodeConfig;
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, split_frame, CmdHeader, IoAttr};
use std::future::Future;
use std::rc::Rc;

/// Run `test` on a fresh shard serving one backend per `(backend_id, group)`.
pub fn with_shard<F, Fut>(backends: &[(u32, u32)], test: F)
where
    F: FnOnce(Rc<Shard>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), backends);
    let shared = super::startup::shared_state(config).expect("node state");
    crate::runtime::block_on(64, async move {
        let opened = super::run::open_backends(&shared, 0).await;
        let shard = Rc::new(Shard::new(
            0,
            shared,
            opened.expect("backends"),
            Vec::new(),
            None,
        ));
        test(shard).await;
    })
    .expect("runtime");
}

fn config(dir: &std::path::Path, backends: &[(u32, u32)]) -> NodeConfig {
    let json_str = |p: std::path::PathBuf| serde_json::Value::from(p.display().to_string());
    let backends: Vec<serde_json::Value> = backends
        .iter()
        .map(|(id, group)| {
            let history = dir.join(format!("history-{id}"));
            let data = dir.join(format!("eblob-{id}"));
            std::fs::create_dir_all(&history).expect("history dir");
            std::fs::create_dir_all(&data).expect("data dir");
            serde_json::json!({
                "backend_id": id, "type": "blob", "group": group,
                "history": json_str(history), "data": json_str(data.join("data")),
                "sync": 30, "blob_size": "10M",
            })
        })
        .collect();
    let text = serde_json::json!({
        "logger": {"level": "error", "frontends": [
            {"sink": {"type": "files", "path": json_str(dir.join("ioserv.log"))}}]},
        "options": {"address": ["127.0.0.1:1025:2-0"], "shard_count": 1, "join": false,
            "auth_cookie": "unit"},
        "backends": backends,
    })
    .to_string();
    NodeConfig::from_json_str(&text).expect("config").config
}

/// A request for `key` in `group`.
pub fn request(cmd: i32, key: &str, group: u32, trans: u64) -> CmdHeader {
    CmdHeader {
        id: RawId::from_key(key.as_bytes()),
        group_id: group,
        cmd,
        flags: cmd_flags::NEED_ACK,
        trans,
        ..CmdHeader::default()
    }
}

/// The body of a WRITE of `value` (or of a whole-key READ with an empty `value`).
pub fn io_body(key: &str, value: &[u8]) -> Vec<u8> {
    let id = RawId::from_key(key.as_bytes());
    let io = IoAttr {
        parent: id,
        id,
        size: value.len() as u64,
        ..IoAttr::default()
    };
    let mut body = io.encode().to_vec();
    body.extend_from_slice(value);
    body
}

/// The frames of `frames`, split as a client reads them.
pub fn split(frames: &Frames) -> Vec<(CmdHeader, Vec<u8>)> {
    let bytes: Vec<u8> = frames
        .parts
        .iter()
        .flat_map(|b| b.iter().copied())
        .collect();
    let mut rest = bytes.as_slice();
    let mut out = Vec::new();
    while let Ok((frame, used)) = split_frame(rest, u64::MAX) {
        out.push((frame.header, frame.payload.to_vec()));
        rest = rest.get(used..).unwrap_or_default();
    }
    out
}

/// The status of the last frame (the final ack).
pub fn final_status(frames: &[(CmdHeader, Vec<u8>)]) -> Option<i32> {
    frames.last().map(|(h, _)| h.status)
}

/// A whole-key READ's value out of its reply frames.
pub fn read_value(frames: &[(CmdHeader, Vec<u8>)]) -> Option<Vec<u8>> {
    frames.iter().find_map(|(h, p)| {
        (h.cmd == command::READ && h.status == 0)
            .then(|| IoAttr::decode_with_data(p).ok().map(|(_, d)| d.to_vec()))
            .flatten()
    })
}

/// Serve a READ or WRITE the way a connection's fast path does; the outbox's frames, or
/// `None` when it had to take the task path.
pub fn serve_in_place(
    shard: &Shard,
    header: &CmdHeader,
    body: &[u8],
) -> Option<Vec<(CmdHeader, Vec<u8>)>> {
    let out = Outbox::default();
    super::dispatch::serve_now(shard, &out, header, body).then(|| out.take_frames())
}
