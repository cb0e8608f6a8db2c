//! Which sealed files hold a key: one table per log over the keys of all its sealed files,
//! so a lookup of a sealed key reads one file's fences and one page of its sorted index
//! whatever the number of sealed files ([`super::index::KeyIndex`]).
//!
//! Each distinct key of a sealed file has one 4-byte entry in the bucket its hash names:
//! the top 48 bits of the hash times the number of buckets, as a fraction of 2^48 (so any
//! number of buckets works). A bucket is one CPU cache line of 16 entries,
//! filled from the front; the entries of a full bucket that do not fit go to a side map.
//!
//! | bits of an entry | content                                                     |
//! |------------------|-------------------------------------------------------------|
//! | 0-15             | tag of the file (1..=65535; 0 marks an empty entry)          |
//! | 16-31            | fingerprint: the next 16 bits of that product (its fraction) |
//!
//! A lookup answers the files whose entries in the key's bucket match its fingerprint,
//! newest first; a fingerprint match is not proof (the caller searches the file). With
//! about 12 entries per bucket at most, an absent key matches an entry once in 5 000.
//!
//! The table grows by doubling the buckets: each bucket splits in two on the top
//! fingerprint bit (the fraction's first bit is exactly what doubling adds), which costs
//! that bit: the low `lost_bits` bits of every fingerprint are then ignored. After
//! [`LOST_BITS_MAX`] splits the owner rebuilds the table from the files' keys
//! ([`KeyFiles::needs_rebuild`]), in steps beside the old table ([`rebuild`]). A file that leaves (deleted, or replaced by its
//! defragmented copy) retires its tag at once: lookups skip its entries, which are swept
//! out once they are a quarter of the table, at a split, or when tags run out. A file that
//! gets no tag (65 535 in use) is listed as untagged and searched by every lookup.
//!
//! RAM: 4 bytes per entry over a table sized 5/8 full when built, 3/8 to 3/4 full as it
//! grows: 6.4 bytes per key after a start-up, 5.3 to 10.7 bytes per key as keys come.

use super::key_hash::KeyHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

const ENTRIES_PER_BUCKET: usize = 16;
/// Most entries the table holds, per bucket on average, before it grows.
const LOAD_MAX_PER_BUCKET: usize = 12;
/// Entries per bucket on average in a table built for a known number of keys.
const LOAD_BUILT_PER_BUCKET: usize = 10;
const BUCKETS_MIN: usize = 1024;
const BUCKETS_MAX: usize = 1 << 40;
const FINGERPRINT_BITS: u32 = 16;
/// Splits before the fingerprints are too short and the table is rebuilt.
pub const LOST_BITS_MAX: u32 = 6;
const TAG_MAX: usize = u16::MAX as usize;

/// One cache line of entries.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket([u32; ENTRIES_PER_BUCKET]);

/// The hash every sealed file's keys are put in the table with: one per process, keyed
/// from the OS, so a client cannot aim keys at one bucket.
pub fn sealed_hasher() -> &'static KeyHasher {
    static HASHER: OnceLock<KeyHasher> = OnceLock::new();
    HASHER.get_or_init(KeyHasher::random)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Free,
    Live(u32),
    Retired,
}

/// The table (see the module header).
#[derive(Debug)]
pub struct KeyFiles {
    buckets: Vec<Bucket>,
    overflow: HashMap<u32, Vec<u32>>,
    lost_bits: u32,
    /// State of each tag (index 0 unused) and the entries it holds.
    tags: Vec<(Tag, usize)>,
    tag_of_file: BTreeMap<u32, u16>,
    free_tags: Vec<u16>,
    stored: usize,
    retired: usize,
    untagged: BTreeSet<u32>,
    /// The table being built to replace this one ([`rebuild`]).
    rebuild: Option<Box<rebuild::Rebuild>>,
}

impl Default for KeyFiles {
    fn default() -> Self {
        KeyFiles::sized_for(0)
    }
}

/// The files a lookup must search, newest first (at most a few).
pub type Candidates = smallvec_like::Files;

impl KeyFiles {
    /// An empty table with room for `keys` entries before it grows.
    pub fn sized_for(keys: usize) -> KeyFiles {
        let buckets = keys
            .div_ceil(LOAD_BUILT_PER_BUCKET)
            .clamp(BUCKETS_MIN, BUCKETS_MAX);
        KeyFiles {
            buckets: vec![Bucket::default(); buckets],
            overflow: HashMap::new(),
            lost_bits: 0,
            tags: vec![(Tag::Free, 0)],
            tag_of_file: BTreeMap::new(),
            free_tags: Vec::new(),
            stored: 0,
            retired: 0,
            untagged: BTreeSet::new(),
            rebuild: None,
        }
    }

    fn bucket_and_fingerprint(&self, h: u64) -> (usize, u32) {
        let p = u128::from(h >> 16) * self.buckets.len() as u128;
        let bucket = (p >> 48) as usize;
        let fp = (p >> (48 - FINGERPRINT_BITS)) as u32 & 0xffff;
        (bucket, fp)
    }

    fn capacity(&self) -> usize {
        LOAD_MAX_PER_BUCKET * self.buckets.len()
    }

    /// Entries held, retired ones included (both tables' during a rebuild).
    pub fn len(&self) -> usize {
        self.stored + self.rebuild.as_ref().map_or(0, |r| r.next.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fingerprints are too short: the owner should rebuild the table from the files
    /// before adding more.
    pub fn needs_rebuild(&self, more: usize) -> bool {
        self.rebuild.is_none()
            && self.lost_bits >= LOST_BITS_MAX
            && self.stored - self.retired + more > self.capacity()
    }

    /// Put the distinct keys of sealed file `file` (their [`sealed_hasher`] hashes) in. A
    /// file already in is replaced.
    pub fn add_file(&mut self, file: u32, hashes: &[u64]) {
        self.retire(file);
        if self.add_to_rebuild(file, Some(hashes)) {
            return;
        }
        let Some(tag) = self.take_tag() else {
            tracing::warn!("sealed file {file} has no tag in the key table: searched always");
            self.untagged.insert(file);
            return;
        };
        self.make_room(hashes.len());
        if let Some(t) = self.tags.get_mut(usize::from(tag)) {
            *t = (Tag::Live(file), hashes.len());
        }
        self.tag_of_file.insert(file, tag);
        for &h in hashes {
            let (b, fp) = self.bucket_and_fingerprint(h);
            self.put(b, fp << 16 | u32::from(tag));
        }
        self.stored += hashes.len();
    }

    /// File `file` is listed as searched by every lookup (its keys could not be read).
    pub fn add_untagged(&mut self, file: u32) {
        self.retire(file);
        if !self.add_to_rebuild(file, None) {
            self.untagged.insert(file);
        }
    }

    /// File `file` leaves: its entries are skipped from now on.
    pub fn remove_file(&mut self, file: u32) {
        self.retire(file);
        self.leave_rebuild(file);
    }

    /// File `file` leaves this table (not a rebuild's new one).
    fn retire(&mut self, file: u32) {
        self.untagged.remove(&file);
        let Some(tag) = self.tag_of_file.remove(&file) else {
            return;
        };
        if let Some(t) = self.tags.get_mut(usize::from(tag)) {
            self.retired += t.1;
            t.0 = Tag::Retired;
        }
    }

    fn take_tag(&mut self) -> Option<u16> {
        if self.free_tags.is_empty() && self.tags.len() > TAG_MAX && self.retired > 0 {
            self.sweep();
        }
        if let Some(t) = self.free_tags.pop() {
            return Some(t);
        }
        let next = u16::try_from(self.tags.len()).ok()?;
        self.tags.push((Tag::Free, 0));
        Some(next)
    }

    /// Room for `more` entries: sweep retired ones, then split buckets.
    fn make_room(&mut self, more: usize) {
        if self.retired > 0 && self.retired * 4 >= self.stored {
            self.sweep();
        }
        while self.buckets.len() < BUCKETS_MAX
            && self.stored - self.retired + more > self.capacity()
        {
            self.split();
        }
    }

    fn put(&mut self, b: usize, entry: u32) {
        let Some(Bucket(slots)) = self.buckets.get_mut(b) else {
            return;
        };
        match slots.iter_mut().find(|s| **s == 0) {
            Some(s) => *s = entry,
            None => self
                .overflow
                .entry(u32::try_from(b).unwrap_or(u32::MAX))
                .or_default()
                .push(entry),
        }
    }

    fn is_retired(&self, entry: u32) -> bool {
        let tag = (entry & 0xffff) as usize;
        self.tags.get(tag).is_some_and(|t| t.0 == Tag::Retired)
    }

    /// Drop the entries of retired tags and free the tags.
    fn sweep(&mut self) {
        let overflow = std::mem::take(&mut self.overflow);
        let mut kept = 0usize;
        for bucket in &mut self.buckets {
            let mut n = 0;
            for i in 0..ENTRIES_PER_BUCKET {
                let e = bucket.0[i];
                bucket.0[i] = 0;
                let tag = (e & 0xffff) as usize;
                if e != 0 && self.tags.get(tag).is_some_and(|t| t.0 != Tag::Retired) {
                    bucket.0[n] = e;
                    n += 1;
                }
            }
            kept += n;
        }
        for (b, entries) in overflow {
            for e in entries {
                if !self.is_retired(e) {
                    self.put(b as usize, e);
                    kept += 1;
                }
            }
        }
        for (i, t) in self.tags.iter_mut().enumerate().skip(1) {
            if t.0 == Tag::Retired {
                *t = (Tag::Free, 0);
                self.free_tags.push(u16::try_from(i).unwrap_or(0));
            }
        }
        self.free_tags.retain(|&t| t != 0);
        self.stored = kept;
        self.retired = 0;
    }

    /// Twice the buckets: each entry moves on its fingerprint's top bit, which it loses.
    fn split(&mut self) {
        if self.retired > 0 {
            self.sweep();
        }
        let old = std::mem::take(&mut self.buckets);
        let overflow = std::mem::take(&mut self.overflow);
        self.lost_bits += 1;
        self.buckets = vec![Bucket::default(); old.len() * 2];
        let moved = |b: usize, e: u32| {
            let fp = e >> 16;
            let to = b * 2 + (fp >> (FINGERPRINT_BITS - 1)) as usize;
            (to, (fp << 1 & 0xffff) << 16 | (e & 0xffff))
        };
        for (b, bucket) in old.iter().enumerate() {
            for &e in bucket.0.iter().take_while(|&&e| e != 0) {
                let (to, e) = moved(b, e);
                self.put(to, e);
            }
        }
        for (b, entries) in overflow {
            for e in entries {
                let (to, e) = moved(b as usize, e);
                self.put(to, e);
            }
        }
    }

    /// Start loading the bucket of hash `h` into the CPU cache (a hint).
    pub fn prefetch(&self, h: u64) {
        let (b, _) = self.bucket_and_fingerprint(h);
        if let Some(bucket) = self.buckets.get(b) {
            crate::io::prefetch::prefetch(bucket);
        }
        if let Some(r) = self.rebuild.as_ref() {
            r.next.prefetch(h);
        }
    }

    /// The files that may hold the key of hash `h`, newest first.
    pub fn candidates(&self, h: u64) -> Candidates {
        let mut out = Candidates::default();
        self.rebuild_candidates(h, &mut out);
        let (b, fp) = self.bucket_and_fingerprint(h);
        let mask = (0xffff_u32 << self.lost_bits) & 0xffff;
        let mut take = |e: u32| {
            if (e >> 16 ^ fp) & mask == 0 {
                if let Some((Tag::Live(file), _)) = self.tags.get((e & 0xffff) as usize) {
                    out.push(*file);
                }
            }
        };
        let Some(Bucket(slots)) = self.buckets.get(b) else {
            out.newest_first();
            return out;
        };
        for &e in slots.iter().take_while(|&&e| e != 0) {
            take(e);
        }
        if slots[ENTRIES_PER_BUCKET - 1] != 0 {
            if let Some(more) = self.overflow.get(&u32::try_from(b).unwrap_or(u32::MAX)) {
                for &e in more {
                    take(e);
                }
            }
        }
        for &file in &self.untagged {
            out.push(file);
        }
        out.newest_first();
        out
    }

    /// Bytes held.
    pub fn allocated_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self
                .overflow
                .values()
                .map(|v| v.capacity() * 4 + 32)
                .sum::<usize>()
            + self.tags.capacity() * 16
            + self.tag_of_file.len() * 24
            + self
                .rebuild
                .as_ref()
                .map_or(0, |r| r.next.allocated_bytes())
    }
}

#[path = "key_files_candidates.rs"]
mod smallvec_like;

#[path = "key_files_rebuild.rs"]
pub mod rebuild;

#[cfg(test)]
#[path = "key_files_tests.rs"]
mod tests;
