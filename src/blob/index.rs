//! The in-memory key index: one packed location per live (or uncommitted) key.
//!
//! Keys of files still being written live in a [`HotIndex`] (a dense array of entries and
//! a compact open-addressing table, about 120 bytes per key). Once a file is sealed (closed and its sorted index written) its
//! keys move to a key-sorted array: 104 bytes per key, searched by bisection, with removed
//! keys marked dead in place until the next defrag of that file compacts the array.
//! Removed keys are not kept: a tombstone on disk is enough.

use super::hot_index::HotIndex;
use crate::key::RawId;
use crate::protocol::record_flags;
use std::collections::BTreeMap;

/// Where a record lives and what its header says (40 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Offset of the record header in the data file.
    pub position: u64,
    /// Client bytes including the ext header.
    pub data_size: u64,
    /// Bytes the record occupies in the data file.
    pub disk_size: u64,
    /// Data file number N.
    pub file: u32,
    /// Entry number in the file's `.index`.
    pub index_slot: u32,
    /// `record_flags::*` (all defined flags fit in 32 bits).
    pub flags: u32,
}

/// A live location never has REMOVE set, so the bit marks dead slots of sealed arrays.
const DEAD: u32 = record_flags::REMOVE as u32;

/// The first 8 bytes of a key as a number that sorts like the key.
fn key_prefix(key: &RawId) -> u64 {
    let mut w = [0u8; 8];
    if let Some(src) = key.0.get(..8) {
        w.copy_from_slice(src);
    }
    u64::from_be_bytes(w)
}

fn is_live(l: &Loc) -> bool {
    l.flags & DEAD == 0
}

/// Map from key to location: a hash map for open files, sorted arrays for sealed ones.
#[derive(Debug, Default)]
pub struct KeyIndex {
    hot: HotIndex,
    sealed: BTreeMap<u32, Vec<(RawId, Loc)>>,
    live: usize,
}

impl KeyIndex {
    fn find_sealed(&self, key: &RawId) -> Option<(u32, usize)> {
        for (num, v) in self.sealed.iter().rev() {
            if let Ok(i) = v.binary_search_by(|(k, _)| k.cmp(key)) {
                if v.get(i).is_some_and(|(_, l)| is_live(l)) {
                    return Some((*num, i));
                }
            }
        }
        None
    }

    /// Start loading the entry of `key` in the table of the files being written (a hint).
    /// See [`HotIndex::prefetch`].
    pub fn prefetch(&self, key: &RawId) -> Option<usize> {
        self.hot.prefetch(key)
    }

    /// See [`HotIndex::probable`].
    pub fn probable(&self, pos: usize) -> Option<&Loc> {
        self.hot.probable(pos)
    }

    pub fn get(&self, key: &RawId) -> Option<&Loc> {
        if let Some(l) = self.hot.get(key) {
            return Some(l);
        }
        let (num, i) = self.find_sealed(key)?;
        self.sealed.get(&num)?.get(i).map(|(_, l)| l)
    }

    pub fn get_mut(&mut self, key: &RawId) -> Option<&mut Loc> {
        if self.hot.contains_key(key) {
            return self.hot.get_mut(key);
        }
        let (num, i) = self.find_sealed(key)?;
        self.sealed.get_mut(&num)?.get_mut(i).map(|(_, l)| l)
    }

    /// Set the location of `key`, returning the one it replaces.
    pub fn insert(&mut self, key: RawId, loc: Loc) -> Option<Loc> {
        debug_assert!(is_live(&loc));
        if !self.sealed.contains_key(&loc.file) {
            // One probe of the hot table replaces a hot copy; else a sealed copy dies.
            if let Some(old) = self.hot.insert(key, loc) {
                return Some(old);
            }
            self.live += 1;
            return self.remove_sealed(&key);
        }
        let old = self.remove(&key);
        self.live += 1;
        let Some(v) = self.sealed.get_mut(&loc.file) else {
            self.hot.insert(key, loc);
            return old;
        };
        match v.last() {
            Some((last, _)) if *last >= key => match v.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(i) => {
                    if let Some(slot) = v.get_mut(i) {
                        slot.1 = loc;
                    }
                }
                Err(i) => v.insert(i, (key, loc)),
            },
            _ => v.push((key, loc)),
        }
        old
    }

    pub fn remove(&mut self, key: &RawId) -> Option<Loc> {
        match self.hot.remove(key) {
            Some(l) => {
                self.live -= 1;
                Some(l)
            }
            None => self.remove_sealed(key),
        }
    }

    /// Mark the live copy of `key` in a sealed array dead.
    fn remove_sealed(&mut self, key: &RawId) -> Option<Loc> {
        let (num, i) = self.find_sealed(key)?;
        let slot = self.sealed.get_mut(&num)?.get_mut(i)?;
        let l = slot.1;
        slot.1.flags |= DEAD;
        self.live -= 1;
        Some(l)
    }

    /// Live keys and locations, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&RawId, &Loc)> {
        let sealed = self
            .sealed
            .values()
            .flat_map(|v| v.iter())
            .filter(|(_, l)| is_live(l))
            .map(|(k, l)| (k, l));
        self.hot.iter().chain(sealed)
    }

    pub fn values(&self) -> impl Iterator<Item = &Loc> {
        self.iter().map(|(_, l)| l)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// From now on keys of file `num` go to a sorted array (fast path: ascending inserts).
    pub fn start_sealed(&mut self, num: u32) {
        self.sealed.entry(num).or_default();
    }

    /// Move the keys of file `num` from the hash map into its sorted array.
    pub fn seal(&mut self, num: u32) {
        let moved = self.hot.drain_where(|l| l.file == num);
        let v = self.sealed.entry(num).or_default();
        v.extend(moved);
        v.sort_unstable_by_key(|(k, _)| *k);
        v.retain(|(_, l)| is_live(l));
        v.shrink_to_fit();
    }

    /// Bulk load: the live entries of sealed file `num`, sorted by key, one per key.
    /// Keys also held elsewhere are settled by [`Self::resolve_duplicates`].
    pub fn load_sealed(&mut self, num: u32, entries: Vec<(RawId, Loc)>) {
        self.live += entries.len();
        let v = self.sealed.entry(num).or_default();
        if v.is_empty() {
            *v = entries;
        } else {
            v.extend(entries);
            v.sort_unstable_by_key(|(k, _)| *k);
        }
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

    /// After a bulk load: a key held by several files keeps its copy with the highest
    /// (file, position); the others leave the index and are returned. One sort of 16-byte
    /// (prefix, place) pairs finds the candidates; full keys decide.
    pub fn resolve_duplicates(&mut self) -> Vec<Loc> {
        const HOT: u32 = u32::MAX;
        if self.sealed.is_empty() {
            return Vec::new();
        }
        let mut all: Vec<(u64, u32, u32)> = Vec::with_capacity(self.live);
        for (num, v) in &self.sealed {
            for (i, (k, l)) in v.iter().enumerate() {
                if is_live(l) {
                    all.push((key_prefix(k), *num, u32::try_from(i).unwrap_or(u32::MAX)));
                }
            }
        }
        for (i, (k, _)) in self.hot.iter().enumerate() {
            all.push((key_prefix(k), HOT, u32::try_from(i).unwrap_or(u32::MAX)));
        }
        all.sort_unstable_by_key(|e| e.0);
        let mut losers = Vec::new();
        let mut hot_losers = Vec::new();
        let mut i = 0;
        while i < all.len() {
            let Some(&(prefix, _, _)) = all.get(i) else {
                break;
            };
            let run = all.iter().skip(i).take_while(|e| e.0 == prefix).count();
            if run > 1 {
                let mut members: Vec<(RawId, Loc, u32, usize)> = Vec::new();
                for &(_, num, at) in all.iter().skip(i).take(run) {
                    let at = at as usize;
                    let found = if num == HOT {
                        self.hot.entry_at(at)
                    } else {
                        self.sealed.get(&num).and_then(|v| v.get(at)).copied()
                    };
                    if let Some((k, l)) = found {
                        members.push((k, l, num, at));
                    }
                }
                members.sort_unstable_by_key(|m| (m.0, m.1.file, m.1.position));
                for pair in members.windows(2) {
                    let [older, newer] = pair else { continue };
                    if older.0 != newer.0 {
                        continue;
                    }
                    losers.push(older.1);
                    if older.2 == HOT {
                        hot_losers.push(older.0);
                    } else if let Some(slot) = self
                        .sealed
                        .get_mut(&older.2)
                        .and_then(|v| v.get_mut(older.3))
                    {
                        slot.1.flags |= DEAD;
                        self.live -= 1;
                    }
                }
            }
            i += run.max(1);
        }
        for k in hot_losers {
            if self.hot.remove(&k).is_some() {
                self.live -= 1;
            }
        }
        losers
    }

    /// After a bulk load: give back the spare capacity the hot table grew into.
    pub fn shrink_after_load(&mut self) {
        self.hot.shrink_entries();
    }

    /// Bytes held by the index structures (capacity, not only the live part).
    pub fn allocated_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(RawId, Loc)>();
        let sealed: usize = self.sealed.values().map(|v| v.capacity() * slot).sum();
        sealed + self.hot.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_stays_forty_bytes() {
        assert_eq!(std::mem::size_of::<Loc>(), 40);
    }

    #[test]
    fn index_finds_keys_that_share_a_prefix() {
        let mut idx = KeyIndex::default();
        idx.start_sealed(1);
        let mut a = [1u8; 64];
        let b = [1u8; 64];
        a[63] = 2;
        let loc = Loc {
            position: 1,
            data_size: 2,
            disk_size: 3,
            file: 0,
            index_slot: 0,
            flags: 0,
        };
        idx.insert(RawId(a), loc);
        idx.insert(RawId(b), Loc { position: 9, ..loc });
        assert_eq!(idx.get(&RawId(a)).map(|l| l.position), Some(1));
        assert_eq!(idx.get(&RawId(b)).map(|l| l.position), Some(9));
    }

    #[test]
    fn sealed_keys_are_found_replaced_and_removed_like_hot_ones() {
        let mut idx = KeyIndex::default();
        let loc = |file, position| Loc {
            position,
            data_size: 50,
            disk_size: 200,
            file,
            index_slot: 0,
            flags: 0,
        };
        for i in 0..100u8 {
            idx.insert(RawId([i; 64]), loc(0, u64::from(i)));
        }
        idx.seal(0);
        idx.insert(RawId([200; 64]), loc(1, 0));
        assert_eq!(idx.len(), 101);
        assert_eq!(idx.get(&RawId([42; 64])).map(|l| l.position), Some(42));
        assert_eq!(idx.remove(&RawId([42; 64])).map(|l| l.position), Some(42));
        assert!(idx.get(&RawId([42; 64])).is_none());
        assert!(idx.remove(&RawId([42; 64])).is_none());
        let old = idx.insert(RawId([43; 64]), loc(1, 7));
        assert_eq!(old.map(|l| l.file), Some(0));
        assert_eq!(
            idx.get(&RawId([43; 64])).map(|l| (l.file, l.position)),
            Some((1, 7))
        );
        idx.insert(RawId([42; 64]), loc(0, 99));
        assert_eq!(idx.get(&RawId([42; 64])).map(|l| l.position), Some(99));
        assert_eq!(idx.len(), 101);
        assert_eq!(idx.iter().count(), 101);
    }

    #[test]
    fn bulk_load_keeps_the_newest_copy_of_a_key_held_by_several_files() {
        let loc = |file, position| Loc {
            position,
            data_size: 50,
            disk_size: 200,
            file,
            index_slot: 0,
            flags: 0,
        };
        let k = |b: u8| RawId([b; 64]);
        let mut idx = KeyIndex::default();
        idx.load_sealed(
            0,
            vec![(k(1), loc(0, 0)), (k(2), loc(0, 200)), (k(3), loc(0, 400))],
        );
        idx.load_sealed(1, vec![(k(2), loc(1, 0)), (k(4), loc(1, 200))]);
        idx.insert_loading(k(3), loc(2, 0));
        idx.insert_loading(k(5), loc(2, 200));
        let mut older: Vec<(u32, u64)> = idx
            .resolve_duplicates()
            .iter()
            .map(|l| (l.file, l.position))
            .collect();
        older.sort_unstable();
        assert_eq!(older, vec![(0, 200), (0, 400)]);
        assert_eq!(idx.len(), 5);
        assert_eq!(idx.iter().count(), 5);
        assert_eq!(idx.get(&k(2)).map(|l| l.file), Some(1));
        assert_eq!(idx.get(&k(3)).map(|l| l.file), Some(2));
        assert_eq!(idx.get(&k(1)).map(|l| l.file), Some(0));
        assert!(idx.resolve_duplicates().is_empty());
    }
}
