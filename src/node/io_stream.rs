//! The owning shard's side of streamed WRITEs and READs: each call is one step of a stream
//! that the connection's shard drives ([`super::stream_in`], [`super::stream_out`]), on
//! the backend's [`crate::blob::BlobLog`] stream of the same ticket.

use super::io_ops::{
    backend_log, cache_of, count_key_served, finish, local_log, push_write_reply, read_reply_io,
};
use super::io_read::push_read_reply;
use super::reply::{reply_header, Frames};
use super::shard::Shard;
use crate::blob::footer::FooterHasher;
use crate::blob::stream::WriteBegun;
use crate::blob::{ReadOpen, ReadOpened, ReadOutcome};
use crate::limits::{STREAM_PIECE_BYTES, STREAM_READ_THRESHOLD_BYTES};
use crate::protocol::{cmd_flags, errno, io_flags, CmdHeader, IoAttr, IO_ATTR_SIZE_BYTES};
use bytes::Bytes;
use sha2::{Digest, Sha512};
use std::rc::Rc;

/// Begin a streamed WRITE of `value_bytes` on the owning shard; the stream's ticket and
/// the hasher of its footer, for the connection to feed the value's bytes as they arrive.
pub async fn write_begin(
    shard: Rc<Shard>,
    header: CmdHeader,
    io: IoAttr,
    value_bytes: u64,
) -> Result<WriteBegun, i32> {
    if shard.node.is_read_only() {
        return Err(errno::EROFS);
    }
    let log = local_log(&shard, &header)?;
    log.stream_write_begin(&io, value_bytes)
        .await
        .map_err(|e| e.errno())
}

/// Write the piece at `offset` of a streamed WRITE's value.
pub async fn write_piece(
    shard: Rc<Shard>,
    header: CmdHeader,
    ticket: u64,
    offset: u64,
    piece: Bytes,
) -> Result<(), i32> {
    let log = backend_log(&shard, &header)?;
    log.stream_write_piece(ticket, offset, piece)
        .await
        .map_err(|e| e.errno())
}

/// Seal a streamed WRITE whose value is all in, and answer it as a WRITE is answered.
pub async fn write_finish(
    shard: Rc<Shard>,
    mut header: CmdHeader,
    io: IoAttr,
    ticket: u64,
    hasher: Option<FooterHasher>,
) -> Frames {
    let mut frames = Frames::new();
    let result = match backend_log(&shard, &header) {
        Ok(log) => match log.stream_write_finish(ticket, hasher).await {
            Ok(info) => {
                // The cache must not answer with the value this one replaced.
                if let Some(cell) = cache_of(&shard, &header) {
                    if let Ok(mut cache) = cell.cache.try_borrow_mut() {
                        let _ = cache.remove(&header.id, 0);
                    }
                }
                push_write_reply(&shard, &mut header, &io, &info, &mut frames);
                Ok(())
            }
            Err(e) => Err(e.errno()),
        },
        Err(status) => Err(status),
    };
    let payload_bytes = usize::try_from(header.size).unwrap_or(usize::MAX);
    finish(&shard, &header, payload_bytes, result, &mut frames);
    frames
}

/// Give a stream up (the connection went away, or a step failed).
pub fn abort(shard: &Shard, header: &CmdHeader, ticket: u64) {
    if let Ok(log) = backend_log(shard, header) {
        log.stream_abort(ticket);
    }
}

/// How a READ starts on the owning shard.
#[derive(Debug)]
pub enum ReadStart {
    /// Answered whole (a small value or range, a cached key, or an error).
    Done(Frames),
    /// A streamed reply: its frame head (header and io_attr, announcing every byte), the
    /// first piece (already verified), and the ticket for the rest.
    Stream {
        head: Bytes,
        first: Bytes,
        ticket: u64,
    },
}

/// Start a READ: stream it when the bytes it asks for are more than
/// [`STREAM_READ_THRESHOLD_BYTES`] (and the key is not in the cache), else read it whole.
pub async fn read_start(shard: Rc<Shard>, header: CmdHeader, payload: Bytes) -> ReadStart {
    let Ok(io) = IoAttr::decode(&payload) else {
        return ReadStart::Done(super::io_ops::read_key(shard, header, payload).await);
    };
    let with_cache = cache_of(&shard, &header).is_some();
    let cached = cache_of(&shard, &header).is_some_and(|cell| {
        cell.cache
            .try_borrow()
            .map_or(true, |c| c.slru().contains(&header.id))
    });
    let log = match backend_log(&shard, &header) {
        Ok(log) if !cached => log,
        _ => return ReadStart::Done(super::io_ops::read_key(shard, header, payload).await),
    };
    if !with_cache {
        // read_key counts the others.
        count_key_served(&shard);
    }
    let verify = io.flags & io_flags::NOCSUM == 0;
    let opened = log
        .stream_read_open(
            &header.id,
            io.offset,
            io.size,
            verify,
            STREAM_READ_THRESHOLD_BYTES,
        )
        .await;
    let opened = match opened {
        Ok(ReadOpen::Stream(opened)) => opened,
        // Small, missing or failing: a backend with a cache answers through it (CACHE
        // fills it, CACHE_ONLY reads only it)...
        _ if with_cache => {
            return ReadStart::Done(super::io_ops::read_key(shard, header, payload).await);
        }
        // ... any other as the ordinary READ answers, from what the open found (the key
        // is not looked up again).
        Ok(ReadOpen::Whole(outcome)) => {
            return answered(&shard, header, &io, &payload, Ok(outcome))
        }
        Err(e) => return answered(&shard, header, &io, &payload, Err(e.errno())),
    };
    match stream_head(&shard, &log, header, &io, &opened).await {
        Ok(start) => start,
        Err(status) => {
            log.stream_abort(opened.ticket);
            let mut frames = Frames::new();
            let mut h = header;
            h.flags &= !cmd_flags::NEED_ACK;
            finish(&shard, &h, payload.len(), Err(status), &mut frames);
            ReadStart::Done(frames)
        }
    }
}

/// A READ answered whole: its reply (or error) and the final ack, counted.
fn answered(
    shard: &Shard,
    mut header: CmdHeader,
    io: &IoAttr,
    payload: &[u8],
    outcome: Result<ReadOutcome, i32>,
) -> ReadStart {
    header.flags &= !cmd_flags::NEED_ACK;
    let mut frames = Frames::new();
    let result = outcome.map(|outcome| push_read_reply(&header, io, outcome, &mut frames));
    finish(shard, &header, payload.len(), result, &mut frames);
    ReadStart::Done(frames)
}

/// The frame head and first verified piece of an opened streamed READ.
async fn stream_head(
    shard: &Shard,
    log: &super::shard::ShardLog,
    mut header: CmdHeader,
    io: &IoAttr,
    opened: &ReadOpened,
) -> Result<ReadStart, i32> {
    header.flags &= !cmd_flags::NEED_ACK;
    let mut reply_io = read_reply_io(&header, io, &opened.info.meta(), &[]);
    reply_io.size = opened.size;
    if io.flags & io_flags::CHECKSUM != 0 {
        reply_io.parent = crate::key::RawId(range_sha512(shard, &header, io, opened.size).await?);
    }
    let first = log
        .stream_read_piece(opened.ticket, STREAM_PIECE_BYTES)
        .await
        .map_err(|e| e.errno())?
        .unwrap_or_default();
    let frame = reply_header(&header, IO_ATTR_SIZE_BYTES as u64 + opened.size, false);
    let mut head = Vec::with_capacity(crate::protocol::HEADER_SIZE_BYTES + IO_ATTR_SIZE_BYTES);
    head.extend_from_slice(&frame.encode());
    head.extend_from_slice(&reply_io.encode());
    let data_bytes = usize::try_from(opened.size).unwrap_or(usize::MAX);
    finish(
        shard,
        &header,
        data_bytes + IO_ATTR_SIZE_BYTES,
        Ok(()),
        &mut Frames::new(),
    );
    Ok(ReadStart::Stream {
        head: Bytes::from(head),
        first,
        ticket: opened.ticket,
    })
}

/// The sha512 of the range a streamed READ answers (asked for with io_flags CHECKSUM),
/// read a piece at a time ahead of the reply.
async fn range_sha512(
    shard: &Shard,
    header: &CmdHeader,
    io: &IoAttr,
    size: u64,
) -> Result<[u8; 64], i32> {
    let log = backend_log(shard, header)?;
    let verify = io.flags & io_flags::NOCSUM == 0;
    let opened = log
        .stream_read_open(&header.id, io.offset, size, verify, 0)
        .await
        .map_err(|e| e.errno())?;
    let mut hasher = Sha512::new();
    let opened = match opened {
        ReadOpen::Stream(opened) => opened,
        ReadOpen::Whole(outcome) => {
            hasher.update(&outcome.data);
            return Ok(hasher.finalize().into());
        }
    };
    loop {
        match log
            .stream_read_piece(opened.ticket, STREAM_PIECE_BYTES)
            .await
        {
            Ok(Some(piece)) => hasher.update(&piece),
            Ok(None) => break,
            Err(e) => {
                log.stream_abort(opened.ticket);
                return Err(e.errno());
            }
        }
    }
    log.stream_abort(opened.ticket);
    Ok(hasher.finalize().into())
}

/// The next verified piece of a streamed READ; `None` at its end (the stream is closed).
pub async fn read_piece(
    shard: Rc<Shard>,
    header: CmdHeader,
    ticket: u64,
) -> Result<Option<Bytes>, i32> {
    let log = backend_log(&shard, &header)?;
    match log.stream_read_piece(ticket, STREAM_PIECE_BYTES).await {
        Ok(Some(piece)) => Ok(Some(piece)),
        Ok(None) => {
            log.stream_abort(ticket);
            Ok(None)
        }
        Err(e) => {
            log.stream_abort(ticket);
            Err(e.errno())
        }
    }
}
