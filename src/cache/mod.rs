//! The in-memory cache of Elliptics 2.26 (`options.cache`), one part per shard thread and
//! backend: the shard that owns a key owns its cache entry, so there is no lock.
//!
//! This module decides what a request does to the cache ([`ShardCache`]); the node does the
//! disk work it asks for (reading a value to populate an entry, writing dirty entries back,
//! removing from disk). The rules are 2.26's:
//! - WRITE: a key already cached is written in the cache, whatever its flags; a key not
//!   cached is written in the cache only with the CACHE ioflag. A cached write is dirty and
//!   goes to disk `sync_timeout` seconds later, unless CACHE_ONLY (never on disk).
//!   `io_attr.start` > 0 gives the entry a lifetime in seconds; when it ends the entry is
//!   written back if dirty and leaves the cache (and the disk too when the write carried
//!   CACHE_REMOVE_FROM_DISK). An APPEND or a write at an offset to a key not cached starts
//!   from the value on disk.
//! - READ: a cached key is answered from the cache, whatever the flags. A key not cached is
//!   read from disk into the cache with CACHE, answered -ENOENT with CACHE|CACHE_ONLY, and
//!   otherwise read from disk as without a cache.
//! - DEL: drops the entry and removes the key from disk, except under CACHE_ONLY (then the
//!   disk is left alone unless the entry was written with CACHE_REMOVE_FROM_DISK).

pub mod entry;
pub mod slru;
pub mod stats;

pub use slru::{Entry, Slru, SlruStats, TooLarge};
pub use stats::{cache_json, CacheCounters};

use crate::config::CacheSettings;
use crate::key::RawId;
use crate::protocol::{errno, io_flags, DnetTime, IoAttr};
use sha2::{Digest, Sha512};
use std::collections::HashSet;
use std::sync::Arc;

/// Seconds since the Unix epoch.
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs())
}

/// What a WRITE does with the cache.
#[derive(Debug, PartialEq, Eq)]
pub enum WritePlan {
    /// Not a cache write: serve it from disk as without a cache.
    Disk,
    /// Read the whole value from disk and call [`ShardCache::write`] again with it.
    NeedsBase,
    /// Written in the cache: reply with this size and timestamp.
    Cached { size: u64, timestamp: DnetTime },
    /// Refused with this errno.
    Failed(i32),
}

/// What a READ miss does.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadMiss {
    /// Read from disk as without a cache.
    Disk,
    /// Read from disk, put the value in the cache ([`ShardCache::populate`]), answer it.
    Populate,
    /// Answer -ENOENT.
    NotFound,
}

/// What a DEL did in the cache and what is left for the disk.
#[derive(Debug, PartialEq, Eq)]
pub struct RemovePlan {
    /// The key was cached.
    pub was_cached: bool,
    /// Remove it from disk too.
    pub from_disk: bool,
    /// A dirty entry dropped under CACHE_ONLY: written to disk first (as 2.26 does).
    pub write_back: Option<WriteBack>,
}

/// A dirty entry's value on its way to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBack {
    pub id: RawId,
    pub data: Vec<u8>,
    pub timestamp: DnetTime,
    pub user_flags: u64,
    generation: u64,
}

impl WriteBack {
    /// The io_attr of the disk write.
    pub fn io(&self) -> IoAttr {
        IoAttr {
            parent: self.id,
            id: self.id,
            size: self.data.len() as u64,
            timestamp: self.timestamp,
            user_flags: self.user_flags,
            ..IoAttr::default()
        }
    }
}

/// One shard's cache of one backend.
#[derive(Debug)]
pub struct ShardCache {
    slru: Slru,
    sync_timeout_s: u64,
    counters: Arc<CacheCounters>,
    /// Keys whose write-back is in flight.
    syncing: HashSet<RawId>,
    /// Keys removed from disk while their write-back was in flight: removed again after.
    removed_while_syncing: HashSet<RawId>,
}

impl ShardCache {
    /// This shard's part (`size / parts`) of the cache `settings` describe.
    pub fn new(settings: &CacheSettings, parts: usize, counters: Arc<CacheCounters>) -> Self {
        let size_bytes = settings.size_bytes / (parts.max(1) as u64);
        let cache = Self {
            slru: Slru::new(size_bytes, &settings.pages_proportions),
            sync_timeout_s: settings.sync_timeout_s,
            counters,
            syncing: HashSet::new(),
            removed_while_syncing: HashSet::new(),
        };
        cache.counters.publish(&cache.slru.stats());
        cache
    }

    /// Publish the sizes to the monitor.
    pub fn publish(&self) {
        self.counters.publish_from(&self.slru);
    }

    pub fn slru(&self) -> &Slru {
        &self.slru
    }

    /// The cached entry of `id`, counted as a hit (moved one page hotter) with `hit`.
    pub fn get(&mut self, id: &RawId, hit: bool) -> Option<&Entry> {
        if hit {
            self.slru.get(id)
        } else {
            self.slru.peek(id)
        }
    }

    /// What a READ of `id` that missed the cache does, by its ioflags.
    pub fn read_miss(io_flags_of_request: u32) -> ReadMiss {
        let cache = io_flags_of_request & io_flags::CACHE != 0;
        let only = io_flags_of_request & io_flags::CACHE_ONLY != 0;
        match (cache, only) {
            (true, false) => ReadMiss::Populate,
            (true, true) => ReadMiss::NotFound,
            (false, _) => ReadMiss::Disk,
        }
    }

    /// Put a value read from disk in the cache (clean). False when it is too large to cache.
    pub fn populate(
        &mut self,
        id: RawId,
        data: Vec<u8>,
        timestamp: DnetTime,
        user_flags: u64,
    ) -> bool {
        if self.slru.contains(&id) {
            return true;
        }
        let entry = Entry {
            data,
            timestamp,
            user_flags,
            ..Entry::default()
        };
        self.slru.insert(id, entry).is_ok()
    }

    /// Apply a WRITE of `id` (the request's key) to the cache. `base` is the value on disk
    /// when the write asked for it ([`WritePlan::NeedsBase`]; `Some(None)` when the key is
    /// not on disk).
    pub fn write(
        &mut self,
        id: &RawId,
        io: &IoAttr,
        data: &[u8],
        base: Option<Option<Entry>>,
        now: u64,
    ) -> WritePlan {
        let cache = io.flags & io_flags::CACHE != 0;
        let only = io.flags & io_flags::CACHE_ONLY != 0;
        let append = io.flags & io_flags::APPEND != 0;
        let exists = self.slru.contains(id);
        if !exists && !cache {
            return WritePlan::Disk;
        }
        if !exists && !only && (append || io.offset != 0) && base.is_none() {
            return WritePlan::NeedsBase;
        }
        let Ok(offset) = usize::try_from(io.offset) else {
            return WritePlan::Failed(errno::EINVAL);
        };
        let Some(end) = offset.checked_add(data.len()) else {
            return WritePlan::Failed(errno::EINVAL);
        };
        if io.flags & io_flags::COMPARE_AND_SWAP != 0 {
            let current = match (self.slru.peek(id), &base) {
                (Some(e), _) => Some(&e.data),
                (None, Some(Some(b))) => Some(&b.data),
                _ => None,
            };
            if let Some(current) = current.filter(|c| !c.is_empty()) {
                if Sha512::digest(current).as_slice() != io.parent.0.as_slice() {
                    return WritePlan::Failed(errno::EBADFD);
                }
            }
        }
        let current_len = match (self.slru.peek(id), &base) {
            (Some(e), _) => e.data.len(),
            (None, Some(Some(b))) => b.data.len(),
            _ => 0,
        };
        let new_len = if append {
            current_len.saturating_add(data.len())
        } else {
            end
        };
        let charged = (new_len as u64).saturating_add(slru::ENTRY_OVERHEAD_BYTES);
        if !self.slru.fits(charged) {
            // Too large for memory: a cache-only write has nowhere to go; another write
            // of a key not cached goes to disk as without a cache.
            if only {
                return WritePlan::Failed(errno::ENOSPC);
            }
            if !exists {
                return WritePlan::Disk;
            }
        }
        if !exists {
            let mut entry = base.flatten().unwrap_or_default();
            entry.synctime_s = 0;
            entry.lifetime_s = 0;
            entry.remove_from_disk = io.flags & io_flags::CACHE_REMOVE_FROM_DISK != 0;
            if self.slru.insert(*id, entry).is_err() {
                return if only {
                    WritePlan::Failed(errno::ENOSPC)
                } else {
                    WritePlan::Disk
                };
            }
        }
        let timestamp = if io.timestamp.is_empty() {
            DnetTime::now()
        } else {
            io.timestamp
        };
        let sync_at = now.saturating_add(self.sync_timeout_s).max(1);
        let lifetime_s = io.start;
        self.slru.update(id, exists, |e| {
            e.data.reserve_exact(new_len.saturating_sub(e.data.len()));
            if append {
                e.data.extend_from_slice(data);
            } else {
                e.data.resize(end, 0);
                e.data[offset..end].copy_from_slice(data);
            }
            if e.synctime_s == 0 && !only {
                e.synctime_s = sync_at;
            }
            if lifetime_s != 0 {
                e.lifetime_s = now.saturating_add(lifetime_s);
            }
            e.timestamp = timestamp;
            e.user_flags = io.user_flags;
        });
        self.publish();
        WritePlan::Cached {
            size: data.len() as u64,
            timestamp,
        }
    }

    /// Apply a DEL of `id` with the request's ioflags.
    pub fn remove(&mut self, id: &RawId, flags: u32) -> RemovePlan {
        let only = flags & io_flags::CACHE_ONLY != 0;
        let mut plan = RemovePlan {
            was_cached: false,
            from_disk: !only,
            write_back: None,
        };
        if let Some(entry) = self.slru.remove(id) {
            plan.was_cached = true;
            plan.from_disk |= entry.remove_from_disk;
            if entry.is_dirty() && only {
                plan.write_back = Some(WriteBack {
                    id: *id,
                    generation: entry.generation,
                    data: entry.data,
                    timestamp: entry.timestamp,
                    user_flags: entry.user_flags,
                });
            }
        }
        if plan.from_disk && self.syncing.contains(id) {
            self.removed_while_syncing.insert(*id);
        }
        self.publish();
        plan
    }

    /// Ids with a lifetime or write-back time at or before `now`.
    pub fn due(&self, now: u64) -> Vec<RawId> {
        self.slru.due(now)
    }

    /// Whether a write-back is in flight.
    pub fn is_syncing(&self) -> bool {
        !self.syncing.is_empty()
    }

    /// Every dirty id (the final write-back at shutdown).
    pub fn dirty_ids(&self) -> Vec<RawId> {
        self.slru.dirty_ids()
    }

    /// Dirty entries evicted since the last call.
    pub fn take_evicted_dirty(&mut self) -> Vec<RawId> {
        self.slru.take_evicted_dirty()
    }

    pub fn has_evicted_dirty(&self) -> bool {
        self.slru.has_evicted_dirty()
    }

    /// Start writing `id` back if it is dirty and due (its write-back time or lifetime
    /// passed, or it was evicted), or whenever dirty with `force`: the entry is clean from
    /// now on (a write meanwhile makes it dirty again).
    pub fn begin_write_back(&mut self, id: &RawId, now: u64, force: bool) -> Option<WriteBack> {
        let removing = self.slru.is_removing(id);
        let e = self.slru.peek(id)?;
        let expired = e.lifetime_s != 0 && e.lifetime_s <= now;
        if !e.is_dirty() || !(force || removing || expired || e.synctime_s <= now) {
            return None;
        }
        let wb = WriteBack {
            id: *id,
            data: e.data.clone(),
            timestamp: e.timestamp,
            user_flags: e.user_flags,
            generation: e.generation,
        };
        let lifetime_s = e.lifetime_s;
        self.slru.set_times(id, lifetime_s, 0);
        self.syncing.insert(*id);
        Some(wb)
    }

    /// A write-back ended. Returns whether the key must be removed from disk again (it
    /// was removed while the write was in flight). A failed write leaves the entry dirty;
    /// an evicted entry whose value did not change meanwhile leaves the cache.
    pub fn end_write_back(&mut self, wb: &WriteBack, written: bool, now: u64) -> bool {
        self.syncing.remove(&wb.id);
        let remove_again = self.removed_while_syncing.remove(&wb.id);
        if let Some(e) = self.slru.peek(&wb.id) {
            let (lifetime_s, dirty) = (e.lifetime_s, e.is_dirty());
            if !written && !dirty {
                let retry_at = now.saturating_add(self.sync_timeout_s.max(1));
                self.slru.set_times(&wb.id, lifetime_s, retry_at);
            } else if e.generation == wb.generation && self.slru.is_removing(&wb.id) {
                self.slru.remove(&wb.id);
            }
        }
        self.publish();
        remove_again && written
    }

    /// Drop `id` if its lifetime has ended and it is clean; returns whether its disk copy
    /// goes too (CACHE_REMOVE_FROM_DISK), or `None` when nothing was dropped.
    pub fn expire(&mut self, id: &RawId, now: u64) -> Option<bool> {
        let e = self.slru.peek(id)?;
        if e.lifetime_s == 0 || e.lifetime_s > now || e.is_dirty() || self.syncing.contains(id) {
            return None;
        }
        let entry = self.slru.remove(id)?;
        self.publish();
        Some(entry.remove_from_disk)
    }
}

#[cfg(test)]
mod tests;
