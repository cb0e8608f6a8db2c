//! The key table of files still being written: a dense array of `(key, location)` pairs
//! and an open-addressing table of 8-byte slots pointing into it.
//!
//! A slot packs a 32-bit tag of the key's hash with the entry's position in the dense
//! array, so a probe that meets another key is rejected without touching the array:
//!
//! | bits  | content                                     |
//! |-------|---------------------------------------------|
//! | 0-31  | dense position + 1 (0 marks an empty slot)  |
//! | 32-63 | tag: low 32 bits of the key hash            |
//!
//! The hash is [`KeyHasher`]'s, keyed per table. Linear probing, at most 3/4 full, deletion by backward shift (no tombstones). The dense
//! array stays gap-free: a removed entry is replaced by the last one. One key costs its
//! 104-byte entry plus 8-16 bytes of slots, against about twice the entry in a general
//! hash map.

use super::key_hash::KeyHasher;
use super::loc::Loc;
use crate::key::RawId;

type Entry = (RawId, Loc);

const EMPTY: u64 = 0;

fn tag_of(h: u64) -> u64 {
    h & 0xffff_ffff
}

/// The hot key table (see the module header).
#[derive(Debug, Default)]
pub struct HotIndex {
    entries: Vec<Entry>,
    slots: Vec<u64>,
    hasher: KeyHasher,
}

impl HotIndex {
    /// An empty table hashing with `hasher`.
    pub fn with_hasher(hasher: KeyHasher) -> Self {
        HotIndex {
            entries: Vec::new(),
            slots: Vec::new(),
            hasher,
        }
    }

    fn hash(&self, key: &RawId) -> u64 {
        self.hasher.hash(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    fn home(&self, h: u64) -> usize {
        // The high bits of the multiplied hash are the well mixed ones.
        if self.slots.len() <= 1 {
            return 0;
        }
        let bits = self.slots.len().trailing_zeros();
        (h >> (64 - bits)) as usize
    }

    /// One probe run for `key` with hash `h`: `Ok(slot)` holding it, or `Err(slot)`, the
    /// empty slot it would take. `None` for a table without slots.
    fn probe(&self, key: &RawId, h: u64) -> Option<Result<usize, usize>> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = tag_of(h);
        let mask = self.mask();
        let mut i = self.home(h);
        loop {
            let s = *self.slots.get(i)?;
            if s == EMPTY {
                return Some(Err(i));
            }
            if s >> 32 == tag {
                let pos = usize::try_from((s & 0xffff_ffff) - 1).ok()?;
                if self.entries.get(pos).is_some_and(|(k, _)| k == key) {
                    return Some(Ok(i));
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Slot number holding `key`, if present.
    fn find_slot(&self, key: &RawId) -> Option<usize> {
        self.probe(key, self.hash(key))?.ok()
    }

    fn pos_of_slot(&self, slot: usize) -> Option<usize> {
        let s = *self.slots.get(slot)?;
        usize::try_from((s & 0xffff_ffff).checked_sub(1)?).ok()
    }

    /// Start loading the entry `key` probably has into the cache: the first slot of its
    /// probe run with the key's tag names it (slots are few and likely cached; the entry
    /// is the miss). A hint only: no key is compared. Returns that entry's position for
    /// [`HotIndex::probable`].
    pub fn prefetch(&self, key: &RawId) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let h = self.hash(key);
        let (tag, mask) = (tag_of(h), self.mask());
        let mut i = self.home(h);
        while let Some(&s) = self.slots.get(i) {
            if s == EMPTY {
                return None;
            }
            if s >> 32 == tag {
                let pos = self.pos_of_slot(i)?;
                if let Some(e) = self.entries.get(pos) {
                    crate::io::prefetch::prefetch(e);
                }
                return Some(pos);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// The location at a position [`HotIndex::prefetch`] returned: probably, not surely,
    /// its key's (a hint for the next prefetch, never for serving).
    pub fn probable(&self, pos: usize) -> Option<&Loc> {
        self.entries.get(pos).map(|(_, l)| l)
    }

    pub fn get(&self, key: &RawId) -> Option<&Loc> {
        let pos = self.pos_of_slot(self.find_slot(key)?)?;
        self.entries.get(pos).map(|(_, l)| l)
    }

    pub fn get_mut(&mut self, key: &RawId) -> Option<&mut Loc> {
        let pos = self.pos_of_slot(self.find_slot(key)?)?;
        self.entries.get_mut(pos).map(|(_, l)| l)
    }

    pub fn contains_key(&self, key: &RawId) -> bool {
        self.find_slot(key).is_some()
    }

    /// Put a slot value for dense position `pos` into the table (the key is absent).
    fn place(&mut self, h: u64, pos: usize) {
        let mask = self.mask();
        let mut i = self.home(h);
        let value = (tag_of(h) << 32) | (pos as u64 + 1);
        while let Some(s) = self.slots.get_mut(i) {
            if *s == EMPTY {
                *s = value;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow_if_needed(&mut self) {
        let want = self.entries.len() + 1;
        if want * 4 <= self.slots.len() * 3 {
            return;
        }
        let cap = (self.slots.len() * 2).max(16);
        self.rebuild(cap);
    }

    fn rebuild(&mut self, cap: usize) {
        self.slots = vec![EMPTY; cap];
        for pos in 0..self.entries.len() {
            if let Some((k, _)) = self.entries.get(pos) {
                let h = self.hasher.hash(k);
                self.place(h, pos);
            }
        }
    }

    /// Set the location of `key`, returning the one it replaces. One probe run finds the
    /// key or the empty slot it goes to.
    pub fn insert(&mut self, key: RawId, loc: Loc) -> Option<Loc> {
        assert!(
            self.entries.len() < u32::MAX as usize - 1,
            "hot index holds at most 2^32 - 2 keys"
        );
        self.grow_if_needed();
        let h = self.hash(&key);
        match self.probe(&key, h)? {
            Ok(slot) => {
                let pos = self.pos_of_slot(slot)?;
                self.entries
                    .get_mut(pos)
                    .map(|(_, l)| std::mem::replace(l, loc))
            }
            Err(empty) => {
                let pos = self.entries.len();
                self.entries.push((key, loc));
                if let Some(slot) = self.slots.get_mut(empty) {
                    *slot = (tag_of(h) << 32) | (pos as u64 + 1);
                }
                None
            }
        }
    }

    pub fn remove(&mut self, key: &RawId) -> Option<Loc> {
        let slot = self.find_slot(key)?;
        let pos = self.pos_of_slot(slot)?;
        self.erase_slot(slot);
        let last = self.entries.len().checked_sub(1)?;
        if pos != last {
            // The last entry moves into the hole: repoint its slot.
            let moved = self.entries.get(last).map(|(k, _)| *k)?;
            if let Some(ms) = self.find_slot(&moved) {
                if let Some(s) = self.slots.get_mut(ms) {
                    *s = (*s & !0xffff_ffff) | (pos as u64 + 1);
                }
            }
        }
        let (_, loc) = self.entries.swap_remove(pos);
        Some(loc)
    }

    /// Empty `slot` and shift later members of its probe run back (no tombstones).
    fn erase_slot(&mut self, slot: usize) {
        let mask = self.mask();
        let mut hole = slot;
        let mut i = (slot + 1) & mask;
        loop {
            let Some(&s) = self.slots.get(i) else { return };
            if s == EMPTY {
                break;
            }
            let home = self
                .pos_of_slot(i)
                .and_then(|p| self.entries.get(p))
                .map(|(k, _)| self.home(self.hash(k)))
                .unwrap_or(i);
            // Move `s` into the hole unless its home lies cyclically in (hole, i].
            let stays = if hole <= i {
                hole < home && home <= i
            } else {
                hole < home || home <= i
            };
            if !stays {
                if let Some(h) = self.slots.get_mut(hole) {
                    *h = s;
                }
                hole = i;
            }
            i = (i + 1) & mask;
        }
        if let Some(h) = self.slots.get_mut(hole) {
            *h = EMPTY;
        }
    }

    /// The entry at dense position `pos` (positions follow [`Self::iter`]).
    pub fn entry_at(&self, pos: usize) -> Option<Entry> {
        self.entries.get(pos).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RawId, &Loc)> {
        self.entries.iter().map(|(k, l)| (k, l))
    }

    /// Take out every entry whose location matches `pick`.
    pub fn drain_where(&mut self, pick: impl Fn(&Loc) -> bool) -> Vec<Entry> {
        let (out, keep): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|(_, l)| pick(l));
        self.entries = keep;
        self.shrink_to_fit();
        out
    }

    /// Release spare capacity (after a large removal).
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        let mut cap = 16usize;
        while cap * 3 < self.entries.len() * 4 + 4 {
            cap *= 2;
        }
        if self.entries.is_empty() {
            self.slots = Vec::new();
        } else {
            self.rebuild(cap);
        }
    }

    /// Give back the entry array's spare capacity when it is more than an eighth of the
    /// live part (a loaded table grown by doubling); the slot table stays as it is.
    pub fn shrink_entries(&mut self) {
        if self.entries.capacity() > self.entries.len() + self.entries.len() / 8 {
            self.entries.shrink_to_fit();
        }
    }

    /// Bytes held (capacity, not only the live part).
    pub fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>() + self.slots.capacity() * 8
    }
}

#[cfg(test)]
#[path = "hot_index_tests.rs"]
mod tests;
