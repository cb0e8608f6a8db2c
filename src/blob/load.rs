//! Start-up loading of the key index: sorted indexes of sealed files go in as whole arrays,
//! the other files' recovered headers entry by entry; keys found in more than one place (a
//! crash between writing a new record and removing the old one) keep their newest copy.

use super::disk_control::DiskControl;
use super::index::Loc;
use super::log::BlobLog;
use super::recovery::SortedIndex;
use super::segment::Segment;
use crate::io::IoFile;
use crate::key::RawId;
use crate::protocol::record_flags;
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
        let slots = u32::try_from(count).unwrap_or(u32::MAX);
        seg.index_slots.set(slots);
        seg.pending.reset(slots);
    }

    /// Put the entries of a sealed file's sorted index (sorted by key, then position, as
    /// [`super::recovery::load_sorted`] checks) in as one array.
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
