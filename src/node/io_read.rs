//! READ on the owning shard: at once from the page-cache map when it can (the value copied
//! once, into its reply), else from the log; the reply's io_attr. READs of large values
//! stream instead ([`super::io_stream`]).

use super::cache_io;
use super::io_ops::{count_key_served, finish, local_backend};
use super::reply::{Frames, Replies};
use super::shard::{Shard, ShardLog};
use crate::blob::{ReadOutcome, ValueMeta};
use crate::key::RawId;
use crate::protocol::{cmd_flags, io_flags, record_flags, CmdHeader, IoAttr};
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
