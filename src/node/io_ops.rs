//! The IO commands on the owning shard: LOOKUP, WRITE, READ, DEL for one key, and BULK_READ,
//! READ_RANGE, DEL_RANGE, which fan out to every shard and gather the answers.
//!
//! (The multi-key commands are in [`super::io_multi`]; values too large to buffer stream
//! through [`super::io_stream`].)
//!
//! WRITE, READ and LOOKUP clear NEED_ACK before touching the backend, so success is one
//! final data reply; DEL keeps it and ends with an ack. Errors are always an ack with -errno.

use super::cache_io;
pub use super::io_common::push_file_info;
use super::io_common::push_file_info_sized;
pub(super) use super::io_common::{
    backend_id_of, backend_log, cache_of, count_key_served, finish, local_backend, local_log,
};
pub use super::io_multi::{bulk_read, range};
pub(super) use super::io_read::{read, read_reply_io};
use super::reply::{Frames, Replies};
use super::shard::{Shard, ShardLog};
use crate::blob::RecordInfo;
use crate::protocol::{cmd_flags, command, errno, io_flags, CmdHeader, IoAttr};
use bytes::Bytes;
use std::rc::Rc;

/// Serve a single-key command on the shard that owns the key.
pub async fn single_key(shard: &Rc<Shard>, header: CmdHeader, payload: Bytes) -> Frames {
    let shard = shard.clone();
    match header.cmd {
        command::LOOKUP => lookup_key(shard, header, payload).await,
        command::WRITE => write_key(shard, header, payload).await,
        command::READ => read_key(shard, header, payload).await,
        command::DEL => remove_key(shard, header, payload).await,
        _ => {
            let mut frames = Frames::new();
            frames.error(&header, errno::ENOTSUP);
            frames
        }
    }
}

// One function per command, so that a request's future holds only its own command's
// state (a READ does not carry the size of a WRITE).

/// READ on the owning shard.
pub async fn read_key(shard: Rc<Shard>, mut header: CmdHeader, payload: Bytes) -> Frames {
    let mut frames = Frames::new();
    header.flags &= !cmd_flags::NEED_ACK;
    let result = match local_log(&shard, &header) {
        Ok(log) => match cache_of(&shard, &header) {
            Some(cell) => cache_io::read_or_disk(cell, &log, &header, &payload, &mut frames).await,
            None => read(&log, &header, &payload, &mut frames).await,
        },
        Err(status) => Err(status),
    };
    finish(&shard, &header, payload.len(), result, &mut frames);
    frames
}

/// WRITE on the owning shard.
pub async fn write_key(shard: Rc<Shard>, mut header: CmdHeader, payload: Bytes) -> Frames {
    let mut frames = Frames::new();
    let result = match local_log(&shard, &header) {
        Ok(log) => write(&shard, &log, &mut header, &payload, &mut frames).await,
        Err(status) => Err(status),
    };
    finish(&shard, &header, payload.len(), result, &mut frames);
    frames
}

/// LOOKUP on the owning shard.
pub async fn lookup_key(shard: Rc<Shard>, mut header: CmdHeader, payload: Bytes) -> Frames {
    let mut frames = Frames::new();
    header.flags &= !cmd_flags::NEED_ACK;
    let result = match local_log(&shard, &header) {
        Ok(log) => lookup(&shard, &log, &header, &mut frames).await,
        Err(status) => Err(status),
    };
    finish(&shard, &header, payload.len(), result, &mut frames);
    frames
}

/// DEL on the owning shard.
pub async fn remove_key(shard: Rc<Shard>, header: CmdHeader, payload: Bytes) -> Frames {
    let result = match local_log(&shard, &header) {
        Ok(log) => remove(&shard, &log, &header, &payload).await,
        Err(status) => Err(status),
    };
    let mut frames = Frames::new();
    finish(&shard, &header, payload.len(), result, &mut frames);
    frames
}

async fn lookup(
    shard: &Shard,
    log: &ShardLog,
    header: &CmdHeader,
    frames: &mut Frames,
) -> Result<(), i32> {
    if let Some(cell) = cache_of(shard, header) {
        if let Some(result) = cache_io::lookup(shard, cell, log, header, frames).await {
            return result;
        }
    }
    let checksum = header.flags & cmd_flags::CHECKSUM != 0;
    let info = log
        .lookup(&header.id, checksum)
        .await
        .map_err(|e| e.errno())?;
    let mut reply = *header;
    reply.backend_id = backend_id_of(shard, header);
    push_file_info(shard, &reply, &info, frames);
    Ok(())
}

async fn write(
    shard: &Shard,
    log: &ShardLog,
    header: &mut CmdHeader,
    payload: &Bytes,
    frames: &mut Frames,
) -> Result<(), i32> {
    let (io, data) =
        IoAttr::decode_with_data(payload).map_err(|e| super::reply::bad_payload("io_attr", e))?;
    if shard.node.is_read_only() {
        return Err(errno::EROFS);
    }
    let limit = shard.node.config.options.value_bytes_max;
    let value_end = io.offset.saturating_add(data.len() as u64);
    if value_end > limit || (io.flags & io_flags::PREPARE != 0 && io.num > limit) {
        tracing::warn!(
            id = %header.id.short_hex(),
            "refusing a WRITE whose value reaches {} bytes: above value_bytes_max ({limit} bytes)",
            value_end.max(io.num)
        );
        return Err(errno::E2BIG);
    }
    if let Some(cell) = cache_of(shard, header) {
        if let Some(result) = cache_io::write(shard, cell, log, header, &io, data, frames).await {
            return result;
        }
    }
    let data_offset = payload.len() - data.len();
    let data = payload.slice(data_offset..);
    let info = log.write(&io, data).await.map_err(|e| e.errno())?;
    push_write_reply(shard, header, &io, &info, frames);
    Ok(())
}

/// WRITE on the owning shard when it can finish at once, without a task (see
/// [`crate::blob::BlobLog::write_now`]), its frames written to `frames`; false when it has
/// to wait (then nothing was written): run [`write_key`].
pub fn write_now(
    shard: &Shard,
    mut header: CmdHeader,
    payload: &[u8],
    frames: &mut impl Replies,
) -> bool {
    if shard.node.is_read_only() {
        return false;
    }
    let Ok(backend) = local_backend(shard, &header) else {
        return false;
    };
    let Some(log) = backend.log() else {
        return false;
    };
    let Ok((io, data)) = IoAttr::decode_with_data(payload) else {
        return false;
    };
    if data.len() as u64 > shard.node.config.options.value_bytes_max {
        return false;
    }
    if let Some(cell) = &backend.cache {
        match cache_io::write_now(shard, cell, &mut header, &io, data, frames) {
            None => {}
            Some(None) => return false,
            Some(Some(result)) => {
                count_key_served(shard);
                finish(shard, &header, payload.len(), result, frames);
                return true;
            }
        }
    }
    let Some(info) = log.write_now(&io, data) else {
        return false;
    };
    count_key_served(shard);
    let result = match info {
        Ok(info) => {
            push_write_reply(shard, &mut header, &io, &info, frames);
            Ok(())
        }
        Err(e) => Err(e.errno()),
    };
    finish(shard, &header, payload.len(), result, frames);
    true
}

/// The WRITE reply: the record's file info, or only the final ack under
/// WRITE_NO_FILE_INFO (the header's NEED_ACK is set for [`finish`] to send it).
pub(super) fn push_write_reply(
    shard: &Shard,
    header: &mut CmdHeader,
    io: &IoAttr,
    info: &RecordInfo,
    frames: &mut impl Replies,
) {
    if io.flags & io_flags::WRITE_NO_FILE_INFO != 0 {
        header.flags |= cmd_flags::NEED_ACK;
        return;
    }
    header.flags &= !cmd_flags::NEED_ACK;
    let mut reply = *header;
    reply.backend_id = backend_id_of(shard, header);
    let size = write_reply_size(io, info.size);
    push_file_info_sized(shard, &reply, info, size, frames);
}

/// The size a WRITE reply reports, as the original did: an APPEND reports the appended
/// chunk, a PREPARE or PLAIN_WRITE before its COMMIT reports nothing committed (0), every
/// other write (COMMIT included) the record's total.
fn write_reply_size(io: &IoAttr, total_size: u64) -> u64 {
    if io.flags & io_flags::APPEND != 0 {
        io.size
    } else if io.flags & (io_flags::PREPARE | io_flags::PLAIN_WRITE) != 0
        && io.flags & io_flags::COMMIT == 0
    {
        0
    } else {
        total_size
    }
}

async fn remove(
    shard: &Shard,
    log: &ShardLog,
    header: &CmdHeader,
    payload: &[u8],
) -> Result<(), i32> {
    if shard.node.is_read_only() {
        return Err(errno::EROFS);
    }
    if let Some(cell) = cache_of(shard, header) {
        // A DEL may come without an io_attr (then no ioflags).
        let flags = IoAttr::decode(payload).map_or(0, |io| io.flags);
        return cache_io::remove(cell, log, &header.id, flags).await;
    }
    log.remove(&header.id).await.map_err(|e| e.errno())
}

/// READ on the owning shard when it can finish at once, without a task (see
/// [`crate::blob::BlobLog::read_now`]), its frames written to `frames`; false when it has
/// to wait (then nothing was written): run [`read_key`].
pub fn read_now(
    shard: &Shard,
    mut header: CmdHeader,
    payload: &[u8],
    frames: &mut impl Replies,
) -> bool {
    header.flags &= !cmd_flags::NEED_ACK;
    let Ok(backend) = local_backend(shard, &header) else {
        return false;
    };
    let Some(log) = backend.log() else {
        return false;
    };
    let Ok(io) = IoAttr::decode(payload) else {
        return false;
    };
    if let Some(cell) = &backend.cache {
        match cache_io::read_now(cell, &header, &io, frames) {
            cache_io::NowRead::Disk => {}
            cache_io::NowRead::Task => return false,
            cache_io::NowRead::Done(result) => {
                count_key_served(shard);
                finish(shard, &header, payload.len(), result, frames);
                return true;
            }
        }
    }
    let verify = io.flags & io_flags::NOCSUM == 0;
    let mark = frames.mark();
    // The value is copied once, from the page-cache map into its reply frame.
    let outcome = log.read_now(&header.id, io.offset, io.size, verify, |info, value| {
        let reply_io = read_reply_io(&header, &io, info, value);
        frames.reply(&header, &[&reply_io.encode(), value], false);
    });
    let Some(outcome) = outcome else {
        return false;
    };
    count_key_served(shard);
    let result = outcome.map_err(|e| e.errno());
    if result.is_err() {
        // A map access that faulted still ran the copy (from a zero page): drop its reply.
        frames.truncate(mark);
    }
    finish(shard, &header, payload.len(), result, frames);
    true
}
