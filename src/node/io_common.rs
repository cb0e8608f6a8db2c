//! What every single-key IO command on the owning shard shares, below the commands
//! themselves ([`super::io_ops`], [`super::io_read`], [`super::io_multi`],
//! [`super::cache_io`]): the local backend serving a request and its log or cache, the
//! closing of a transaction (counters, the ack or the error, and its log line), the
//! backend id a reply names, and the LOOKUP / WRITE file-info reply.

use super::cache_cell::CacheCell;
use super::reply::Replies;
use super::shard::{LocalBackend, Shard, ShardLog};
use crate::blob::RecordInfo;
use crate::protocol::{
    cmd_flags, command, errno, record_flags, CmdHeader, DnetAddr, FileInfo, IO_ATTR_SIZE_BYTES,
};
use std::rc::Rc;

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
pub(super) fn push_file_info_sized(
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
