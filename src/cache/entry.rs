//! One cache entry and the sizes the cache reports: what a value is charged, when it
//! leaves the cache or goes to disk.

use crate::protocol::DnetTime;

/// Bytes charged per entry on top of its value's capacity: the slot, the index entry and
/// the event-set node.
pub const ENTRY_OVERHEAD_BYTES: u64 = 256;

/// One cached value and what the cache knows about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub data: Vec<u8>,
    pub timestamp: DnetTime,
    pub user_flags: u64,
    /// Unix seconds at which the entry leaves the cache (0: no lifetime).
    pub lifetime_s: u64,
    /// Unix seconds at which the entry is written to disk (0: clean).
    pub synctime_s: u64,
    /// When its lifetime ends, the entry is removed from disk too (CACHE_REMOVE_FROM_DISK).
    pub remove_from_disk: bool,
    /// Bumped on every change of the value, so a write-back can tell whether it wrote the
    /// latest one.
    pub generation: u64,
}

impl Entry {
    /// The earlier of the lifetime and the write-back time; 0 when neither is set.
    pub(super) fn event_s(&self) -> u64 {
        match (self.lifetime_s, self.synctime_s) {
            (0, s) => s,
            (l, 0) => l,
            (l, s) => l.min(s),
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.synctime_s != 0
    }
}

/// Sizes the monitor reports (the original's `cache_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlruStats {
    pub objects: u64,
    pub size_bytes: u64,
    pub removing_objects: u64,
    pub removing_bytes: u64,
    pub pages_sizes: Vec<u64>,
    pub pages_max_sizes: Vec<u64>,
}

/// The entry would not fit in any page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {charged_bytes}-byte entry is larger than every cache page")]
pub struct TooLarge {
    pub charged_bytes: u64,
}

/// The charge of an entry holding `data`.
pub fn charge_of(data: &Vec<u8>) -> u64 {
    data.capacity() as u64 + ENTRY_OVERHEAD_BYTES
}
