//! SEND (server-send) on the node: copy the given keys of this node to the owners in other
//! groups, local or peers. A destination holding a newer timestamp is left alone with
//! -EBADFD unless OVERWRITE is set; MOVE removes the source once every copy succeeded. One
//! `dnet_iterator_response` per key (in the order the copies finish: many keys of a request
//! are in flight at once), then the final ack.

use super::forward::{self, Target};
use super::iterator::{backend_ids, push_response};
use super::outbox::Outbox;
use super::reply::{Frames, Replies};
use super::shard::Shard;
use super::{cross, io_ops};
use crate::blob::RecordInfo;
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, command, errno, iflags, split_frame, CmdHeader, IoAttr, IteratorResponse,
    ServerSendRequest, IO_ATTR_SIZE_BYTES,
};
use crate::routing::shard_of;
use bytes::Bytes;
use futures::StreamExt;
use std::rc::Rc;

/// Keys of one SEND request copied at the same time.
const KEYS_IN_FLIGHT: usize = 64;

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

/// Run one keyed command on the owner of its key in its group, here or on a peer.
async fn on_owner(
    shard: &Rc<Shard>,
    header: CmdHeader,
    payload: Vec<u8>,
    timeout_ms: u64,
) -> Result<Vec<(CmdHeader, Bytes)>, i32> {
    match forward::target(shard, &header) {
        Target::Local => {
            let target = shard_of(&header.id, shard.node.shard_count);
            let frames = cross::call(shard, target, move |s| async move {
                io_ops::single_key(&s, header, Bytes::from(payload)).await
            })
            .await
            .map_err(cross::CrossError::errno)?;
            Ok(split_frames(frames))
        }
        Target::Peer(peer) => forward::request(shard, peer, header, &payload, timeout_ms).await,
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
    value: &(RecordInfo, Vec<u8>),
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
        if let Ok(replies) = on_owner(shard, lookup, Vec::new(), timeout_ms).await {
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
    let mut body = Vec::with_capacity(IO_ATTR_SIZE_BYTES + data.len());
    body.extend_from_slice(&io.encode());
    body.extend_from_slice(data);
    let write = CmdHeader {
        cmd: command::WRITE,
        ..base
    };
    final_status(&on_owner(shard, write, body, timeout_ms).await)
}

/// What SEND does with each key of one request.
struct Job {
    backends: Vec<u32>,
    groups: Vec<u32>,
    overwrite: bool,
    move_source: bool,
    timeout_ms: u64,
    total_keys: u64,
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
    let job = Job {
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
    };
    // Keys are copied KEYS_IN_FLIGHT at a time: each waits on its owners' replies, and a
    // batch of small keys is bound by round trips, not by bytes.
    let job = &job;
    let mut copies = futures::stream::iter(req.ids.iter().enumerate())
        .map(|(n, key)| send_key(shard, job, n, *key))
        .buffer_unordered(KEYS_IN_FLIGHT);
    while let Some(resp) = copies.next().await {
        push_response(out, &header, &resp, &[]);
    }
    frames.error(&header, 0);
    out.push(frames);
}

/// Copy one key to every group of the job (and remove it here with MOVE); its response.
async fn send_key(shard: &Rc<Shard>, job: &Job, n: usize, key: RawId) -> IteratorResponse {
    let mut resp = IteratorResponse {
        key,
        iterated_keys: n as u64 + 1,
        total_keys: job.total_keys,
        ..IteratorResponse::default()
    };
    let b = job.backends.clone();
    let value = cross::call(
        shard,
        shard_of(&key, shard.node.shard_count),
        move |s| async move {
            for lb in s.backends.iter().filter(|lb| b.contains(&lb.backend_id)) {
                let Some(log) = lb.log() else { continue };
                if let Ok(o) = log.read(&key, 0, 0, true).await {
                    return Some((o.info, o.data, lb.backend_id));
                }
            }
            None
        },
    )
    .await;
    let value = match value {
        Ok(value) => value,
        Err(e) => {
            resp.status = e.errno();
            return resp;
        }
    };
    let Some((info, data, backend_id)) = value else {
        resp.status = errno::ENOENT;
        return resp;
    };
    resp.timestamp = info.timestamp;
    resp.user_flags = info.user_flags;
    resp.size = info.size;
    resp.record_flags = info.record_flags;
    let value = (info, data);
    let sends = job
        .groups
        .iter()
        .map(|g| send_one(shard, key, *g, &value, job.overwrite, job.timeout_ms));
    for status in futures::future::join_all(sends).await {
        if status != 0 && resp.status == 0 {
            resp.status = status;
        }
    }
    if resp.status == 0 && job.move_source {
        let removed = cross::call(
            shard,
            shard_of(&key, shard.node.shard_count),
            move |s| async move {
                let log = s
                    .backends
                    .iter()
                    .find(|b| b.backend_id == backend_id)?
                    .log()?;
                log.remove(&key).await.ok()
            },
        )
        .await;
        match removed {
            Ok(Some(())) => {}
            Ok(None) => resp.status = errno::EIO,
            Err(e) => resp.status = e.errno(),
        }
    }
    resp
}
