//! The cache's side of READ, WRITE, LOOKUP and DEL on the owning shard, and its write-back
//! loop. Only backends with a cache (`options.cache`) come here: [`super::io_ops`] asks
//! `LocalBackend::cache` first, so a node without a cache pays one `None` check per request.
//!
//! The cache itself ([`crate::cache::ShardCache`]) decides; this module does the disk work
//! it asks for and writes the replies. A WRITE or LOOKUP answered from the cache carries a
//! `dnet_file_info` with flen 0 followed by one NUL byte, no checksum, offset 0 and the
//! entry's timestamp, as 2.26 sends them.

pub use super::cache_cell::CacheCell;
use super::io_common::{backend_id_of, push_file_info};
use super::io_read::read_reply_io;
use super::reply::Replies;
use super::shard::{Shard, ShardLog};
use crate::blob::{BlobError, ValueMeta};
use crate::cache::{now_s, Entry, ReadMiss, ShardCache, WritePlan};
use crate::protocol::{
    cmd_flags, errno, io_flags, CmdHeader, DnetAddr, DnetTime, FileInfo, IoAttr,
};

/// Answer a READ of a cached key; `None` when the key is not cached.
pub fn read_hit(
    cell: &CacheCell,
    header: &CmdHeader,
    io: &IoAttr,
    frames: &mut impl Replies,
) -> Option<Result<(), i32>> {
    read_entry(cell, header, io, true, frames)
}

/// Answer a READ from the entry of a cached key (with `hit`, moving it one page hotter).
fn read_entry(
    cell: &CacheCell,
    header: &CmdHeader,
    io: &IoAttr,
    hit: bool,
    frames: &mut impl Replies,
) -> Option<Result<(), i32>> {
    let result = {
        let mut cache = cell.cache.try_borrow_mut().ok()?;
        let entry = cache.get(&header.id, hit)?;
        let result = push_entry(header, io, entry, frames);
        cache.publish();
        result
    };
    cell.kick_if_evicted();
    Some(result)
}

/// What a READ on the receive path does with the cache.
pub enum NowRead {
    /// Answered from the cache (or refused, CACHE_ONLY on a miss).
    Done(Result<(), i32>),
    /// Not cached: read from disk as without a cache.
    Disk,
    /// Not cached and to be read into the cache: run it on a task.
    Task,
}

/// A READ on the receive path (see [`NowRead`]).
pub fn read_now(
    cell: &CacheCell,
    header: &CmdHeader,
    io: &IoAttr,
    frames: &mut impl Replies,
) -> NowRead {
    if let Some(result) = read_hit(cell, header, io, frames) {
        return NowRead::Done(result);
    }
    match ShardCache::read_miss(io.flags) {
        ReadMiss::Disk => NowRead::Disk,
        ReadMiss::NotFound => NowRead::Done(Err(errno::ENOENT)),
        ReadMiss::Populate => NowRead::Task,
    }
}

/// READ through the cache on a task (see [`read`]), else from disk.
pub async fn read_or_disk(
    cell: &CacheCell,
    log: &ShardLog,
    header: &CmdHeader,
    payload: &[u8],
    frames: &mut super::reply::Frames,
) -> Result<(), i32> {
    let io = IoAttr::decode(payload).map_err(|e| super::reply::bad_payload("io_attr", e))?;
    match read(cell, log, header, &io, frames).await {
        Some(result) => result,
        None => super::io_read::read(log, header, payload, frames).await,
    }
}

/// The READ reply from an entry: the requested part of its value.
fn push_entry(
    header: &CmdHeader,
    io: &IoAttr,
    entry: &Entry,
    frames: &mut impl Replies,
) -> Result<(), i32> {
    let len = entry.data.len() as u64;
    if io.offset > len || (io.offset == len && len != 0) {
        return Err(errno::EINVAL);
    }
    let rest = len - io.offset;
    let size = if io.size == 0 {
        rest
    } else {
        io.size.min(rest)
    };
    let start = usize::try_from(io.offset).map_err(|_| errno::EINVAL)?;
    let end = usize::try_from(io.offset + size).map_err(|_| errno::EINVAL)?;
    let value = entry.data.get(start..end).ok_or(errno::EINVAL)?;
    let meta = ValueMeta {
        size: len,
        timestamp: entry.timestamp,
        user_flags: entry.user_flags,
        record_flags: 0,
    };
    let reply_io = read_reply_io(header, io, &meta, value);
    frames.reply(header, &[&reply_io.encode(), value], false);
    Ok(())
}

/// READ through the cache on a task: a hit, or a miss that populates or fails. `None`
/// when the read goes to disk as without a cache.
pub async fn read(
    cell: &CacheCell,
    log: &ShardLog,
    header: &CmdHeader,
    io: &IoAttr,
    frames: &mut impl Replies,
) -> Option<Result<(), i32>> {
    if let Some(result) = read_hit(cell, header, io, frames) {
        return Some(result);
    }
    match ShardCache::read_miss(io.flags) {
        ReadMiss::Disk => None,
        ReadMiss::NotFound => Some(Err(errno::ENOENT)),
        ReadMiss::Populate => {
            let verify = io.flags & io_flags::NOCSUM == 0;
            let whole = match log.read(&header.id, 0, 0, verify).await {
                Ok(whole) => whole,
                Err(e) => return Some(Err(e.errno())),
            };
            let meta = whole.info.meta();
            let value = whole.value().to_vec();
            let cached =
                cell.cache.try_borrow_mut().ok().is_some_and(|mut c| {
                    c.populate(header.id, value, meta.timestamp, meta.user_flags)
                });
            if cached {
                // A populated entry starts in the coldest page, like a new write.
                if let Some(result) = read_entry(cell, header, io, false, frames) {
                    return Some(result);
                }
            }
            // Too large to cache: answer from disk.
            None
        }
    }
}

/// Apply a WRITE to the cache at once. `None`: it goes to disk as without a cache;
/// `Some(None)`: it needs the value on disk first (run [`write`] on a task).
pub fn write_now(
    shard: &Shard,
    cell: &CacheCell,
    header: &mut CmdHeader,
    io: &IoAttr,
    data: &[u8],
    frames: &mut impl Replies,
) -> Option<Option<Result<(), i32>>> {
    let plan = cell
        .cache
        .try_borrow_mut()
        .ok()?
        .write(&header.id, io, data, None, now_s());
    finish_write(shard, cell, header, io, plan, frames)
}

/// Apply a WRITE to the cache on a task, reading the value on disk first when the write
/// changes part of a key not cached. `None`: it goes to disk as without a cache.
pub async fn write(
    shard: &Shard,
    cell: &CacheCell,
    log: &ShardLog,
    header: &mut CmdHeader,
    io: &IoAttr,
    data: &[u8],
    frames: &mut impl Replies,
) -> Option<Result<(), i32>> {
    if let Some(done) = write_now(shard, cell, header, io, data, frames) {
        if let Some(result) = done {
            return Some(result);
        }
        let base = match log.read(&header.id, 0, 0, true).await {
            Ok(whole) => {
                let meta = whole.info.meta();
                Some(Entry {
                    data: whole.value().to_vec(),
                    timestamp: meta.timestamp,
                    user_flags: meta.user_flags,
                    ..Entry::default()
                })
            }
            Err(BlobError::NotFound) => None,
            Err(e) => return Some(Err(e.errno())),
        };
        let plan =
            cell.cache
                .try_borrow_mut()
                .ok()?
                .write(&header.id, io, data, Some(base), now_s());
        return finish_write(shard, cell, header, io, plan, frames).flatten();
    }
    None
}

fn finish_write(
    shard: &Shard,
    cell: &CacheCell,
    header: &mut CmdHeader,
    io: &IoAttr,
    plan: WritePlan,
    frames: &mut impl Replies,
) -> Option<Option<Result<(), i32>>> {
    cell.kick_if_evicted();
    match plan {
        WritePlan::Disk => None,
        WritePlan::NeedsBase => Some(None),
        WritePlan::Failed(status) => Some(Some(Err(status))),
        WritePlan::Cached { size, timestamp } => {
            if io.flags & io_flags::WRITE_NO_FILE_INFO != 0 {
                header.flags |= cmd_flags::NEED_ACK;
            } else {
                header.flags &= !cmd_flags::NEED_ACK;
                push_cache_file_info(shard, header, size, timestamp, frames);
            }
            Some(Some(Ok(())))
        }
    }
}

/// A `dnet_addr` + `dnet_file_info` (flen 0) + one NUL: the cache's WRITE/LOOKUP reply.
fn push_cache_file_info(
    shard: &Shard,
    header: &CmdHeader,
    size: u64,
    mtime: DnetTime,
    frames: &mut impl Replies,
) {
    let mut reply = *header;
    reply.backend_id = backend_id_of(shard, header);
    let addr = shard.node.reply_addr();
    let fi = FileInfo {
        size,
        mtime,
        ..FileInfo::default()
    };
    frames.reply(
        &reply,
        &[&DnetAddr::from(addr).encode(), &fi.encode(0), &[0]],
        false,
    );
}

/// LOOKUP of a cached key: the disk's answer with the entry's timestamp, or (not on disk)
/// a file info of size 0. `None` when the key is not cached or NOCACHE is set.
pub async fn lookup(
    shard: &Shard,
    cell: &CacheCell,
    log: &ShardLog,
    header: &CmdHeader,
    frames: &mut impl Replies,
) -> Option<Result<(), i32>> {
    if header.flags & cmd_flags::NOCACHE != 0 {
        return None;
    }
    let timestamp = cell
        .cache
        .try_borrow()
        .ok()?
        .slru()
        .peek(&header.id)?
        .timestamp;
    let checksum = header.flags & cmd_flags::CHECKSUM != 0;
    match log.lookup(&header.id, checksum).await {
        Ok(mut info) => {
            info.timestamp = timestamp;
            let mut reply = *header;
            reply.backend_id = backend_id_of(shard, header);
            push_file_info(shard, &reply, &info, frames);
        }
        Err(_) => push_cache_file_info(shard, header, 0, timestamp, frames),
    }
    Some(Ok(()))
}

/// DEL through the cache: drop the entry, then remove from disk unless CACHE_ONLY.
pub async fn remove(
    cell: &CacheCell,
    log: &ShardLog,
    id: &crate::key::RawId,
    flags: u32,
) -> Result<(), i32> {
    let plan = cell
        .cache
        .try_borrow_mut()
        .map_err(|_| errno::EIO)?
        .remove(id, flags);
    if let Some(wb) = plan.write_back {
        super::cache_sync::write_back(cell, log, wb, now_s()).await;
    }
    let mut result = if plan.was_cached {
        Ok(())
    } else {
        Err(errno::ENOENT)
    };
    if plan.from_disk {
        match log.remove(id).await {
            Ok(()) => result = Ok(()),
            Err(BlobError::NotFound) => {}
            Err(e) => result = Err(e.errno()),
        }
    }
    result
}
