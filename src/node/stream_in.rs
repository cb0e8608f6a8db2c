//! Streamed WRITEs on the connection's shard: a WRITE frame whose payload is larger than
//! [`STREAM_WRITE_THRESHOLD_BYTES`] is not buffered. Once its header and io_attr are in,
//! the value is read from the socket a piece ([`STREAM_PIECE_BYTES`]) at a time and each
//! piece is written at its place by the owning shard ([`super::io_stream`]) while the next
//! ones are read; the reply comes once the record is sealed. A connection so holds at most
//! a few pieces, whatever the value's size; the pieces of all streams draw on one budget of
//! the node ([`STREAM_PIECES_BYTES_MAX`]), not on the budget for incomplete frames. A stream
//! that finds the budget spent waits for its pieces being written, then for one piece.
//!
//! A value above `options.value_bytes_max` is refused with -E2BIG and the connection
//! closes (its bytes are not read); one for a key another node owns is relayed there as it
//! arrives ([`super::forward_stream`]). A step the backend refuses
//! (-EROFS, -ENOSPC, ...) is answered with its error; the rest of the value is then read
//! and dropped, and the connection stays open. A connection that closes, or sends nothing
//! for `frame_stall_timeout` seconds, mid-value leaves no visible record.

use super::cross;
use super::intake::FrameClaim;
use super::io_stream;
use super::shard::Shard;
use super::stream_socket::{drain, next_piece, reply_error, Conn};
use crate::blob::footer::FooterHasher;
use crate::limits::{STREAM_PIECES_BYTES_MAX, STREAM_PIECE_BYTES, STREAM_WRITE_THRESHOLD_BYTES};
use crate::protocol::{command, errno, CmdHeader, IoAttr, HEADER_SIZE_BYTES, IO_ATTR_SIZE_BYTES};
use crate::routing::shard_of;
use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// Pieces of one streamed value being written at once (the socket is read meanwhile): a
/// streaming connection holds at most this many pieces and the one it is reading.
const PIECES_IN_FLIGHT: usize = 4;
/// One piece, as the budget counts it.
const PIECE_BYTES: usize = STREAM_PIECE_BYTES as usize;

/// Bytes of a WRITE frame needed to decide whether it streams: header and io_attr.
const DECIDE_BYTES: usize = HEADER_SIZE_BYTES + IO_ATTR_SIZE_BYTES;

/// A WRITE frame to stream, as its first bytes describe it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Incoming {
    header: CmdHeader,
    io: IoAttr,
    value_bytes: u64,
}

/// What the bytes at the front of a receive buffer start.
#[derive(Debug)]
pub(super) enum Detect {
    /// An ordinary frame (or too little to tell it from one).
    Buffered,
    /// A large WRITE whose io_attr has not arrived: read this many more bytes first.
    NeedMore(usize),
    /// A WRITE to stream.
    Stream(Box<Incoming>),
    /// A WRITE whose value is above `value_bytes_max` (this many bytes): refuse it.
    TooLarge(u64),
}

/// Look at the frame at the front of `buf`; a WRITE of more than `value_limit` value bytes
/// is refused from its header alone.
pub(super) fn detect(buf: &[u8], value_limit: u64) -> Detect {
    let Ok(header) = CmdHeader::decode(buf) else {
        return Detect::Buffered;
    };
    if header.cmd != command::WRITE
        || header.is_reply()
        || header.size <= STREAM_WRITE_THRESHOLD_BYTES
    {
        return Detect::Buffered;
    }
    let value_bytes = header.size.saturating_sub(IO_ATTR_SIZE_BYTES as u64);
    if value_bytes > value_limit {
        return Detect::TooLarge(value_bytes);
    }
    let Some(attr) = buf.get(HEADER_SIZE_BYTES..DECIDE_BYTES) else {
        return Detect::NeedMore(DECIDE_BYTES - buf.len());
    };
    match IoAttr::decode(attr) {
        Ok(io) if crate::blob::streamable(&io) => Detect::Stream(Box::new(Incoming {
            header,
            io,
            value_bytes,
        })),
        _ => Detect::Buffered,
    }
}

/// Gives the owning shard's stream up unless the write was sealed.
struct Ticket {
    shard: Rc<Shard>,
    owner: usize,
    header: CmdHeader,
    ticket: u64,
    armed: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (shard, owner, header, ticket) =
            (self.shard.clone(), self.owner, self.header, self.ticket);
        crate::runtime::spawn(async move {
            let _ = cross::call(&shard, owner, move |s| async move {
                io_stream::abort(&s, &header, ticket);
            })
            .await;
        });
    }
}

/// Serve the streamed WRITE at the front of `buf` (its first [`DECIDE_BYTES`] are there);
/// bytes after its frame stay in `buf`. False when the connection must close.
pub(super) async fn receive(c: &Conn<'_>, inc: Incoming, buf: &mut BytesMut) -> bool {
    let header = inc.header;
    let counters = c.shard.counters();
    counters.count_command(header.cmd);
    let started = counters.timed(header.cmd);
    let head = buf.split_to(DECIDE_BYTES).freeze();
    match refusal(c, &inc) {
        None => {}
        Some(Refusal::Status(status)) => {
            reply_error(c.out, &header, status);
            return false;
        }
        Some(Refusal::Owner(peer)) => {
            let kept = super::forward_stream::relay(c, &header, head, inc.value_bytes, buf, peer);
            return kept.await;
        }
    }
    let owner = shard_of(&header.id, c.shard.node.shard_count);
    let (io, value_bytes) = (inc.io, inc.value_bytes);
    let begun = cross::call(c.shard, owner, move |s| {
        io_stream::write_begin(s, header, io, value_bytes)
    })
    .await
    .unwrap_or_else(|e| Err(e.errno()));
    let (ticket, mut hasher) = match begun {
        Ok(begun) => (
            Ticket {
                shard: c.shard.clone(),
                owner,
                header,
                ticket: begun.ticket,
                armed: true,
            },
            begun.hasher,
        ),
        Err(status) => {
            reply_error(c.out, &header, status);
            return drain(c, buf, value_bytes).await;
        }
    };
    match pump(c, &ticket, hasher.as_mut(), buf, value_bytes).await {
        Pumped::All => {}
        Pumped::Refused(status, left) => {
            drop(ticket);
            reply_error(c.out, &header, status);
            return drain(c, buf, left).await;
        }
        Pumped::Lost => return false,
    }
    let mut ticket = ticket;
    ticket.armed = false;
    let id = ticket.ticket;
    let frames = cross::call(c.shard, owner, move |s| {
        io_stream::write_finish(s, header, io, id, hasher)
    })
    .await
    .unwrap_or_else(|e| e.answer(&header));
    c.out.push(frames);
    if let Some(at) = started {
        counters.stats.record_latency(header.cmd, at);
    }
    true
}

/// Log the refusal of a WRITE above `value_bytes_max`.
pub(super) fn log_too_large(peer: SocketAddr, header: &CmdHeader, value_bytes: u64, limit: u64) {
    tracing::warn!(
        %peer,
        id = %header.id.short_hex(),
        "refusing a WRITE of {value_bytes} bytes: above value_bytes_max ({limit} bytes)"
    );
}

/// Why a streamed WRITE is not written here.
enum Refusal {
    /// Refused with this errno before any of its value is read.
    Status(i32),
    /// Another node owns its key: the value is relayed there.
    Owner(SocketAddr),
}

/// Why a streamed WRITE is not written here, if it is not.
fn refusal(c: &Conn<'_>, inc: &Incoming) -> Option<Refusal> {
    let limit = c.shard.node.config.options.value_bytes_max;
    if inc.value_bytes > limit {
        log_too_large(c.peer, &inc.header, inc.value_bytes, limit);
        return Some(Refusal::Status(errno::E2BIG));
    }
    match super::forward::target(c.shard, &inc.header) {
        super::forward::Target::Local => None,
        super::forward::Target::Peer(peer) => Some(Refusal::Owner(peer)),
        super::forward::Target::Refuse(status) => Some(Refusal::Status(status)),
    }
}

/// How the value's bytes went.
enum Pumped {
    /// Every byte is written.
    All,
    /// The backend refused a piece (status); this many bytes of the value are still unread.
    Refused(i32, u64),
    /// The connection closed or stalled.
    Lost,
}

/// Move `value_bytes` from `buf` and then the socket to the owning shard, a piece at a
/// time, up to [`PIECES_IN_FLIGHT`] pieces being written while the next is read; `hasher`
/// takes every byte as it arrives.
async fn pump(
    c: &Conn<'_>,
    t: &Ticket,
    mut hasher: Option<&mut FooterHasher>,
    buf: &mut BytesMut,
    value_bytes: u64,
) -> Pumped {
    let mut left = value_bytes;
    let mut writing = std::collections::VecDeque::with_capacity(PIECES_IN_FLIGHT);
    let mut claim = FrameClaim::new(c.shard.node.stream_budget.clone());
    while left > 0 {
        if writing.len() == PIECES_IN_FLIGHT {
            if let Some(Err(status)) = next_written(&mut writing).await {
                return Pumped::Refused(status, left);
            }
        }
        let held = (writing.len() + 1) * PIECE_BYTES;
        if !claim.set(held, Duration::ZERO).await {
            // The node's pieces are spent: finish what this stream holds, then wait for one.
            while let Some(done) = next_written(&mut writing).await {
                if let Err(status) = done {
                    return Pumped::Refused(status, left);
                }
            }
            if !claim.set(PIECE_BYTES, c.stall).await {
                tracing::warn!(
                    peer = %c.peer,
                    shard = c.shard.index,
                    "closing connection: its streamed value found no room among the node's \
                     {STREAM_PIECES_BYTES_MAX} bytes of pieces for {} s",
                    c.stall.as_secs()
                );
                return Pumped::Lost;
            }
        }
        let Some(piece) = next_piece(c, buf, left, hasher.as_deref_mut()).await else {
            return Pumped::Lost;
        };
        let offset = value_bytes - left;
        left -= piece.len() as u64;
        writing.push_back(write_piece(t, offset, piece));
    }
    while !writing.is_empty() {
        if let Some(Err(status)) = next_written(&mut writing).await {
            return Pumped::Refused(status, 0);
        }
    }
    Pumped::All
}

/// The result of the oldest piece being written.
async fn next_written(
    writing: &mut std::collections::VecDeque<oneshot::Receiver<Result<(), i32>>>,
) -> Option<Result<(), i32>> {
    let done = writing.pop_front()?;
    Some(done.await.unwrap_or(Err(errno::EIO)))
}

/// Start writing `piece`, at `offset` of the value, on the owning shard; its result
/// arrives on the receiver.
fn write_piece(t: &Ticket, offset: u64, piece: Bytes) -> oneshot::Receiver<Result<(), i32>> {
    let (tx, rx) = oneshot::channel();
    let (shard, owner, header, ticket) = (t.shard.clone(), t.owner, t.header, t.ticket);
    crate::runtime::spawn(async move {
        let result = cross::call(&shard, owner, move |s| {
            io_stream::write_piece(s, header, ticket, offset, piece)
        })
        .await
        .unwrap_or_else(|e| Err(e.errno()));
        let _ = tx.send(result);
    });
    rx
}
