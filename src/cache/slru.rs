//! The segmented LRU of one shard's cache: entries keyed by id, each charged its value's
//! capacity plus a fixed overhead, kept in one of several pages (page 0 is the hottest).
//!
//! A new entry enters the coldest page; each hit moves it one page hotter. A page that
//! would overflow pushes its least recently used entries one page colder; the coldest page
//! evicts them. An evicted entry that is clean is dropped; a dirty one (written, not yet on
//! disk) leaves its page but stays findable, marked "removing", until the node has written
//! it back ([`Slru::take_evicted_dirty`]). Every entry with a lifetime or a write-back time
//! sits in an event set ordered by the earlier of the two ([`Slru::due`]).
//!
//! Nothing here is shared: the shard that owns the keys owns its `Slru`.

use crate::blob::key_hash::KeyHasher;
use crate::key::RawId;
use std::collections::{BTreeSet, HashMap};

pub use super::entry::{charge_of, Entry, SlruStats, TooLarge, ENTRY_OVERHEAD_BYTES};

mod pages;

const NIL: u32 = u32::MAX;
/// The page of an entry that was evicted while dirty and waits for its write-back.
const PAGE_REMOVING: usize = usize::MAX;
/// The page of an entry being moved (in no list).
const PAGE_UNLINKED: usize = usize::MAX - 1;

#[derive(Debug)]
struct Slot {
    id: RawId,
    entry: Entry,
    page: usize,
    prev: u32,
    next: u32,
    charged_bytes: u64,
    event_s: u64,
}

#[derive(Debug, Clone, Default)]
struct Page {
    head: u32,
    tail: u32,
    size_bytes: u64,
    max_bytes: u64,
}

/// A segmented LRU bounded by the sum of its pages' sizes.
#[derive(Debug)]
pub struct Slru {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    index: HashMap<RawId, u32, KeyHasher>,
    pages: Vec<Page>,
    events: BTreeSet<(u64, RawId)>,
    evicted_dirty: Vec<RawId>,
    objects: u64,
    size_bytes: u64,
    removing_objects: u64,
    removing_bytes: u64,
}

impl Slru {
    /// A cache of `size_bytes` split into pages by `proportions` (hottest first).
    pub fn new(size_bytes: u64, proportions: &[u64]) -> Self {
        let sum: u64 = proportions.iter().sum::<u64>().max(1);
        let pages = proportions
            .iter()
            .map(|p| Page {
                head: NIL,
                tail: NIL,
                size_bytes: 0,
                max_bytes: (u128::from(size_bytes) * u128::from(*p) / u128::from(sum)) as u64,
            })
            .collect::<Vec<_>>();
        let pages = if pages.is_empty() {
            vec![Page {
                head: NIL,
                tail: NIL,
                size_bytes: 0,
                max_bytes: size_bytes,
            }]
        } else {
            pages
        };
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::with_hasher(KeyHasher::random()),
            pages,
            events: BTreeSet::new(),
            evicted_dirty: Vec::new(),
            objects: 0,
            size_bytes: 0,
            removing_objects: 0,
            removing_bytes: 0,
        }
    }

    fn slot(&self, i: u32) -> Option<&Slot> {
        self.slots.get(i as usize).and_then(|s| s.as_ref())
    }

    fn slot_mut(&mut self, i: u32) -> Option<&mut Slot> {
        self.slots.get_mut(i as usize).and_then(|s| s.as_mut())
    }

    /// Start loading the slot of `id` (first step of a batch's hints); whether it is cached.
    pub fn prefetch_slot(&self, id: &RawId) -> bool {
        let Some(&i) = self.index.get(id) else {
            return false;
        };
        if let Some(slot) = self.slots.get(i as usize) {
            crate::io::prefetch::prefetch(slot);
        }
        true
    }

    /// Start loading what serving `id` touches once its slot is loaded: the value's first
    /// bytes and the LRU neighbours a hit relinks.
    pub fn prefetch_value(&self, id: &RawId) {
        let Some(slot) = self.index.get(id).and_then(|&i| self.slot(i)) else {
            return;
        };
        if let Some(first) = slot.entry.data.first() {
            crate::io::prefetch::prefetch(first);
        }
        for n in [slot.prev, slot.next] {
            if let Some(neighbour) = self.slots.get(n as usize) {
                crate::io::prefetch::prefetch(neighbour);
            }
        }
    }

    /// Whether an entry charged `charged_bytes` fits in some page.
    pub fn fits(&self, charged_bytes: u64) -> bool {
        self.pages.iter().any(|p| p.max_bytes >= charged_bytes)
    }

    pub fn contains(&self, id: &RawId) -> bool {
        self.index.contains_key(id)
    }

    /// The entry of `id`, without counting a hit.
    pub fn peek(&self, id: &RawId) -> Option<&Entry> {
        let i = *self.index.get(id)?;
        self.slot(i).map(|s| &s.entry)
    }

    /// The entry of `id` after counting a hit: it moves one page hotter (an entry waiting
    /// for its write-back comes back into the coldest page).
    pub fn get(&mut self, id: &RawId) -> Option<&Entry> {
        let i = *self.index.get(id)?;
        self.promote(i);
        self.slot(i).map(|s| &s.entry)
    }

    /// Change the entry of `id` with `f`, then re-charge it and (with `hit`) move it one
    /// page hotter. The change bumps its generation; times changed by `f` re-file its event.
    pub fn update<R>(
        &mut self,
        id: &RawId,
        hit: bool,
        f: impl FnOnce(&mut Entry) -> R,
    ) -> Option<R> {
        let i = *self.index.get(id)?;
        let slot = self.slot_mut(i)?;
        let out = f(&mut slot.entry);
        slot.entry.generation = slot.entry.generation.wrapping_add(1);
        self.refile_event(i);
        self.recharge(i);
        if hit {
            self.promote(i);
        } else if let Some(page) = self.slot(i).map(|s| s.page) {
            // Re-placed in its own page, which may have to make room for its new size.
            let page = page.min(self.pages.len() - 1);
            self.place(i, page);
        }
        Some(out)
    }

    /// Change only the times of `id`'s entry (no hit, no new generation).
    pub fn set_times(&mut self, id: &RawId, lifetime_s: u64, synctime_s: u64) {
        let Some(&i) = self.index.get(id) else {
            return;
        };
        if let Some(slot) = self.slot_mut(i) {
            slot.entry.lifetime_s = lifetime_s;
            slot.entry.synctime_s = synctime_s;
        }
        self.refile_event(i);
    }

    /// Add a new entry for `id` (replacing any) in the coldest page.
    pub fn insert(&mut self, id: RawId, entry: Entry) -> Result<(), TooLarge> {
        let charged_bytes = charge_of(&entry.data);
        if !self.fits(charged_bytes) {
            return Err(TooLarge { charged_bytes });
        }
        self.remove(&id);
        let slot = Slot {
            id,
            entry,
            page: PAGE_UNLINKED,
            prev: NIL,
            next: NIL,
            charged_bytes,
            event_s: 0,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                u32::try_from(self.slots.len() - 1).unwrap_or(NIL)
            }
        };
        self.index.insert(id, i);
        self.objects += 1;
        self.size_bytes += charged_bytes;
        self.refile_event(i);
        let coldest = self.pages.len() - 1;
        self.place(i, coldest);
        Ok(())
    }

    /// Take `id`'s entry out of the cache.
    pub fn remove(&mut self, id: &RawId) -> Option<Entry> {
        let i = self.index.remove(id)?;
        self.unlink(i);
        let slot = self.slots.get_mut(i as usize)?.take()?;
        self.free.push(i);
        if slot.event_s != 0 {
            self.events.remove(&(slot.event_s, slot.id));
        }
        self.objects = self.objects.saturating_sub(1);
        self.size_bytes = self.size_bytes.saturating_sub(slot.charged_bytes);
        Some(slot.entry)
    }

    /// Ids whose lifetime or write-back time is at or before `now_s`, earliest first.
    pub fn due(&self, now_s: u64) -> Vec<RawId> {
        self.events
            .range(..=(now_s, RawId([0xff; 64])))
            .map(|(_, id)| *id)
            .collect()
    }

    /// Every dirty entry's id (for the final write-back at shutdown).
    pub fn dirty_ids(&self) -> Vec<RawId> {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.entry.is_dirty())
            .map(|s| s.id)
            .collect()
    }

    /// Dirty entries evicted since the last call: the node writes them back now.
    pub fn take_evicted_dirty(&mut self) -> Vec<RawId> {
        std::mem::take(&mut self.evicted_dirty)
    }

    pub fn has_evicted_dirty(&self) -> bool {
        !self.evicted_dirty.is_empty()
    }

    /// Whether `id` waits for its write-back outside the pages.
    pub fn is_removing(&self, id: &RawId) -> bool {
        let Some(&i) = self.index.get(id) else {
            return false;
        };
        self.slot(i).is_some_and(|s| s.page == PAGE_REMOVING)
    }

    /// Objects, their bytes, and how many of them (and bytes) wait for a write-back.
    pub fn totals(&self) -> [u64; 4] {
        [
            self.objects,
            self.size_bytes,
            self.removing_objects,
            self.removing_bytes,
        ]
    }

    /// The bytes each page holds, hottest first.
    pub fn page_sizes(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.iter().map(|p| p.size_bytes)
    }

    pub fn stats(&self) -> SlruStats {
        SlruStats {
            objects: self.objects,
            size_bytes: self.size_bytes,
            removing_objects: self.removing_objects,
            removing_bytes: self.removing_bytes,
            pages_sizes: self.pages.iter().map(|p| p.size_bytes).collect(),
            pages_max_sizes: self.pages.iter().map(|p| p.max_bytes).collect(),
        }
    }
}
