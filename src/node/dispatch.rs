//! Command dispatch: which handler serves a request, and on which shard. Commands that need
//! no backend are answered at once on the receiving shard; backend commands are routed by
//! key to the owning shard (crossing its mailbox once) and run there.

use super::conn::Outbox;
use super::cross;
use super::reply::{Frames, Replies};
use super::shard::Shard;
use super::{control, exec, handshake, indexes, io_ops};
use crate::protocol::{cmd_flags, command, errno, CmdHeader};
use crate::routing::shard_of;
use bytes::Bytes;
use std::future::Future;
use std::rc::Rc;

/// What the receiving shard can do with a request right away.
#[derive(Debug)]
pub enum Immediate {
    /// Answered: these frames, and whether the connection stays open.
    Done(Frames, bool),
    /// Needs storage or other shards: run [`execute`] in a task.
    Async,
}

/// Handle the commands that touch no backend.
pub fn immediate(shard: &Rc<Shard>, header: &CmdHeader, payload: &[u8]) -> Immediate {
    let mut frames = Frames::new();
    let keep_open = match header.cmd {
        command::REVERSE_LOOKUP => handshake::reverse_lookup(shard, header, &mut frames),
        command::ROUTE_LIST => {
            handshake::route_list(shard, header, &mut frames);
            true
        }
        command::AUTH => handshake::auth(shard, header, payload, &mut frames),
        command::JOIN => {
            // Joining peers comes with clustering; acknowledge without adding routes.
            frames.ack(header, 0);
            true
        }
        command::EXEC if shard.srw.is_none() => {
            // Answered by the node, not a backend: backend_id -1, as the original did.
            let mut reply = *header;
            reply.backend_id = control::NODE_BACKEND_ID;
            frames.error(&reply, errno::ENOTSUP);
            true
        }
        command::EXEC => return Immediate::Async,
        command::STATUS => {
            control::status(shard, header, payload, &mut frames);
            true
        }
        command::MONITOR_STAT => {
            control::monitor_stat(shard, header, payload, &mut frames);
            true
        }
        command::BACKEND_STATUS => {
            control::backend_status(shard, header, &mut frames);
            true
        }
        command::BACKEND_CONTROL
        | command::LOOKUP
        | command::WRITE
        | command::READ
        | command::DEL
        | command::BULK_READ
        | command::READ_RANGE
        | command::DEL_RANGE
        | command::INDEXES_UPDATE
        | command::INDEXES_INTERNAL
        | command::INDEXES_FIND => return Immediate::Async,
        command::UPDATE_IDS => true,
        _ => {
            tracing::debug!(cmd = header.cmd, "unsupported command");
            frames.error(header, errno::ENOTSUP);
            true
        }
    };
    Immediate::Done(frames, keep_open)
}

/// Serve a READ or WRITE that can finish at once for a key this shard owns, straight from
/// the receive buffer (no payload `Bytes` is cut for it); false when the request must go
/// the whole way through [`super::conn`]'s dispatch instead (then nothing was done).
pub fn serve_now(shard: &Shard, out: &Outbox, header: &CmdHeader, payload: &[u8]) -> bool {
    if header.is_reply()
        || !matches!(header.cmd, command::READ | command::WRITE)
        || shard_of(&header.id, shard.node.shard_count) != shard.index
        || !matches!(
            super::forward::target(shard, header),
            super::forward::Target::Local
        )
    {
        return false;
    }
    let served = out.serve_in_place(|frames| {
        if header.cmd == command::READ {
            io_ops::read_now(shard, *header, payload, frames)
        } else {
            io_ops::write_now(shard, *header, payload, frames)
        }
    });
    if served {
        // Started and finished here: no in-flight count sees it.
        shard.counters().count_command(header.cmd);
    }
    served
}

/// Start a backend request (one [`immediate`] answered `Async`): run it right away and
/// queue its frames on `out` when it completes at once, else as a task. A single-key
/// command for a key this shard owns gets a future of its own command only, which is much
/// smaller than [`execute`]'s.
pub fn start(shard: &Rc<Shard>, out: &Rc<Outbox>, header: CmdHeader, payload: Bytes) {
    out.request_started();
    shard.request_started();
    let local = shard_of(&header.id, shard.node.shard_count) == shard.index;
    match header.cmd {
        // A READ or WRITE that could finish at once was served by [`serve_now`] already.
        command::READ if local => {
            run(shard, out, io_ops::read_key(shard.clone(), header, payload));
        }
        command::WRITE if local => {
            let write = io_ops::write_key(shard.clone(), header, payload);
            run(shard, out, write);
        }
        command::LOOKUP if local => {
            run(
                shard,
                out,
                io_ops::lookup_key(shard.clone(), header, payload),
            );
        }
        command::DEL if local => {
            run(
                shard,
                out,
                io_ops::remove_key(shard.clone(), header, payload),
            );
        }
        _ => {
            let (s, o) = (shard.clone(), out.clone());
            run(
                shard,
                out,
                async move { execute(&s, &o, header, payload).await },
            );
        }
    }
}

fn run<Fut: Future<Output = Frames> + 'static>(shard: &Rc<Shard>, out: &Rc<Outbox>, request: Fut) {
    let (shard, out) = (shard.clone(), out.clone());
    crate::runtime::run_or_spawn(async move {
        let frames = request.await;
        done(&shard, &out, frames);
    });
}

/// Queue a request's final frames and count it finished.
fn done(shard: &Shard, out: &Outbox, frames: Frames) {
    out.push(frames);
    out.request_finished();
    shard.request_finished();
}

/// Run a backend command (or a node-wide control) and return its final frames. A command
/// that streams (EXEC) pushes its earlier frames to `out` as they are produced.
pub async fn execute(
    shard: &Rc<Shard>,
    out: &Rc<Outbox>,
    header: CmdHeader,
    payload: Bytes,
) -> Frames {
    match header.cmd {
        command::BACKEND_CONTROL => control::backend_control(shard, header, payload).await,
        command::BULK_READ => io_ops::bulk_read(shard, header, payload).await,
        command::EXEC => exec::exec(shard, out, header, payload).await,
        command::READ_RANGE | command::DEL_RANGE => io_ops::range(shard, header, payload).await,
        command::INDEXES_UPDATE | command::INDEXES_INTERNAL | command::INDEXES_FIND => {
            indexes::serve(shard, header, payload).await
        }
        _ => {
            let target = shard_of(&header.id, shard.node.shard_count);
            cross::call(shard, target, move |s| async move {
                io_ops::single_key(&s, header, payload).await
            })
            .await
        }
    }
}

/// The index of the local backend that serves `header`: the one named by `backend_id` when
/// DIRECT_BACKEND is set, else the enabled backend of the request's group that owns the key.
pub fn backend_for(shard: &Shard, header: &CmdHeader) -> Result<usize, i32> {
    if header.flags & cmd_flags::DIRECT_BACKEND != 0 {
        let id = u32::try_from(header.backend_id).map_err(|_| errno::ENXIO)?;
        return shard
            .backends
            .iter()
            .position(|b| b.backend_id == id)
            .ok_or(errno::ENXIO);
    }
    // The common layout, one backend per group: it owns every key of the group.
    let mut in_group = shard
        .backends
        .iter()
        .enumerate()
        .filter(|(_, b)| b.group == header.group_id);
    if let (Some((i, b)), None) = (in_group.next(), in_group.next()) {
        return if b.ids.borrow().is_empty() {
            Err(errno::ENXIO)
        } else {
            Ok(i)
        };
    }
    let mut best: Option<(usize, crate::key::RawId)> = None;
    let mut wrap: Option<(usize, crate::key::RawId)> = None;
    for (i, b) in shard.backends.iter().enumerate() {
        if b.group != header.group_id {
            continue;
        }
        for point in b.ids.borrow().iter() {
            if *point <= header.id && best.is_none_or(|(_, p)| *point > p) {
                best = Some((i, *point));
            }
            if wrap.is_none_or(|(_, p)| *point > p) {
                wrap = Some((i, *point));
            }
        }
    }
    best.or(wrap).map(|(i, _)| i).ok_or(errno::ENXIO)
}
