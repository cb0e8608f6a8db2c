//! The in-memory key index: where the live copy of each key is.
//!
//! Keys of files still being written live in a [`HotIndex`] (a dense array of entries and
//! a compact open-addressing table, about 120 bytes per key). Once a file is sealed (closed
//! and its sorted index written) its keys leave RAM: a [`SealedIndex`] per sealed file
//! keeps one fence per page of the sorted index (about 4 bytes per key) and finds entries
//! in the index file through the page cache, and one [`KeyFiles`] table over all sealed
//! files names the files that may hold a key (4 bytes per entry).
//!
//! A lookup asks the hot table, then the sealed files the table names, from the newest to
//! the oldest; the first file holding the key answers, with its newest entry there,
//! removed or not. What
//! RAM knows before the disk does is kept beside:
//! - a sealed record changed in place (an uncommitted reuse, its commit) sits in the hot
//!   table with its sealed location until the file is sealed again;
//! - a sealed entry that RAM dropped (removed, or replaced by a newer copy) but whose
//!   REMOVE mark is not in the index file yet is listed in `pending_dead` until
//!   [`KeyIndex::disk_marked`] (a handful: the marks in flight).
use super::disk_control::DiskControl;
use super::hot_index::HotIndex;
use super::key_files::{sealed_hasher, KeyFiles};
pub(super) use super::loc::loc_of;
pub use super::loc::Loc;
use super::sealed::SealedIndex;
use crate::key::RawId;
use crate::protocol::record_flags;
use std::collections::{BTreeMap, HashSet};

/// Keys of sealed files one step of a key-table rebuild reads again (at least one file):
/// a few milliseconds of page-cache reads between requests.
pub const KEYS_PER_REBUILD_STEP: u64 = 128 * 1024;

/// Map from key to location (see the module header).
#[derive(Debug, Default)]
pub struct KeyIndex {
    pub(super) hot: HotIndex,
    pub(super) sealed: BTreeMap<u32, SealedIndex>,
    /// Which sealed files may hold a key.
    pub(super) files: KeyFiles,
    /// `(file, slot)` of sealed entries dropped from RAM whose REMOVE is not on disk yet.
    pub(super) pending_dead: HashSet<(u32, u32)>,
    pub(super) live: usize,
}

impl KeyIndex {
    /// The newest state of `key` in the sealed files: `Some(Some(loc))` live,
    /// `Some(None)` removed (the newest file holding it says so), `None` in no sealed file.
    fn sealed_state(&self, key: &RawId) -> Option<Option<Loc>> {
        let candidates = self.files.candidates(sealed_hasher().hash(key));
        for num in candidates.iter() {
            let Some(s) = self.sealed.get(&num) else {
                continue;
            };
            match s.find(key) {
                Ok(None) => continue,
                Ok(Some((slot, dc))) => {
                    let dead = dc.flags & record_flags::REMOVE != 0
                        || self.pending_dead.contains(&(num, slot));
                    return Some((!dead).then(|| loc_of(num, slot, &dc)));
                }
                Err(e) => {
                    tracing::error!("key lookup in sealed file {num} failed: {e}");
                    return Some(None);
                }
            }
        }
        None
    }

    fn sealed_get(&self, key: &RawId) -> Option<Loc> {
        self.sealed_state(key).flatten()
    }

    /// Start loading what a lookup of `key` touches first: its probable entry in the hot
    /// table (a hint, returned for [`Self::probable`]), else its bucket of the sealed files'
    /// key table.
    pub fn prefetch(&self, key: &RawId) -> Option<usize> {
        let pos = self.hot.prefetch(key);
        if pos.is_none() && !self.sealed.is_empty() {
            self.files.prefetch(sealed_hasher().hash(key));
        }
        pos
    }

    /// See [`HotIndex::probable`].
    pub fn probable(&self, pos: usize) -> Option<&Loc> {
        self.hot.probable(pos)
    }

    pub fn get(&self, key: &RawId) -> Option<Loc> {
        if let Some(l) = self.hot.get(key) {
            return Some(*l);
        }
        self.sealed_get(key)
    }

    /// A location leaves RAM: a sealed entry stays dead until its mark is on disk.
    fn dropped(&mut self, old: &Loc) {
        if self.sealed.contains_key(&old.file) {
            self.pending_dead.insert((old.file, old.index_slot));
        }
    }

    /// Set the location of `key`, returning the one it replaces (which the caller marks
    /// removed on disk unless it is the same record).
    pub fn insert(&mut self, key: RawId, loc: Loc) -> Option<Loc> {
        debug_assert!(u64::from(loc.flags) & record_flags::REMOVE == 0);
        if !self.sealed.contains_key(&loc.file) {
            if let Some(old) = self.hot.insert(key, loc) {
                self.dropped(&old);
                return Some(old);
            }
            let old = self.sealed_get(&key);
            match &old {
                Some(o) => self.dropped(o),
                None => self.live += 1,
            }
            return old;
        }
        // A sealed record changed in place, or restored after a failed remove.
        let old = self.get(&key);
        self.refresh(loc.file, loc.index_slot);
        self.pending_dead.remove(&(loc.file, loc.index_slot));
        if self.sealed_get(&key) == Some(loc) {
            self.hot.remove(&key);
        } else {
            self.hot.insert(key, loc);
        }
        if old.is_none() {
            self.live += 1;
        }
        old
    }

    pub fn remove(&mut self, key: &RawId) -> Option<Loc> {
        let l = match self.hot.remove(key) {
            Some(l) => l,
            None => self.sealed_get(key)?,
        };
        self.dropped(&l);
        self.live -= 1;
        Some(l)
    }

    /// The REMOVE mark of sealed entry `slot` of file `file` is in its index file now.
    pub fn disk_marked(&mut self, file: u32, slot: u32) {
        self.refresh(file, slot);
        self.pending_dead.remove(&(file, slot));
    }

    /// Entry `slot` of sealed file `file` may have changed on disk.
    fn refresh(&mut self, file: u32, slot: u32) {
        if let Some(s) = self.sealed.get_mut(&file) {
            if let Err(e) = s.refresh(slot) {
                tracing::error!("re-reading entry {slot} of sealed file {file}: {e}");
            }
        }
    }

    /// Call `f` with every live key and its location (uncommitted ones included), the hot
    /// ones first, then each sealed file's in key order. A sealed file is walked through
    /// its index file; one that cannot be read is skipped (and logged).
    pub fn for_each_live(&self, mut f: impl FnMut(&RawId, &Loc)) {
        for (k, l) in self.hot.iter() {
            f(k, l);
        }
        for &num in self.sealed.keys() {
            self.for_each_live_in(num, |k, l| f(k, l));
        }
    }

    /// Call `f` with every key whose live copy is in sealed file `num`, in key order.
    fn for_each_live_in(&self, num: u32, mut f: impl FnMut(&RawId, &Loc)) {
        let Some(s) = self.sealed.get(&num) else {
            return;
        };
        let mut last: Option<(u32, DiskControl)> = None;
        let mut settle = |prev: &(u32, DiskControl)| {
            let (slot, dc) = prev;
            if dc.flags & record_flags::REMOVE != 0 || self.pending_dead.contains(&(num, *slot)) {
                return;
            }
            if self.hot.contains_key(&dc.key) {
                // The hot copy is the key's (a record of this file changed in place, or
                // a newer copy): the hot table's walk has it.
                return;
            }
            let newer = self
                .files
                .candidates(sealed_hasher().hash(&dc.key))
                .iter()
                .filter(|&f| f > num)
                .any(|f| {
                    self.sealed
                        .get(&f)
                        .is_some_and(|n| matches!(n.find(&dc.key), Ok(Some(_))))
                });
            if !newer {
                f(&dc.key, &loc_of(num, *slot, dc));
            }
        };
        let walked = s.walk(|slot, dc| {
            match &last {
                Some(p) if p.1.key != dc.key => settle(p),
                _ => {}
            }
            last = Some((slot, *dc));
            true
        });
        if let Some(p) = &last {
            settle(p);
        }
        if let Err(e) = walked {
            tracing::error!("walking the keys of sealed file {num}: {e}");
        }
    }

    /// The live records of sealed file `num` (what a defrag keeps), sorted by key.
    pub fn live_in_file(&self, num: u32) -> Vec<(RawId, Loc)> {
        let mut out = Vec::new();
        self.for_each_live_in(num, |k, l| out.push((*k, *l)));
        for (k, l) in self.hot.iter().filter(|(_, l)| l.file == num) {
            out.push((*k, *l));
        }
        out.sort_unstable_by_key(|(k, _)| *k);
        out
    }

    /// Whether a location in the hot table matches `pick` (keys of files not sealed, and
    /// sealed records changed in place).
    pub fn any_hot(&self, pick: impl Fn(&Loc) -> bool) -> bool {
        self.hot.iter().any(|(_, l)| pick(l))
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Whether file `num` is sealed here.
    pub fn is_sealed(&self, num: u32) -> bool {
        self.sealed.contains_key(&num)
    }

    /// File `num`'s sorted index `sealed` now shows every key of the file as RAM does:
    /// its keys leave the hot table (replacing what a former sealed index of the file,
    /// before a defrag, said).
    pub fn seal(&mut self, num: u32, sealed: SealedIndex) {
        self.hot.drain_where(|l| l.file == num);
        self.pending_dead.retain(|(f, _)| *f != num);
        self.add_sealed(num, sealed);
    }

    /// File `num` joins the sealed files and the key table. When the table's fingerprints
    /// have grown short, a rebuild of it starts, and goes on in steps
    /// ([`KeyIndex::rebuild_files_step`]) beside the table it replaces.
    fn add_sealed(&mut self, num: u32, mut sealed: SealedIndex) {
        let hashes = sealed.take_key_hashes();
        self.sealed.insert(num, sealed);
        if self.files.needs_rebuild(hashes.len()) {
            let total: u64 = self.sealed.values().map(SealedIndex::entry_count).sum();
            let others = self.sealed.keys().copied().filter(|&f| f != num).collect();
            self.files
                .start_rebuild(usize::try_from(total).unwrap_or(usize::MAX), others);
        }
        self.files.add_file(num, &hashes);
        self.rebuild_files_step(KEYS_PER_REBUILD_STEP);
    }

    /// One step of a running rebuild of the key table: the keys of sealed files, read
    /// again from their sorted indexes, until about `budget_keys` keys (at least one
    /// file) have moved. A file whose keys cannot be read is searched by every lookup.
    /// `true` while the rebuild has more to do.
    pub fn rebuild_files_step(&mut self, budget_keys: u64) -> bool {
        let mut moved = 0u64;
        while let Some(num) = self.files.next_to_move() {
            if moved >= budget_keys {
                return true;
            }
            let Some(s) = self.sealed.get(&num) else {
                self.files.remove_file(num);
                continue;
            };
            moved += s.entry_count().max(1);
            match s.key_hashes() {
                Ok(h) => self.files.moved(num, Some(&h)),
                Err(e) => {
                    tracing::error!("reading the keys of sealed file {num}: {e}");
                    self.files.moved(num, None);
                }
            }
        }
        false
    }

    /// Room in the key table for `keys` keys of sealed files about to be loaded.
    pub fn expect_sealed_keys(&mut self, keys: u64) {
        if self.files.is_empty() {
            self.files = KeyFiles::sized_for(usize::try_from(keys).unwrap_or(usize::MAX));
        }
    }

    /// Sealed entry `slot` of file `num` is an old copy kept live on disk for now (its
    /// key's newer copy is elsewhere): it stays dead here until its mark is on disk.
    pub fn dead_on_disk_later(&mut self, num: u32, slot: u32) {
        if self.sealed.contains_key(&num) {
            self.pending_dead.insert((num, slot));
        }
    }

    /// Sealed file `num` is deleted (it held no live record).
    pub fn drop_file(&mut self, num: u32) {
        self.hot.drain_where(|l| l.file == num);
        self.pending_dead.retain(|(f, _)| *f != num);
        self.sealed.remove(&num);
        self.files.remove_file(num);
    }

    /// Bulk load: sealed file `num` with `live_keys` distinct keys whose newest entry in
    /// it is live. Keys also held elsewhere are settled by `resolve_duplicates`.
    pub fn load_sealed(&mut self, num: u32, sealed: SealedIndex, live_keys: u64) {
        self.live += usize::try_from(live_keys).unwrap_or(usize::MAX);
        self.add_sealed(num, sealed);
    }

    /// Lookup while loading: only files that are not sealed.
    pub fn get_loading(&self, key: &RawId) -> Option<&Loc> {
        self.hot.get(key)
    }

    /// Insert while loading into a file that is not sealed, replacing its copy there.
    pub fn insert_loading(&mut self, key: RawId, loc: Loc) {
        if self.hot.insert(key, loc).is_none() {
            self.live += 1;
        }
    }

    /// After a bulk load: give back the spare capacity the hot table grew into.
    pub fn shrink_after_load(&mut self) {
        self.hot.shrink_entries();
    }

    /// Bytes held by the index structures (capacity, not only the live part).
    pub fn allocated_bytes(&self) -> usize {
        let sealed: usize = self.sealed.values().map(SealedIndex::allocated_bytes).sum();
        sealed
            + self.files.allocated_bytes()
            + self.hot.allocated_bytes()
            + self.pending_dead.capacity() * 8
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
