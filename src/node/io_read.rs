//! READ from the owning shard's log, and the READ reply (its io_attr, then the bytes). The
//! READ that finishes at once from the page-cache map, consulting the cache first, is
//! [`super::io_ops::read_now`], above both this and [`super::cache_io`]; READs of large
//! values stream instead ([`super::io_stream`]).

use super::reply::{Frames, Replies};
use super::shard::ShardLog;
use crate::blob::{ReadOutcome, ValueMeta};
use crate::key::RawId;
use crate::protocol::{io_flags, record_flags, CmdHeader, IoAttr};
use bytes::Bytes;
use sha2::{Digest, Sha512};

pub(super) async fn read(
    log: &ShardLog,
    header: &CmdHeader,
    payload: &[u8],
    frames: &mut Frames,
) -> Result<(), i32> {
    let io = IoAttr::decode(payload).map_err(|e| super::reply::bad_payload("io_attr", e))?;
    let verify = io.flags & io_flags::NOCSUM == 0;
    let outcome = log
        .read(&header.id, io.offset, io.size, verify)
        .await
        .map_err(|e| e.errno())?;
    push_read_reply(header, &io, outcome, frames);
    Ok(())
}

/// The io_attr of a READ reply: the request's, with the value's size, total size,
/// timestamp and flags.
pub(super) fn read_reply_io(
    header: &CmdHeader,
    io: &IoAttr,
    info: &ValueMeta,
    value: &[u8],
) -> IoAttr {
    let mut reply_io = *io;
    reply_io.id = header.id;
    reply_io.size = value.len() as u64;
    reply_io.total_size = info.size;
    reply_io.timestamp = info.timestamp;
    reply_io.user_flags = info.user_flags;
    reply_io.record_flags = record_flags::on_wire(info.record_flags);
    if io.flags & io_flags::CHECKSUM != 0 {
        reply_io.parent = RawId(Sha512::digest(value).into());
    }
    reply_io
}

/// The READ reply: its io_attr, then the bytes (a part of their own, not copied).
pub(super) fn push_read_reply(
    header: &CmdHeader,
    io: &IoAttr,
    outcome: ReadOutcome,
    frames: &mut Frames,
) {
    let reply_io = read_reply_io(header, io, &outcome.info.meta(), outcome.value());
    frames.reply_with_tail(header, &reply_io.encode(), Bytes::from(outcome.data), false);
}
