//! The IO commands on the owning shard: LOOKUP, WRITE, READ, DEL for one key, and BULK_READ,
//! READ_RANGE, DEL_RANGE, which fan out to every shard and gather the answers.
//!
//! (The multi-key commands are in [`super::io_multi`]; values too large to buffer stream
//! through [`super::io_stream`].)
//!
//! WRITE, READ and LOOKUP clear NEED_ACK before touching the backend, so success is one
//! final data reply; DEL keeps it and ends with an ack. Errors are always an ack with -errno.

use super::cache_io::{self, CacheCell};
pub use super::io_multi::{bulk_read, range};
pub use super::io_read::read_now;
pub(super) use super::io_read::{read, read_reply_io};
use super::reply::{Frames, Replies};
use super::shard::{LocalBackend, Shard, ShardLog};
use crate::blob::RecordInfo;
use crate::protocol::{
    cmd_flags, command, errno, io_flags, record_flags, CmdHeader, DnetAddr, FileInfo, IoAttr,
    IO_ATTR_SIZE_BYTES,
};
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

/// Close a single-key transaction: count it, then the final ack or the error.
pub(super) fn finish(
    shard: &Shard,
    header: &CmdHeader,
    payload_bytes: usize,
    result: Result<(), i32>,
    frames: &mut impl Replies,
) {
    if result.is_ok() && matches!(header.cmd, command::WRITE | command::READ) {
        let data_bytes = payload_bytes.saturating_sub(IO_ATTR_SIZE_BYTES) as u64;
        shard.counters().note_key(&header.id, data_bytes);
    }
    if result.is_ok() && header.flags & cmd_flags::NEED_ACK == 0 {
        return;
    }
    // The ack names the backend that served the key, as the original's did (also for an
    // error such as -ENOENT of a LOOKUP whose request said backend 0).
    let mut ack = *header;
    ack.backend_id = backend_id_of(shard, header);
    match result {
        Ok(()) => frames.ack(&ack, 0),
        Err(status) => {
            let counters = shard.counters();
            super::state::add_own(&counters.errors, 1);
            counters.stats.record_error(header.cmd, status);
            log_failure(header, status);
            frames.error(&ack, status);
        }
    }
}

/// Log a failed single-key request at the level its cause deserves: a missing key is the
/// client's business (DEBUG), a failing disk is the operator's (ERROR).
fn log_failure(header: &CmdHeader, status: i32) {
    let cmd = command::name(header.cmd).unwrap_or("?");
    let id = &header.id;
    match status {
        errno::ENOENT => tracing::debug!(cmd, id = %id.short_hex(), status, "no such key"),
        errno::EIO => tracing::error!(cmd, id = %id.short_hex(), status, "disk I/O error"),
        errno::ENOSPC => {
            tracing::error!(cmd, id = %id.short_hex(), status, "no space left on the backend")
        }
        _ => tracing::info!(cmd, id = %id.short_hex(), status, "request failed"),
    }
}

/// The log of the local backend serving `header` on this (owning) shard; counts the key.
pub(super) fn local_log(shard: &Shard, header: &CmdHeader) -> Result<Rc<ShardLog>, i32> {
    count_key_served(shard);
    backend_log(shard, header)
}

pub(super) fn count_key_served(shard: &Shard) {
    super::state::add_own(&shard.counters().keys_served, 1);
}

/// The log of the local backend serving `header` on this shard.
pub(super) fn backend_log(shard: &Shard, header: &CmdHeader) -> Result<Rc<ShardLog>, i32> {
    local_backend(shard, header)?.log().ok_or(errno::ENXIO)
}

/// The local backend serving `header` on this shard.
pub(super) fn local_backend<'a>(
    shard: &'a Shard,
    header: &CmdHeader,
) -> Result<&'a LocalBackend, i32> {
    let b = shard.backend_for(header)?;
    shard.backends.get(b).ok_or(errno::ENXIO)
}

/// The cache of the backend serving `header`, when `options.cache` is set.
pub(super) fn cache_of<'a>(shard: &'a Shard, header: &CmdHeader) -> Option<&'a CacheCell> {
    shard.node.config.options.cache.as_ref()?;
    local_backend(shard, header).ok()?.cache.as_ref()
}

pub(super) fn backend_id_of(shard: &Shard, header: &CmdHeader) -> i32 {
    shard
        .backend_for(header)
        .ok()
        .and_then(|b| shard.backends.get(b))
        .and_then(|b| i32::try_from(b.backend_id).ok())
        .unwrap_or(header.backend_id)
}

/// Append the LOOKUP / WRITE reply to `reply`: `dnet_addr` + `dnet_file_info` + the path with
/// its NUL (the layout of [`crate::protocol::LookupReply`]), encoded straight into the frame.
pub fn push_file_info(
    shard: &Shard,
    reply: &CmdHeader,
    info: &RecordInfo,
    frames: &mut impl Replies,
) {
    push_file_info_sized(shard, reply, info, info.size, frames);
}

/// [`push_file_info`] reporting `size` as the record's size.
fn push_file_info_sized(
    shard: &Shard,
    reply: &CmdHeader,
    info: &RecordInfo,
    size: u64,
    frames: &mut impl Replies,
) {
    let addr = shard.node.reply_addr();
    let fi = FileInfo {
        checksum: info.checksum.unwrap_or([0u8; 64]),
        record_flags: record_flags::on_wire(info.record_flags),
        size,
        offset: info.data_offset,
        mtime: info.timestamp,
    };
    let flen = i32::try_from(info.path.len().saturating_add(1)).unwrap_or(i32::MAX);
    let parts: [&[u8]; 4] = [
        &DnetAddr::from(addr).encode(),
        &fi.encode(flen),
        info.path.as_bytes(),
        &[0],
    ];
    frames.reply(reply, &parts, false);
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
