//! Start-up loading of the key index: sorted indexes of sealed files (read whole and
//! validated by [`load_sorted`]) go in as whole arrays,
//! the other files' recovered headers entry by entry; keys found in more than one place (a
//! crash between writing a new record and removing the old one) keep their newest copy.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::index::Loc;
use super::log::BlobLog;
use super::segment::{open_rw, Segment};
use crate::io::IoFile;
use crate::key::RawId;
use crate::protocol::record_flags;
use std::path::Path;
use std::rc::Rc;

/// Older copies of keys, to be marked removed on disk once the log is open.
pub(super) type Stale<F> = Vec<(Rc<Segment<F>>, Loc)>;

fn loc_of(seg_num: u32, slot: usize, dc: &DiskControl) -> Loc {
    Loc {
        position: dc.position,
        data_size: dc.data_size,
        disk_size: dc.disk_size,
        file: seg_num,
        index_slot: u32::try_from(slot).unwrap_or(u32::MAX),
        flags: u32::try_from(dc.flags & 0xffff_ffff).unwrap_or(0),
    }
}

/// A validated `.index.sorted`, kept as read: entries are decoded as they are used, so
/// loading one costs one read and no per-entry allocation.
#[derive(Debug)]
pub struct SortedIndex(Vec<u8>);

impl SortedIndex {
    pub fn entry_count(&self) -> usize {
        self.0.len() / ENTRY_BYTES
    }

    pub fn entries(&self) -> impl Iterator<Item = DiskControl> + '_ {
        (0..self.entry_count()).filter_map(|i| DiskControl::decode_at(&self.0, i))
    }
}

const ENTRY_BYTES: usize = DISK_CONTROL_SIZE_BYTES as usize;

/// The sorted index of a closed file, when present and consistent with its data file
/// (every entry inside the file, sorted by key then position).
pub async fn load_sorted<F: IoFile>(seg: &Segment<F>) -> Result<Option<SortedIndex>, BlobError> {
    let path = seg.sorted_path();
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    let len = meta.len();
    let data_len = seg.data_len()?;
    if len % DISK_CONTROL_SIZE_BYTES != 0 || len != seg.index_len()? {
        return Ok(None);
    }
    let file = F::from_std(open_rw(Path::new(&path), true)?);
    let size = usize::try_from(len).map_err(|_| BlobError::Invalid("sorted index too large"))?;
    let (res, buf) = file.read_exact_at(vec![0u8; size], 0).await;
    res.map_err(|e| BlobError::io(&path, e))?;
    let mut prev: Option<DiskControl> = None;
    for i in 0..size / ENTRY_BYTES {
        let Some(dc) = DiskControl::decode_at(&buf, i) else {
            return Ok(None);
        };
        let fits = dc
            .data_size
            .checked_add(DISK_CONTROL_SIZE_BYTES)
            .is_some_and(|m| m <= dc.disk_size)
            && dc
                .position
                .checked_add(dc.disk_size)
                .is_some_and(|e| e <= data_len);
        let sorted = prev.is_none_or(|p| (p.key, p.position) <= (dc.key, dc.position));
        if !fits || !sorted {
            return Ok(None);
        }
        prev = Some(dc);
    }
    Ok(Some(SortedIndex(buf)))
}

impl<F: IoFile> BlobLog<F> {
    /// Count `entries` of `seg` (records, removed ones, tail) and set its slots.
    fn count_entries(seg: &Segment<F>, entries: impl Iterator<Item = DiskControl>) {
        let mut tail = 0u64;
        let mut count = 0usize;
        for dc in entries {
            count += 1;
            tail = tail.max(dc.position.saturating_add(dc.disk_size));
            if dc.flags & record_flags::REMOVE != 0 {
                seg.removed.set(seg.removed.get() + 1);
                seg.removed_bytes
                    .set(seg.removed_bytes.get() + dc.disk_size);
            }
        }
        seg.records.set(seg.records.get() + count as u64);
        seg.tail_bytes.set(tail);
        seg.contiguous_end.set(tail);
        let slots = u32::try_from(count).unwrap_or(u32::MAX);
        seg.index_slots.set(slots);
        seg.pending.reset(slots);
    }

    /// Put the entries of a sealed file's sorted index (sorted by key, then position, as
    /// [`load_sorted`] checks) in as one array.
    pub(super) fn load_sealed_entries(
        &self,
        seg: &Rc<Segment<F>>,
        sorted: &SortedIndex,
        stale: &mut Stale<F>,
    ) {
        Self::count_entries(seg, sorted.entries());
        let mut live: Vec<(RawId, Loc)> = Vec::with_capacity(sorted.entry_count());
        for (slot, dc) in sorted.entries().enumerate() {
            if dc.flags & record_flags::REMOVE != 0 {
                continue;
            }
            let loc = loc_of(seg.num, slot, &dc);
            match live.last_mut() {
                Some((k, prev)) if *k == dc.key => {
                    // Sorted by (key, position): the later record is the newer one.
                    stale.push((seg.clone(), *prev));
                    *prev = loc;
                }
                _ => live.push((dc.key, loc)),
            }
        }
        self.index.borrow_mut().load_sealed(seg.num, live);
    }

    /// Put recovered headers of `seg` (in index order) into the key index; older live
    /// copies of a key go to `stale`. Copies in sealed files are settled by
    /// [`Self::settle_duplicates`].
    pub(super) fn apply_entries(
        &self,
        seg: &Rc<Segment<F>>,
        entries: &[DiskControl],
        stale: &mut Stale<F>,
    ) {
        Self::count_entries(seg, entries.iter().copied());
        let mut index = self.index.borrow_mut();
        for (slot, dc) in entries.iter().enumerate() {
            if dc.flags & record_flags::REMOVE != 0 {
                continue;
            }
            let loc = loc_of(seg.num, slot, dc);
            match index.get_loading(&dc.key).copied() {
                Some(old) if (old.file, old.position) > (loc.file, loc.position) => {
                    stale.push((seg.clone(), loc));
                }
                Some(old) => {
                    if let Some(old_seg) = self.files.borrow().get(&old.file) {
                        stale.push((old_seg.clone(), old));
                    } else if old.file == seg.num {
                        stale.push((seg.clone(), old));
                    }
                    index.insert_loading(dc.key, loc);
                }
                None => {
                    index.insert_loading(dc.key, loc);
                }
            }
        }
    }

    /// After every file is loaded: keys held by several files keep the newest copy.
    pub(super) fn settle_duplicates(&self, stale: &mut Stale<F>) {
        let older = self.index.borrow_mut().resolve_duplicates();
        for loc in older {
            if let Some(seg) = self.files.borrow().get(&loc.file) {
                stale.push((seg.clone(), loc));
            }
        }
    }
}
