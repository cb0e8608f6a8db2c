//! Start-up loading of the key index: a sealed file's sorted index is checked and walked
//! once, a chunk at a time, into its [`SealedIndex`] (filter and fences; its keys stay on
//! disk), the other files' recovered headers go in entry by entry; keys found in more than
//! one place (a crash between writing a new record and removing the old one) keep their
//! newest copy ([`super::dedupe`]).

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::index::{loc_of, Loc};
use super::log::BlobLog;
use super::sealed::{SealedIndex, SealedSummary};
use super::segment::Segment;
use crate::io::IoFile;
use crate::protocol::record_flags;
use std::path::Path;
use std::rc::Rc;

/// Older copies of keys, to be marked removed on disk once the log is open.
pub(super) type Stale<F> = Vec<(Rc<Segment<F>>, Loc)>;

/// The sorted index of a sealed file (its one index: a `.index` left beside it was
/// settled when the file was opened, see `BlobLog::open_sealed`), when consistent with its
/// data file (whole entries, every entry inside the data file, sorted by key then position).
pub fn load_sorted<F: IoFile>(
    seg: &Segment<F>,
) -> Result<Option<(SealedIndex, SealedSummary)>, BlobError> {
    let path = seg.sorted_path();
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    if meta.len() % DISK_CONTROL_SIZE_BYTES != 0 {
        return Ok(None);
    }
    SealedIndex::open(Path::new(&path), seg.data_len()?)
}

impl<F: IoFile> BlobLog<F> {
    /// Count `entries` of `seg` (records, removed ones, tail) and set its slots.
    fn count_entries(seg: &Segment<F>, entries: impl Iterator<Item = DiskControl>) {
        let mut tail = 0u64;
        let mut count = 0u64;
        let (mut removed, mut removed_bytes) = (0u64, 0u64);
        for dc in entries {
            count += 1;
            tail = tail.max(dc.position.saturating_add(dc.disk_size));
            if dc.flags & record_flags::REMOVE != 0 {
                removed += 1;
                removed_bytes += dc.disk_size;
            }
        }
        Self::set_counts(seg, count, removed, removed_bytes, tail);
    }

    fn set_counts(seg: &Segment<F>, count: u64, removed: u64, removed_bytes: u64, tail: u64) {
        seg.removed.set(seg.removed.get() + removed);
        seg.removed_bytes
            .set(seg.removed_bytes.get() + removed_bytes);
        seg.records.set(seg.records.get() + count);
        seg.tail_bytes.set(tail);
        seg.contiguous_end.set(tail);
        let slots = u32::try_from(count).unwrap_or(u32::MAX);
        seg.index_slots.set(slots);
        seg.pending.reset(slots);
    }

    /// Take in a sealed file's checked sorted index: counts from its walk, older copies
    /// of keys inside the file to `stale`, its keys behind its filter and fences.
    pub(super) fn load_sealed_entries(
        &self,
        seg: &Rc<Segment<F>>,
        sealed: SealedIndex,
        summary: SealedSummary,
        stale: &mut Stale<F>,
    ) {
        Self::set_counts(
            seg,
            summary.entries,
            summary.removed,
            summary.removed_bytes,
            summary.tail_bytes,
        );
        for (slot, dc) in &summary.stale {
            stale.push((seg.clone(), loc_of(seg.num, *slot, dc)));
        }
        self.index
            .borrow_mut()
            .load_sealed(seg.num, sealed, summary.live_keys);
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
            let loc = loc_of(seg.num, u32::try_from(slot).unwrap_or(u32::MAX), dc);
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
