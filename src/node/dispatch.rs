//! Command dispatch: which handler serves a request, and on which shard. Commands that need
//! no backend are answered at once on the receiving shard; backend commands are routed by
//! key to the owning shard (crossing its mailbox once) and run there.

use super::cross;
use super::outbox::Outbox;
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
    // REVERSE_LOOKUP, JOIN, AUTH and UPDATE_IDS never get here: `peers::intercept` answers
    // them on the connection first.
    let keep_open = match header.cmd {
        command::ROUTE_LIST => {
            handshake::route_list(shard, header, &mut frames);
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
    let counters = shard.counters();
    let started = counters.timed(header.cmd);
    let _scope = crate::log::RequestScope::enter(header.trace_id, header.trans);
    let served = out.serve_in_place(|frames| {
        if header.cmd == command::READ {
            io_ops::read_now(shard, *header, payload, frames)
        } else {
            io_ops::write_now(shard, *header, payload, frames)
        }
    });
    if served {
        // Started and finished here: no in-flight count sees it.
        counters.count_command(header.cmd);
        if let Some(started) = started {
            counters.stats.record_latency(header.cmd, started);
        }
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
    let req = Started {
        header,
        at: shard.counters().timed(header.cmd),
    };
    match header.cmd {
        // A READ or WRITE that could finish at once was served by [`serve_now`] already.
        command::READ if local => {
            run(
                shard,
                out,
                req,
                io_ops::read_key(shard.clone(), header, payload),
            );
        }
        command::WRITE if local => {
            let write = io_ops::write_key(shard.clone(), header, payload);
            run(shard, out, req, write);
        }
        command::LOOKUP if local => {
            let lookup = io_ops::lookup_key(shard.clone(), header, payload);
            run(shard, out, req, lookup);
        }
        command::DEL if local => {
            let remove = io_ops::remove_key(shard.clone(), header, payload);
            run(shard, out, req, remove);
        }
        _ => {
            let (s, o) = (shard.clone(), out.clone());
            let request = async move { execute(&s, &o, header, payload).await };
            run(shard, out, req, request);
        }
    }
}

/// A request in flight: its header, and its start time when its latency is measured.
#[derive(Debug, Clone, Copy)]
struct Started {
    header: CmdHeader,
    at: Option<std::time::Instant>,
}

fn run<Fut: Future<Output = Frames> + 'static>(
    shard: &Rc<Shard>,
    out: &Rc<Outbox>,
    req: Started,
    request: Fut,
) {
    let (shard, out) = (shard.clone(), out.clone());
    let scoped = crate::log::in_request(req.header.trace_id, req.header.trans, request);
    crate::runtime::run_or_spawn(async move {
        let frames = scoped.await;
        done(&shard, &out, req, frames);
    });
}

/// Queue a request's final frames, count it finished, and note its latency and, for
/// commands not counted by their handler, its error status.
fn done(shard: &Shard, out: &Outbox, req: Started, frames: Frames) {
    let stats = &shard.counters().stats;
    if let Some(at) = req.at {
        stats.record_latency(req.header.cmd, at);
    }
    if !matches!(
        req.header.cmd,
        command::READ | command::WRITE | command::LOOKUP | command::DEL
    ) {
        if let Some(status) = frames.parts.last().and_then(|f| final_status(f)) {
            stats.record_error(req.header.cmd, status);
        }
    }
    out.push(frames);
    out.request_finished();
    shard.request_finished();
}

/// The error status of a final ack frame (a bare header with a non-zero status).
fn final_status(frame: &[u8]) -> Option<i32> {
    if frame.len() != crate::protocol::HEADER_SIZE_BYTES {
        return None;
    }
    let header = CmdHeader::decode(frame).ok()?;
    (header.status != 0 && header.flags & cmd_flags::MORE == 0).then_some(header.status)
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
            cross::call(shard, target, move |s| {
                let request = async move { io_ops::single_key(&s, header, payload).await };
                crate::log::in_request(header.trace_id, header.trans, request)
            })
            .await
            .unwrap_or_else(|e| e.answer(&header))
        }
    }
}
