//! Whole-value reads, writes and removals of table keys on the shard that owns them (the
//! local backend of the request's group), for the index handlers.

use super::super::shard::{Shard, ShardLog};
use crate::key::RawId;
use crate::protocol::{errno, io_flags, CmdHeader, DnetTime, IoAttr};
use bytes::Bytes;
use std::rc::Rc;

/// The log of `group`'s backend that holds `id` on this shard.
fn log_for(shard: &Shard, group: u32, id: &RawId) -> Result<Rc<ShardLog>, i32> {
    let header = CmdHeader {
        id: *id,
        group_id: group,
        ..CmdHeader::default()
    };
    let b = shard.backend_for(&header)?;
    shard
        .backends
        .get(b)
        .and_then(|b| b.log())
        .ok_or(errno::ENXIO)
}

/// The whole value of `id`, or `None` when there is none.
pub async fn read(shard: &Shard, group: u32, id: &RawId) -> Result<Option<Vec<u8>>, i32> {
    let log = log_for(shard, group, id)?;
    match log.read(id, 0, 0, true).await {
        Ok(outcome) => Ok(Some(outcome.data)),
        Err(e) if e.errno() == errno::ENOENT => Ok(None),
        Err(e) => Err(e.errno()),
    }
}

/// Store `data` as the whole value of `id`, without a data checksum (as the original stores
/// its tables: record flags NOCSUM).
pub async fn write(shard: &Shard, group: u32, id: &RawId, data: Vec<u8>) -> Result<(), i32> {
    if shard.node.is_read_only() {
        return Err(errno::EROFS);
    }
    let log = log_for(shard, group, id)?;
    let io = IoAttr {
        parent: *id,
        id: *id,
        size: data.len() as u64,
        flags: io_flags::NOCSUM,
        timestamp: DnetTime::now(),
        ..IoAttr::default()
    };
    log.write(&io, Bytes::from(data))
        .await
        .map(|_| ())
        .map_err(|e| e.errno())
}

/// Remove `id`.
pub async fn remove(shard: &Shard, group: u32, id: &RawId) -> Result<(), i32> {
    if shard.node.is_read_only() {
        return Err(errno::EROFS);
    }
    let log = log_for(shard, group, id)?;
    log.remove(id).await.map_err(|e| e.errno())
}
