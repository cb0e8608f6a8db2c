//! The multi-key IO commands: BULK_READ, READ_RANGE and DEL_RANGE fan out to every shard
//! and gather the answers; each key is read or removed on its owning shard.

use super::cross;
use super::io_common::{backend_log, local_log};
use super::io_read::read;
use super::reply::{Frames, Replies};
use super::shard::Shard;
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, errno, io_flags, CmdHeader, IoAttr, IO_ATTR_SIZE_BYTES};
use crate::routing::shard_of;
use bytes::Bytes;
use std::rc::Rc;

/// BULK_READ: one io_attr (size = N x 208) then N io_attrs. Each found key gets its own READ
/// reply (MORE set); missing keys are skipped; a final ack closes the transaction. Keys are
/// read on their owning shards.
pub async fn bulk_read(shard: &Rc<Shard>, header: CmdHeader, payload: Bytes) -> Frames {
    let mut frames = Frames::new();
    let keys = match bulk_keys(&payload) {
        Ok(keys) => keys,
        Err(status) => {
            frames.error(&header, status);
            return frames;
        }
    };
    for io in keys {
        let mut h = header;
        h.cmd = command::READ;
        h.id = io.id;
        h.flags |= cmd_flags::NEED_ACK;
        let mut sub_payload = io;
        sub_payload.offset = 0;
        sub_payload.size = 0;
        let body = Bytes::copy_from_slice(&sub_payload.encode());
        let target = shard_of(&io.id, shard.node.shard_count);
        let sub = cross::call(shard, target, move |s| async move {
            let mut f = Frames::new();
            if let Ok(log) = local_log(&s, &h) {
                let _ = read(&log, &h, &body, &mut f).await;
            }
            f
        })
        .await;
        let sub = match sub {
            Ok(sub) => sub,
            Err(e) => return e.answer(&header),
        };
        for part in sub.parts {
            frames.push_raw(part);
        }
    }
    frames.ack(&header, 0);
    frames
}

fn bulk_keys(payload: &[u8]) -> Result<Vec<IoAttr>, i32> {
    let head = IoAttr::decode(payload).map_err(|e| super::reply::bad_payload("io_attr", e))?;
    let rest = payload.get(IO_ATTR_SIZE_BYTES..).ok_or(errno::EINVAL)?;
    if head.size != rest.len() as u64 || rest.len() % IO_ATTR_SIZE_BYTES != 0 {
        return Err(errno::EINVAL);
    }
    rest.chunks_exact(IO_ATTR_SIZE_BYTES)
        .map(|c| IoAttr::decode(c).map_err(|e| super::reply::bad_payload("io_attr", e)))
        .collect()
}

/// READ_RANGE / DEL_RANGE over [io.id, io.parent] on the local backend of the request's group:
/// keys are gathered from every shard, sorted, limited by start/num, then read or removed.
pub async fn range(shard: &Rc<Shard>, header: CmdHeader, payload: Bytes) -> Frames {
    let mut frames = Frames::new();
    let Ok(io) = IoAttr::decode(&payload) else {
        frames.error(&header, errno::EINVAL);
        return frames;
    };
    let mut keys: Vec<RawId> = Vec::new();
    for target in 0..shard.node.shard_count {
        let h = header;
        let part = cross::call(shard, target, move |s| async move {
            backend_log(&s, &h)
                .map(|log| log.keys_in_range(&io.id, &io.parent))
                .unwrap_or_default()
        })
        .await;
        let part: Vec<RawId> = match part {
            Ok(part) => part,
            Err(e) => return e.answer(&header),
        };
        keys.extend(part);
    }
    keys.sort_unstable();
    let start = usize::try_from(io.start).unwrap_or(usize::MAX);
    // A zero limit means no limit: a plain range remove sends start 0, num 0.
    let num = match io.num {
        0 => usize::MAX,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let selected: Vec<RawId> = keys.into_iter().skip(start).take(num).collect();
    let mut done = 0u64;
    for key in &selected {
        let mut h = header;
        h.id = *key;
        let target = shard_of(key, shard.node.shard_count);
        let is_read = header.cmd == command::READ_RANGE;
        let nodata = io.flags & io_flags::NODATA != 0;
        let sub = cross::call(shard, target, move |s| async move {
            let mut f = Frames::new();
            let Ok(log) = local_log(&s, &h) else {
                return (f, false);
            };
            if is_read {
                if nodata {
                    return (f, true);
                }
                let mut rh = h;
                rh.cmd = command::READ;
                rh.flags |= cmd_flags::NEED_ACK;
                let body = IoAttr {
                    id: h.id,
                    ..IoAttr::default()
                }
                .encode();
                let ok = read(&log, &rh, &body, &mut f).await.is_ok();
                (f, ok)
            } else {
                (f, log.remove(&h.id).await.is_ok())
            }
        })
        .await;
        let sub: (Frames, bool) = match sub {
            Ok(sub) => sub,
            Err(e) => return e.answer(&header),
        };
        if sub.1 {
            done += 1;
        }
        for part in sub.0.parts {
            frames.push_raw(part);
        }
    }
    let mut summary = IoAttr {
        id: io.id,
        parent: io.parent,
        num: done,
        ..IoAttr::default()
    };
    summary.flags = io.flags;
    frames.reply(&header, &[&summary.encode()], false);
    frames.ack(&header, 0);
    frames
}
