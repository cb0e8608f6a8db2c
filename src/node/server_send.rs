//! SEND (server-send) on the node: copy the given keys of this node to the owners in other
//! groups, local or peers. A destination holding a newer timestamp is left alone with
//! -EBADFD unless OVERWRITE is set; MOVE removes the source once every copy succeeded. One
//! `dnet_iterator_response` per key (in the order the copies finish: many keys of a request
//! are in flight at once), then the final ack.
//!
//! The keys are cut by the shard that owns them: each shard reads its keys and writes them
//! over its own links to the peers (or to local backends), `PART_KEYS` per cross-shard call
//! and `KEYS_IN_FLIGHT` at once, so both the reads and the writes spread over the cores and
//! no key crosses a mailbox on its own. Each part's responses leave in one batch. With
//! OVERWRITE (recovery's copies) a part goes a window at a time, each window's WRITEs to a
//! peer as one batch on the link (`window`).

use super::forward::{self, Target};
use super::iterator::{backend_ids, spawn_streaming, Batch};
use super::outbox::Outbox;
use super::reply::{Frames, Replies};
use super::shard::Shard;
use super::{cross, io_ops};
use crate::blob::RecordInfo;
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, command, errno, iflags, split_frame, CmdHeader, IoAttr, IteratorResponse,
    ServerSendRequest,
};
use crate::routing::shard_of;
use bytes::Bytes;
use futures::StreamExt;
use std::rc::Rc;
use std::sync::Arc;

mod window;

/// Keys of one part copied at the same time on their shard.
const KEYS_IN_FLIGHT: usize = 256;
/// Keys of one cross-shard call: each part's responses are queued together.
const PART_KEYS: usize = 1024;

/// Parse the frames a local handler produced back into (header, payload) pairs.
fn split_frames(frames: Frames) -> Vec<(CmdHeader, Bytes)> {
    let mut all = Vec::new();
    for p in &frames.parts {
        all.extend_from_slice(p);
    }
    let mut out = Vec::new();
    let mut rest: &[u8] = &all;
    while let Ok((frame, used)) = split_frame(rest, u64::MAX >> 1) {
        out.push((frame.header, Bytes::copy_from_slice(frame.payload)));
        rest = rest.get(used..).unwrap_or(&[]);
    }
    out
}

/// Run one keyed command on the owner of its key in its group, here or on a peer; the
/// payload is `parts` one after the other (sent to a peer without copying them together).
async fn on_owner(
    shard: &Rc<Shard>,
    header: CmdHeader,
    parts: &[Bytes],
    timeout_ms: u64,
) -> Result<Vec<(CmdHeader, Bytes)>, i32> {
    match forward::target(shard, &header) {
        Target::Local => {
            let target = shard_of(&header.id, shard.node.shard_count);
            let payload = Bytes::from(parts.concat());
            let frames = cross::call(shard, target, move |s| async move {
                io_ops::single_key(&s, header, payload).await
            })
            .await
            .map_err(cross::CrossError::errno)?;
            Ok(split_frames(frames))
        }
        Target::Peer(peer) => forward::request_parts(shard, peer, header, parts, timeout_ms).await,
        Target::Refuse(status) => Err(status),
    }
}

fn final_status(replies: &Result<Vec<(CmdHeader, Bytes)>, i32>) -> i32 {
    match replies {
        Err(s) => *s,
        Ok(frames) => frames
            .iter()
            .map(|(h, _)| h.status)
            .find(|s| *s != 0)
            .unwrap_or(0),
    }
}

/// Copy one key to `group`; the per-key status.
async fn send_one(
    shard: &Rc<Shard>,
    key: RawId,
    group: u32,
    value: &(RecordInfo, Bytes),
    overwrite: bool,
    timeout_ms: u64,
) -> i32 {
    let (info, data) = value;
    let base = CmdHeader {
        id: key,
        group_id: group,
        flags: cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    };
    if !overwrite {
        let lookup = CmdHeader {
            cmd: command::LOOKUP,
            ..base
        };
        if let Ok(replies) = on_owner(shard, lookup, &[], timeout_ms).await {
            let newer = replies.iter().any(|(h, p)| {
                h.status == 0
                    && crate::protocol::LookupReply::decode(p)
                        .is_ok_and(|r| r.info.mtime > info.timestamp)
            });
            if newer {
                return errno::EBADFD;
            }
        }
    }
    let io = IoAttr {
        parent: key,
        id: key,
        size: data.len() as u64,
        timestamp: info.timestamp,
        user_flags: info.user_flags,
        ..IoAttr::default()
    };
    let write = CmdHeader {
        cmd: command::WRITE,
        ..base
    };
    let parts = [Bytes::copy_from_slice(&io.encode()), data.clone()];
    final_status(&on_owner(shard, write, &parts, timeout_ms).await)
}

/// What SEND does with each key of one request.
#[derive(Debug, Clone)]
struct Job {
    backends: Vec<u32>,
    groups: Vec<u32>,
    overwrite: bool,
    move_source: bool,
    timeout_ms: u64,
    total_keys: u64,
}

/// Serve SEND, which streams its per-key replies into the connection; `false` for other
/// commands.
pub fn intercept(shard: &Rc<Shard>, out: &Rc<Outbox>, header: &CmdHeader, payload: &Bytes) -> bool {
    if header.cmd != command::SEND {
        return false;
    }
    let (s, h, p) = (shard.clone(), *header, payload.clone());
    spawn_streaming(
        out,
        move |o| async move { server_send(&s, &o, h, &p).await },
    );
    true
}

pub(super) async fn server_send(
    shard: &Rc<Shard>,
    out: &Outbox,
    header: CmdHeader,
    payload: &[u8],
) {
    let mut frames = Frames::new();
    let Ok(req) = ServerSendRequest::decode(payload) else {
        frames.error(&header, errno::EINVAL);
        out.push(frames);
        return;
    };
    let timeout_ms = u64::try_from(req.timeout).ok().filter(|t| *t > 0).map_or(
        shard.node.config.options.wait_timeout_s.max(1) * 1000,
        |t| t * 1000,
    );
    let job = Arc::new(Job {
        backends: backend_ids(shard, &header),
        groups: req
            .groups
            .iter()
            .filter_map(|g| u32::try_from(*g).ok())
            .collect(),
        overwrite: req.iflags & iflags::OVERWRITE != 0,
        move_source: req.iflags & iflags::MOVE != 0,
        timeout_ms,
        total_keys: req.ids.len() as u64,
    });
    // Each shard copies the keys it owns, over its own links to the peers, a part at a
    // time; the parts of all shards run at once and their responses go out as they end.
    let mut per_shard: Vec<Vec<(u64, RawId)>> = vec![Vec::new(); shard.node.shard_count.max(1)];
    for (n, key) in req.ids.iter().enumerate() {
        per_shard[shard_of(key, shard.node.shard_count)].push((n as u64, *key));
    }
    let parts = per_shard
        .into_iter()
        .enumerate()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(target, keys)| send_on_shard(shard, out, &header, &job, target, keys));
    futures::future::join_all(parts).await;
    frames.error(&header, 0);
    out.push(frames);
}

/// Copy `keys` (all owned by shard `target`) there, `PART_KEYS` per cross-shard call, and
/// queue each part's responses on `out` as one batch.
async fn send_on_shard(
    shard: &Rc<Shard>,
    out: &Outbox,
    header: &CmdHeader,
    job: &Arc<Job>,
    target: usize,
    keys: Vec<(u64, RawId)>,
) {
    for part in keys.chunks(PART_KEYS) {
        let (j, part_keys) = (job.clone(), part.to_vec());
        let responses = cross::call(shard, target, move |s| async move {
            copy_part(&s, &j, part_keys).await
        })
        .await;
        let mut batch = Batch::default();
        match responses {
            Ok(list) => {
                for resp in &list {
                    batch.add(header, resp, &[]);
                    if batch.is_full() {
                        batch.flush(out);
                    }
                }
            }
            Err(e) => {
                for (n, key) in part {
                    let resp = response(job, *n, *key);
                    batch.add(
                        header,
                        &IteratorResponse {
                            status: e.errno(),
                            ..resp
                        },
                        &[],
                    );
                }
            }
        }
        batch.flush(out);
    }
}

/// Copy one part of keys on the shard that owns them: a window at a time with OVERWRITE,
/// else key by key (each first looks its destination up), `KEYS_IN_FLIGHT` at once.
async fn copy_part(shard: &Rc<Shard>, job: &Job, keys: Vec<(u64, RawId)>) -> Vec<IteratorResponse> {
    if job.overwrite {
        return window::send_part(shard, job, keys).await;
    }
    futures::stream::iter(keys)
        .map(|(n, key)| send_key(shard, job, n, key))
        .buffer_unordered(KEYS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
}

fn response(job: &Job, n: u64, key: RawId) -> IteratorResponse {
    IteratorResponse {
        key,
        iterated_keys: n + 1,
        total_keys: job.total_keys,
        ..IteratorResponse::default()
    }
}

/// On the shard that owns `key`: copy it to every group of the job (and remove it here
/// with MOVE); its response.
async fn send_key(shard: &Rc<Shard>, job: &Job, n: u64, key: RawId) -> IteratorResponse {
    let mut resp = response(job, n, key);
    let mut found = None;
    for lb in shard
        .backends
        .iter()
        .filter(|lb| job.backends.contains(&lb.backend_id))
    {
        let Some(log) = lb.log() else { continue };
        if let Ok(o) = log.read(&key, 0, 0, true).await {
            found = Some((o.info, o.data, lb.backend_id));
            break;
        }
    }
    let Some((info, data, backend_id)) = found else {
        resp.status = errno::ENOENT;
        return resp;
    };
    resp.timestamp = info.timestamp;
    resp.user_flags = info.user_flags;
    resp.size = info.size;
    resp.record_flags = info.record_flags;
    let value = (info, Bytes::from(data));
    if let [group] = job.groups[..] {
        resp.status = send_one(shard, key, group, &value, job.overwrite, job.timeout_ms).await;
    } else {
        let sends = job
            .groups
            .iter()
            .map(|g| send_one(shard, key, *g, &value, job.overwrite, job.timeout_ms));
        for status in futures::future::join_all(sends).await {
            if status != 0 && resp.status == 0 {
                resp.status = status;
            }
        }
    }
    if resp.status == 0 && job.move_source {
        let log = shard
            .backends
            .iter()
            .find(|b| b.backend_id == backend_id)
            .and_then(|b| b.log());
        match log {
            Some(log) if log.remove(&key).await.is_ok() => {}
            _ => resp.status = errno::EIO,
        }
    }
    resp
}
