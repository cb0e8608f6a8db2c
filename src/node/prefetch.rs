//! Cache hints for the requests of one receive. A pipelining client sends many READs and
//! WRITEs in one segment; each key's index entry and record is likely a cache miss. Before
//! the frames are served one by one, every key's index entry is hinted, then every record
//! (whose place the now-loading entries give), so the misses overlap instead of each
//! request waiting for its own. A receive of one request gets no hints, nor keys another
//! shard owns (their requests cross to it).

use super::shard::Shard;
use crate::key::RawId;
use crate::protocol::{command, split_frame};
use crate::routing::shard_of;

/// Requests hinted per receive at most.
const BATCH_MAX: usize = 64;

/// Hint the READ and WRITE keys of the whole frames at the front of `bytes`. `keys` is
/// scratch space kept by the connection.
pub fn hint_batch(
    shard: &Shard,
    bytes: &[u8],
    limit: u64,
    keys: &mut Vec<(usize, RawId, Option<usize>)>,
) {
    keys.clear();
    let mut at = 0;
    while keys.len() < BATCH_MAX {
        let Some(Ok((frame, used))) = bytes.get(at..).map(|rest| split_frame(rest, limit)) else {
            break;
        };
        at += used;
        let h = &frame.header;
        let here = shard_of(&h.id, shard.node.shard_count) == shard.index;
        if here && matches!(h.cmd, command::READ | command::WRITE) && !h.is_reply() {
            if let Ok(backend) = shard.backend_for(h) {
                keys.push((backend, h.id, None));
            }
        }
    }
    if keys.len() < 2 {
        return;
    }
    // Keys held by a backend's cache (bit per key) are served from it, not from the log.
    let mut cached: u64 = 0;
    for (n, (backend, id, hint)) in keys.iter_mut().enumerate() {
        let Some(b) = shard.backends.get(*backend) else {
            continue;
        };
        if let Some(cell) = &b.cache {
            if cell
                .cache
                .try_borrow()
                .is_ok_and(|c| c.slru().prefetch_slot(id))
            {
                cached |= 1 << n;
                continue;
            }
        }
        if let Some(log) = b.log() {
            *hint = log.prefetch_entry(id);
        }
    }
    for (n, (backend, id, hint)) in keys.iter().enumerate() {
        let Some(b) = shard.backends.get(*backend) else {
            continue;
        };
        if cached & (1 << n) != 0 {
            if let Some(Ok(c)) = b.cache.as_ref().map(|cell| cell.cache.try_borrow()) {
                c.slru().prefetch_value(id);
            }
        } else if let Some(log) = b.log() {
            log.prefetch_record(id, *hint);
        }
    }
}
