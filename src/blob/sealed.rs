//! The keys of one sealed file, found through its sorted index in the page cache.
//!
//! A sealed file's `.index.sorted` holds its 96-byte headers ([`super::disk_control`])
//! sorted by key, then position. RAM keeps only what finds the right page of it:
//!
//! | structure        | per                  | bytes | content                                   |
//! |------------------|----------------------|------:|-------------------------------------------|
//! | fence prefix     | 4 KiB page of index  |     8 | first 8 bytes of the page's first key     |
//! | fence key        | 4 KiB page of index  |    64 | key of the first entry starting in page   |
//! | straddler        | 4 KiB page of index  |    96 | the entry starting in the page and ending in the next one |
//!
//! A page holds 42 or 43 entry starts, so the fences and straddlers cost about 4 bytes per
//! key. Which sealed file may hold a key is the log's one table
//! ([`super::key_files::KeyFiles`]), to which [`SealedIndex::open`] hands the hashes of
//! the file's distinct keys. A lookup bisects the fence prefixes, and then either answers from the page's straddler or bisects the
//! entries lying wholly inside that one page, read through a read-only shared mapping of
//! the file (guarded against `SIGBUS`; a `pread` of the page when the mapping is gone).
//! Removes and in-place changes patch the file itself ([`super::segment`]), so a lookup
//! sees them, except for straddlers: their RAM copy is read again by
//! [`SealedIndex::refresh`], which the owner calls after each change of an entry. What the
//! owner has changed in RAM but not yet on disk is its business
//! ([`super::index::KeyIndex`]).
//!
//! Within a file the last entry of a key (the highest position) is its newest copy; the
//! lookup answers that one, removed or not.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::key_files::sealed_hasher;
use crate::io::mapped::Mapping;
use crate::key::RawId;
use crate::protocol::record_flags;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use super::sealed_walk::Cursor;
use super::sealed_walk::{slot32, walk_file};

/// Bytes of one page of the sorted index.
pub const PAGE_BYTES: u64 = 4096;

const ENTRY_BYTES: u64 = DISK_CONTROL_SIZE_BYTES;

/// The first entry starting at or after byte `PAGE_BYTES * page`.
fn first_entry_of_page(page: u64) -> u64 {
    (page * PAGE_BYTES).div_ceil(ENTRY_BYTES)
}

/// Whether the 64 key bytes `k` sort at or before `key` (whose first 8 bytes, big-endian,
/// are `key_prefix`): the prefixes decide unless they are equal, so a bisection step is
/// one integer compare instead of a 64-byte `memcmp` call.
#[inline]
fn key_at_most(k: &[u8], key: &RawId, key_prefix: u64) -> bool {
    if let Some(&[b0, b1, b2, b3, b4, b5, b6, b7]) = k.get(..8) {
        let p = u64::from_be_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
        if p != key_prefix {
            return p < key_prefix;
        }
    }
    k <= &key.0[..]
}

/// What [`SealedIndex::open`] found in the file.
#[derive(Debug, Default)]
pub struct SealedSummary {
    pub entries: u64,
    /// Entries carrying REMOVE, and the data bytes they occupy.
    pub removed: u64,
    pub removed_bytes: u64,
    /// End of the last record in the data file.
    pub tail_bytes: u64,
    /// Older live copies of keys that also have a newer entry in the file, by slot.
    pub stale: Vec<(u32, DiskControl)>,
    /// Keys whose newest entry in the file is live.
    pub live_keys: u64,
}

/// The RAM side of a sealed file's sorted index (see the module header).
#[derive(Debug)]
pub struct SealedIndex {
    pub(super) file: File,
    pub(super) path: String,
    map: Option<Mapping>,
    pub(super) entries: u64,
    fence_prefixes: Vec<u64>,
    fences: Vec<RawId>,
    straddlers: Vec<DiskControl>,
    /// The [`sealed_hasher`] hashes of the distinct keys, until the key table takes them.
    key_hashes: Vec<u64>,
}

impl SealedIndex {
    /// Read and check the sorted index at `path` of a data file of `data_len` bytes: every
    /// entry inside the data file, entries sorted by key then position. `None` when it is
    /// missing or fails a check (the caller rebuilds it).
    pub fn open(
        path: &Path,
        data_len: u64,
    ) -> Result<Option<(SealedIndex, SealedSummary)>, BlobError> {
        let shown = path.display().to_string();
        let Ok(file) = File::open(path) else {
            return Ok(None);
        };
        let len = file.metadata().map_err(|e| BlobError::io(&shown, e))?.len();
        if len % ENTRY_BYTES != 0 {
            return Ok(None);
        }
        let entries = len / ENTRY_BYTES;
        let pages = usize::try_from(len.div_ceil(PAGE_BYTES))
            .map_err(|_| BlobError::Invalid("sorted index too large"))?;
        let mut build = Build {
            fence_prefixes: Vec::with_capacity(pages),
            fences: Vec::with_capacity(pages),
            straddlers: vec![EMPTY_ENTRY; pages],
            key_hashes: Vec::with_capacity(usize::try_from(entries).unwrap_or(0)),
        };
        let mut sum = SealedSummary {
            entries,
            ..SealedSummary::default()
        };
        let mut prev: Option<DiskControl> = None;
        let mut bad = false;
        walk_file(&file, &shown, entries, |slot, dc| {
            let fits = dc
                .data_size
                .checked_add(ENTRY_BYTES)
                .is_some_and(|m| m <= dc.disk_size)
                && dc
                    .position
                    .checked_add(dc.disk_size)
                    .is_some_and(|e| e <= data_len);
            let sorted = prev.is_none_or(|p| (p.key, p.position) <= (dc.key, dc.position));
            if !fits || !sorted {
                bad = true;
                return false;
            }
            build.note_entry(slot, dc, prev.is_none_or(|p| p.key != dc.key));
            sum.tail_bytes = sum.tail_bytes.max(dc.position + dc.disk_size);
            if dc.flags & record_flags::REMOVE != 0 {
                sum.removed += 1;
                sum.removed_bytes += dc.disk_size;
            }
            match prev {
                Some(p) if p.key == dc.key && p.flags & record_flags::REMOVE == 0 => {
                    sum.stale.push((slot.saturating_sub(1), p));
                }
                Some(p) if p.key != dc.key && p.flags & record_flags::REMOVE == 0 => {
                    sum.live_keys += 1
                }
                _ => {}
            }
            prev = Some(*dc);
            true
        })?;
        if prev.is_some_and(|p| p.flags & record_flags::REMOVE == 0) {
            sum.live_keys += 1;
        }
        if bad {
            return Ok(None);
        }
        let mut map = None;
        if len > 0 {
            match Mapping::new(&file, usize::try_from(len).unwrap_or(usize::MAX), false) {
                Ok(m) => map = Some(m),
                Err(e) => tracing::warn!(file = %shown, "sorted index read with pread: {e}"),
            }
        }
        let idx = SealedIndex {
            file,
            path: shown,
            map,
            entries,
            fence_prefixes: build.fence_prefixes,
            fences: build.fences,
            straddlers: build.straddlers,
            key_hashes: build.key_hashes,
        };
        Ok(Some((idx, sum)))
    }

    /// A cursor over the entries in slot order, a chunk at a time.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor::new(&self.file, &self.path, self.entries)
    }

    /// Call `f` with every entry in slot order until it answers `false`.
    pub fn walk(&self, f: impl FnMut(u32, &DiskControl) -> bool) -> Result<(), BlobError> {
        walk_file(&self.file, &self.path, self.entries, f)
    }

    pub fn entry_count(&self) -> u64 {
        self.entries
    }

    /// The hashes of the file's distinct keys found when it was opened (once).
    pub fn take_key_hashes(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.key_hashes)
    }

    /// The hashes of the file's distinct keys, read from the file again.
    pub fn key_hashes(&self) -> Result<Vec<u64>, BlobError> {
        let mut out = Vec::new();
        let mut last: Option<RawId> = None;
        self.walk(|_, dc| {
            if last != Some(dc.key) {
                out.push(sealed_hasher().hash(&dc.key));
                last = Some(dc.key);
            }
            true
        })?;
        Ok(out)
    }

    /// The page whose entries would hold `key`: the last one whose fence key is `<= key`.
    fn page_of(&self, key: &RawId) -> Option<u64> {
        let kp = key.prefix_u64();
        let mut u = self.fence_prefixes.partition_point(|&p| p <= kp);
        while u > 0
            && self
                .fences
                .get(u - 1)
                .is_some_and(|f| !key_at_most(&f.0, key, kp))
        {
            u -= 1;
        }
        u.checked_sub(1).map(|p| p as u64)
    }

    /// The newest entry of `key` in the file (removed or not) and its slot.
    pub fn find(&self, key: &RawId) -> Result<Option<(u32, DiskControl)>, BlobError> {
        let Some(page) = self.page_of(key) else {
            return Ok(None);
        };
        let start = first_entry_of_page(page);
        let end = first_entry_of_page(page + 1).min(self.entries);
        let mut whole_end = end;
        if end > start && end * ENTRY_BYTES > (page + 1) * PAGE_BYTES {
            let st = usize::try_from(page)
                .ok()
                .and_then(|p| self.straddlers.get(p))
                .ok_or(BlobError::Invalid("sorted index page out of range"))?;
            match st.key.cmp(key) {
                std::cmp::Ordering::Equal => return Ok(Some((slot32(end - 1), *st))),
                std::cmp::Ordering::Less => return Ok(None),
                std::cmp::Ordering::Greater => whole_end = end - 1,
            }
        }
        let count = usize::try_from(whole_end.saturating_sub(start)).unwrap_or(0);
        let kp = key.prefix_u64();
        let found = self.in_entries(start, count, |bytes| {
            // Entries with a key <= `key`, then the last of them.
            let (mut lo, mut hi) = (0usize, count);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let k = bytes.get(mid * 96..mid * 96 + 64).unwrap_or(&[]);
                if key_at_most(k, key, kp) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let i = lo.checked_sub(1)?;
            let dc = DiskControl::decode_at(bytes, i)?;
            (dc.key == *key).then_some((i, dc))
        })?;
        Ok(found.map(|(i, dc)| (slot32(start + i as u64), dc)))
    }

    /// Run `f` over the bytes of `count` entries from slot `first` (inside one page): through
    /// the mapping, or read with `pread` when there is none or it faulted.
    fn in_entries<R>(
        &self,
        first: u64,
        count: usize,
        f: impl Fn(&[u8]) -> R,
    ) -> Result<R, BlobError> {
        let offset = first * ENTRY_BYTES;
        let len = count * ENTRY_BYTES as usize;
        if let Some(map) = &self.map {
            if let Some(Ok((r, _))) = map.with_bytes(
                usize::try_from(offset).unwrap_or(usize::MAX),
                len,
                false,
                &f,
            ) {
                return Ok(r);
            }
        }
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| BlobError::io(&self.path, e))?;
        Ok(f(&buf))
    }

    /// Entry `slot` changed in the file: a straddler's RAM copy is read again (the other
    /// entries are read from the file at each lookup).
    pub fn refresh(&mut self, slot: u32) -> Result<(), BlobError> {
        let start = u64::from(slot) * ENTRY_BYTES;
        let page = start / PAGE_BYTES;
        if u64::from(slot) >= self.entries || start + ENTRY_BYTES <= (page + 1) * PAGE_BYTES {
            return Ok(());
        }
        let mut buf = [0u8; ENTRY_BYTES as usize];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| BlobError::io(&self.path, e))?;
        if let Some(s) = usize::try_from(page)
            .ok()
            .and_then(|p| self.straddlers.get_mut(p))
        {
            *s = DiskControl::decode(&buf);
        }
        Ok(())
    }

    /// The entry at `slot`, read from the file.
    pub fn entry_at(&self, slot: u32) -> Result<Option<DiskControl>, BlobError> {
        if u64::from(slot) >= self.entries {
            return Ok(None);
        }
        self.in_entries(u64::from(slot), 1, |b| DiskControl::decode_at(b, 0))
    }

    /// Bytes of RAM held.
    pub fn allocated_bytes(&self) -> usize {
        self.key_hashes.capacity() * 8
            + self.fence_prefixes.capacity() * 8
            + self.fences.capacity() * std::mem::size_of::<RawId>()
            + self.straddlers.capacity() * std::mem::size_of::<DiskControl>()
    }
}

/// The RAM structures while they are built.
struct Build {
    fence_prefixes: Vec<u64>,
    fences: Vec<RawId>,
    straddlers: Vec<DiskControl>,
    key_hashes: Vec<u64>,
}

const EMPTY_ENTRY: DiskControl = DiskControl {
    key: RawId([0; 64]),
    flags: 0,
    data_size: 0,
    disk_size: 0,
    position: 0,
};

impl Build {
    /// Put entry `slot` into the key hashes (a key's first entry), the fences and the
    /// straddlers.
    fn note_entry(&mut self, slot: u32, dc: &DiskControl, new_key: bool) {
        if new_key {
            self.key_hashes.push(sealed_hasher().hash(&dc.key));
        }
        let start = u64::from(slot) * ENTRY_BYTES;
        let page = start / PAGE_BYTES;
        if first_entry_of_page(page) == u64::from(slot) {
            self.fence_prefixes.push(dc.key.prefix_u64());
            self.fences.push(dc.key);
        }
        if start + ENTRY_BYTES > (page + 1) * PAGE_BYTES {
            if let Some(s) = usize::try_from(page)
                .ok()
                .and_then(|p| self.straddlers.get_mut(p))
            {
                *s = *dc;
            }
        }
    }
}

#[cfg(test)]
#[path = "sealed_tests.rs"]
pub(super) mod tests;
