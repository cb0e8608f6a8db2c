//! EXEC on the node (spec §1.10, §7): split `app@event` at the first `@`; `start-task`,
//! `start-multiple-task`, `stop-task` and `info` are handled here and fan out to every
//! shard; REPLY/FINISH packets are forwarded to the blocked job they name; any other event
//! goes to the app's workers on the shard that owns the key (`shard_of(cmd.id)`).
//!
//! A blocked caller (SRC_BLOCK) gets each worker chunk as a reply (`sph` + event + chunk,
//! MORE set) the moment it arrives, streamed through a [`ReplyStream`] (across the mailbox
//! when the key's shard is not the connection's), and then the final ack: 0 on close,
//! `-code` on a worker error, -ECONNRESET when the worker died. Without SRC_BLOCK the ack goes out
//! as soon as the event is queued. What one exec holds is bounded twice: the worker's
//! chunks not yet taken ([`crate::srw::pool::EXEC_QUEUED_BYTES_MAX`], then
//! -ENOMEM) and the frames not yet
//! written to the socket ([`cross::STREAM_WINDOW_BYTES`], then the exec waits).

mod start_task;

use super::cross::{self, ReplyStream};
use super::outbox::Outbox;
use super::reply::{Frames, Replies};
use super::shard::Shard;
use crate::protocol::{errno, sph_flags, CmdHeader, DecodeError, DnetAddr, ExecPayload, Sph};
use crate::routing::shard_of;
use crate::srw::chan;
use crate::srw::info::{merge, styled, ShardAppInfo};
use crate::srw::pool::{Reply, WORKER_LOST_STATUS};
use bytes::Bytes;
use start_task::start;
use std::rc::Rc;

/// Serve one EXEC frame: worker replies go to `out` as they come; the final frames are
/// returned.
pub async fn exec(
    shard: &Rc<Shard>,
    out: &Rc<Outbox>,
    header: CmdHeader,
    payload: Bytes,
) -> Frames {
    let mut frames = Frames::new();
    if shard.srw.is_none() {
        frames.error(&header, errno::ENOTSUP);
        return frames;
    }
    let parsed = match ExecPayload::decode(&payload) {
        Ok(p) => p,
        Err(DecodeError::SizeMismatch { .. }) => {
            frames.error(&header, errno::E2BIG);
            return frames;
        }
        Err(_) => {
            frames.error(&header, errno::EINVAL);
            return frames;
        }
    };
    let flags = parsed.sph.flags;
    let Some((app, method)) = std::str::from_utf8(parsed.event)
        .ok()
        .and_then(|e| e.split_once('@'))
        .map(|(a, m)| (a.to_string(), m.to_string()))
    else {
        frames.error(&header, errno::EINVAL);
        return frames;
    };
    let status = match method.as_str() {
        "start-task" => start(shard, &app, None).await,
        "start-multiple-task" => start(shard, &app, Some(parsed.data.to_vec())).await,
        "stop-task" => {
            let mut status = 0;
            for i in 0..shard.node.shard_count {
                let name = app.clone();
                let stopped = cross::call(shard, i, move |s| async move {
                    s.srw.as_ref().is_some_and(|w| w.stop_app(&name))
                })
                .await;
                if let Err(e) = stopped {
                    status = e.errno();
                }
            }
            status
        }
        "info" => return info(shard, header, &app).await,
        _ => {
            let replying = flags & (sph_flags::REPLY | sph_flags::FINISH) != 0;
            let named = if replying {
                None
            } else {
                let pool = shard.srw.as_ref().and_then(|w| w.app(&app));
                pool.and_then(|p| {
                    p.task
                        .as_ref()
                        .map(|t| t.worker_for(&app, parsed.sph.src_key))
                })
            };
            let target = match &named {
                Some(w) => w.index % shard.node.shard_count.max(1),
                None => shard_of(&header.id, shard.node.shard_count),
            };
            let tag = named.map(|w| w.name);
            return cross::call_streaming(shard, out, target, move |s, stream| async move {
                if replying {
                    forward_reply(&s, header, payload, &app)
                } else {
                    event(&s, &stream, header, payload, app, method, tag).await
                }
            })
            .await
            .unwrap_or_else(|e| e.answer(&header));
        }
    };
    if status == 0 {
        frames.ack(&header, 0);
    } else {
        frames.error(&header, status);
    }
    frames
}

/// An ordinary event on the shard that owns the key (or the named worker `tag` of a
/// `start-multiple-task` app); replies go out through `stream`.
async fn event(
    shard: &Rc<Shard>,
    stream: &ReplyStream,
    header: CmdHeader,
    payload: Bytes,
    app: String,
    method: String,
    tag: Option<String>,
) -> Frames {
    let mut frames = Frames::new();
    let (Some(srw), Ok(p)) = (shard.srw.as_ref(), ExecPayload::decode(&payload)) else {
        frames.error(&header, errno::EINVAL);
        return frames;
    };
    let Some(pool) = srw.app(&app) else {
        frames.error(&header, errno::ENOENT);
        return frames;
    };
    let full_event = String::from_utf8_lossy(p.event);
    let mut sph = p.sph;
    let blocked = sph.flags & sph_flags::SRC_BLOCK != 0;
    let (tx, rx) = chan::channel();
    let job = blocked.then(|| {
        let key = srw.register_job(tx.clone());
        sph.src_key = key;
        sph.src = header.id;
        key
    });
    pool.count(&full_event, |c| {
        if blocked {
            c.blocked += 1;
        } else {
            c.nonblocked += 1;
        }
    });
    let chunk = ExecPayload {
        sph,
        event: p.event,
        data: p.data,
    }
    .encode();
    if let Err(status) = pool.enqueue(tag, method.into_bytes(), chunk, tx) {
        if let Some(k) = job {
            srw.finish_job(k);
        }
        frames.error(&header, status);
        return frames;
    }
    let Some(job) = job else {
        crate::runtime::spawn(async move { while rx.recv().await.is_some() {} });
        frames.ack(&header, 0);
        return frames;
    };
    let (mut forwarded, mut finished, mut status) = (false, false, None);
    while let Some(r) = rx.recv().await {
        match r {
            Reply::Chunk(c) => {
                let mut h = sph;
                h.event_size = i32::try_from(p.event.len()).unwrap_or(i32::MAX);
                h.data_size = c.len() as u64;
                let mut chunk = Frames::new();
                chunk.reply(&header, &[&h.encode(), p.event, &c], true);
                stream.send(chunk).await;
            }
            Reply::Forwarded(packet) => {
                forwarded = true;
                let mut chunk = Frames::new();
                chunk.reply(&header, &[&packet], true);
                stream.send(chunk).await;
            }
            Reply::Finish => finished = true,
            Reply::Done(s) => status = Some(s),
        }
        if status.is_some_and(|s| s != 0 || !forwarded || finished) {
            break;
        }
    }
    srw.finish_job(job);
    match status.unwrap_or(WORKER_LOST_STATUS) {
        0 => frames.ack(&header, 0),
        s => frames.error(&header, s),
    }
    frames
}

/// A REPLY/FINISH packet from a worker's client session: hand it to the blocked job.
fn forward_reply(shard: &Rc<Shard>, header: CmdHeader, payload: Bytes, app: &str) -> Frames {
    let mut frames = Frames::new();
    let Some(srw) = shard.srw.as_ref() else {
        frames.error(&header, errno::ENOTSUP);
        return frames;
    };
    let Ok(p) = ExecPayload::decode(&payload) else {
        frames.error(&header, errno::EINVAL);
        return frames;
    };
    let Some(job) = srw.job(p.sph.src_key) else {
        frames.error(&header, errno::ENOENT);
        return frames;
    };
    if let Some(pool) = srw.app(app) {
        pool.count(&String::from_utf8_lossy(p.event), |c| c.reply += 1);
    }
    job.send(Reply::Forwarded(payload.to_vec()));
    if p.sph.flags & sph_flags::FINISH != 0 {
        job.send(Reply::Finish);
    }
    frames.ack(&header, 0);
    frames
}

/// `app@info`: every shard's share merged into one styled JSON reply.
async fn info(shard: &Rc<Shard>, header: CmdHeader, app: &str) -> Frames {
    let mut frames = Frames::new();
    let mut shards = Vec::with_capacity(shard.node.shard_count);
    for i in 0..shard.node.shard_count {
        let name = app.to_string();
        let one = cross::call(shard, i, move |s| async move {
            let pool = s.srw.as_ref().and_then(|w| w.app(&name));
            ShardAppInfo::of(i, pool.as_deref())
        })
        .await;
        match one {
            Ok(one) => shards.push(one),
            Err(e) => return e.answer(&header),
        }
    }
    let Some(doc) = merge(app, &shards) else {
        frames.error(&header, errno::ENOENT);
        return frames;
    };
    let json = styled(&doc);
    let event = format!("{app}@info");
    let sph = Sph {
        event_size: i32::try_from(event.len()).unwrap_or(i32::MAX),
        data_size: json.len() as u64,
        addr: shard
            .node
            .addresses
            .first()
            .map(|a| DnetAddr::from(*a))
            .unwrap_or_default(),
        ..Sph::default()
    };
    frames.reply(
        &header,
        &[&sph.encode(), event.as_bytes(), json.as_bytes()],
        true,
    );
    frames.ack(&header, 0);
    frames
}
