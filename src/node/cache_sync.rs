//! The cache's write-back loop on each shard: once a second (2.26's period), or at once when
//! an overflow pushed dirty entries out, it writes the due dirty entries to disk with their
//! timestamps and user flags, then drops entries whose lifetime has ended (removing them
//! from disk too when they were written with CACHE_REMOVE_FROM_DISK). A clean shutdown
//! writes every dirty entry before the final sync.

use super::cache_cell::CacheCell;
use super::shard::{Shard, ShardLog};
use crate::blob::BlobError;
use crate::cache::{now_s, WriteBack};
use bytes::Bytes;
use std::rc::Rc;
use std::time::Duration;

/// How often the write-back loop looks for due entries (2.26 looked once a second).
const WRITE_BACK_PERIOD: Duration = Duration::from_secs(1);

/// Write one dirty value to disk and settle the entry.
pub(super) async fn write_back(cell: &CacheCell, log: &ShardLog, mut wb: WriteBack, now: u64) {
    let io = wb.io();
    let data = Bytes::from(std::mem::take(&mut wb.data));
    let written = match log.write(&io, data).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(id = %wb.id.short_hex(), "cache write-back failed: {e}");
            false
        }
    };
    let remove_again = match cell.cache.try_borrow_mut() {
        Ok(mut c) => c.end_write_back(&wb, written, now),
        Err(_) => false,
    };
    if remove_again {
        let _ = log.remove(&wb.id).await;
    }
}

/// Write back what is due (or, with `all`, everything dirty), then drop expired entries.
async fn run_due(shard: &Shard, backend: usize, all: bool) {
    let Some(b) = shard.backends.get(backend) else {
        return;
    };
    let (Some(cell), Some(log)) = (b.cache.as_ref(), b.log()) else {
        return;
    };
    let now = now_s();
    let ids = match cell.cache.try_borrow_mut() {
        Ok(mut c) => {
            let mut ids = c.take_evicted_dirty();
            ids.extend(if all { c.dirty_ids() } else { c.due(now) });
            ids
        }
        Err(_) => return,
    };
    for id in ids {
        let wb = cell
            .cache
            .try_borrow_mut()
            .ok()
            .and_then(|mut c| c.begin_write_back(&id, now, all));
        if let Some(wb) = wb {
            write_back(cell, &log, wb, now).await;
        }
        let expired = cell
            .cache
            .try_borrow_mut()
            .ok()
            .and_then(|mut c| c.expire(&id, now));
        if expired == Some(true) {
            if let Err(e) = log.remove(&id).await {
                if !matches!(e, BlobError::NotFound) {
                    tracing::error!(id = %id.short_hex(), "removing an expired cache entry from disk: {e}");
                }
            }
        }
    }
}

/// Start each cached backend's write-back loop on this shard.
pub fn spawn_write_back(shard: &Rc<Shard>) {
    for (i, b) in shard.backends.iter().enumerate() {
        if b.cache.is_none() {
            continue;
        }
        let s = shard.clone();
        crate::runtime::spawn(async move {
            while !s.is_shutting_down() {
                if let Some(cell) = s.backends.get(i).and_then(|b| b.cache.as_ref()) {
                    let _ = crate::runtime::timeout(WRITE_BACK_PERIOD, cell.woken()).await;
                }
                if s.is_shutting_down() {
                    break;
                }
                run_due(&s, i, false).await;
            }
        });
    }
}

/// Write every dirty entry to disk (clean shutdown), after the write-backs in flight
/// (bounded: 10 s).
pub async fn flush_all(shard: &Shard) {
    for i in 0..shard.backends.len() {
        let Some(cell) = shard.backends.get(i).and_then(|b| b.cache.as_ref()) else {
            continue;
        };
        for _ in 0..1000 {
            if !cell.cache.try_borrow().is_ok_and(|c| c.is_syncing()) {
                break;
            }
            crate::runtime::sleep(Duration::from_millis(10)).await;
        }
        run_due(shard, i, true).await;
    }
}
