//! [`BlobLog`]: the state of one log (segments, key index, group commit) and its
//! lifecycle: open with recovery, allocation and rotation, remove, sync, stats.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::ext_header::EXT_HEADER_SIZE_BYTES;
use super::index::{KeyIndex, Loc};
pub(super) use super::segment::Busy;
use super::segment::Segment;
use super::sync::{GroupCommit, KeyLocks};
use super::{BlobOptions, BlobStats, RecordMeta};
use crate::io::IoFile;
use crate::key::RawId;
use crate::protocol::record_flags;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

/// The blob log of one backend on one shard.
#[derive(Debug)]
pub struct BlobLog<F: IoFile> {
    pub(super) opts: BlobOptions,
    pub(super) _lock: std::fs::File,
    pub(super) files: RefCell<BTreeMap<u32, Rc<Segment<F>>>>,
    pub(super) index: RefCell<KeyIndex>,
    pub(super) locks: KeyLocks,
    pub(super) commit: GroupCommit,
    pub(super) dirty: RefCell<BTreeMap<u32, Rc<Segment<F>>>>,
    pub(super) read_only: Cell<bool>,
    pub(super) last_sync: Cell<Instant>,
    pub(super) writes: Cell<u64>,
    pub(super) fsyncs: Cell<u64>,
    pub(super) sync_rounds: Cell<u64>,
    /// A closed file still lacks its sorted index.
    pub(super) needs_sort: Cell<bool>,
    pub(super) sorting: Cell<bool>,
    pub(super) defrag_stop: Cell<super::defrag_state::DefragStop>,
    /// Under `sync = 0`: old copies of rewritten keys, marked removed on disk only once the
    /// round that makes their new copies durable is done (see `new_record_done`).
    pub(super) deferred_removals: RefCell<Vec<(Rc<Segment<F>>, Loc)>>,
    /// Those old copies by (file, position), from deferral until marked: a sort or defrag
    /// keeps them live in what it writes (their new copies may not be durable yet), and
    /// puts what it wrote in place only once no copy of its file is held.
    pub(super) old_copies_held: RefCell<std::collections::HashMap<(u32, u64), u32>>,
    /// A file was created since the directory was last made durable.
    pub(super) dir_sync_needed: Cell<bool>,
    pub(super) defrag: super::defrag_state::DefragControl,
    /// Values streamed in or out a piece at a time ([`super::stream`]).
    pub(super) streams: super::stream_table::StreamTable<F>,
}

impl<F: IoFile> BlobLog<F> {
    pub(super) fn segment(&self, num: u32) -> Result<Rc<Segment<F>>, BlobError> {
        self.files
            .borrow()
            .get(&num)
            .cloned()
            .ok_or_else(|| BlobError::Corrupt {
                path: format!("file {num}"),
                reason: "index points to a missing file".into(),
            })
    }

    /// The location of a live key (uncommitted included) and its segment.
    pub(super) fn locate(&self, id: &RawId) -> Result<(Loc, Rc<Segment<F>>), BlobError> {
        let loc = self.index.borrow().get(id).ok_or(BlobError::NotFound)?;
        Ok((loc, self.segment(loc.file)?))
    }

    /// Like [`Self::locate`], but uncommitted records do not exist.
    pub(super) fn locate_visible(&self, id: &RawId) -> Result<(Loc, Rc<Segment<F>>), BlobError> {
        let (loc, seg) = self.locate(id)?;
        if u64::from(loc.flags) & record_flags::UNCOMMITTED != 0 {
            return Err(BlobError::NotFound);
        }
        Ok((loc, seg))
    }

    pub(super) fn check_writable(&self) -> Result<(), BlobError> {
        if self.read_only.get() {
            return Err(BlobError::ReadOnly);
        }
        if self.commit.poisoned.get() {
            return Err(BlobError::Poisoned);
        }
        Ok(())
    }

    /// Hand out `disk_size` bytes at the end of the open file, rotating first if it is full.
    pub(super) fn allocate(&self, disk_size: u64) -> Result<(Rc<Segment<F>>, u64), BlobError> {
        if self.opts.blob_size_limit_bytes > 0 {
            let used: u64 = self
                .files
                .borrow()
                .values()
                .map(|s| s.tail_bytes.get())
                .sum();
            if used.saturating_add(disk_size) > self.opts.blob_size_limit_bytes {
                return Err(BlobError::NoSpace(format!(
                    "{used} bytes used, limit {}",
                    self.opts.blob_size_limit_bytes
                )));
            }
        }
        let mut seg = self.active()?;
        if seg.records.get() > 0
            && (seg.tail_bytes.get() >= self.opts.blob_size_bytes
                || seg.records.get() >= self.opts.records_in_blob)
        {
            seg.closed.set(true);
            if let Err(e) = seg.trim_zeros() {
                // Zeros past the last record are harmless to readers of the index; the
                // file keeps them.
                tracing::warn!(file = %seg.path, "cutting a closed file to its last record: {e}");
            }
            // The next round makes the closed file's index durable.
            seg.index_sync_needed.set(true);
            self.dirty.borrow_mut().insert(seg.num, seg.clone());
            self.needs_sort.set(true);
            let num = seg.num + 1;
            let next = Rc::new(Segment::open(
                &self.opts.data_prefix,
                self.opts.shard,
                num,
                false,
            )?);
            // The next round (or periodic sync) makes the new name durable, off this path.
            self.dir_sync_needed.set(true);
            self.files.borrow_mut().insert(num, next.clone());
            seg = next;
        }
        let position = seg.tail_bytes.get();
        assert!(
            disk_size >= DISK_CONTROL_SIZE_BYTES,
            "a record holds at least its header"
        );
        seg.tail_bytes.set(position + disk_size);
        seg.records.set(seg.records.get() + 1);
        Ok((seg, position))
    }

    /// The old copy at `position` of file `num` still holds an acknowledged value whose
    /// replacement may not be durable yet.
    pub(super) fn old_copy_held(&self, num: u32, position: u64) -> bool {
        let held = self.old_copies_held.borrow();
        !held.is_empty() && held.contains_key(&(num, position))
    }

    /// Some old copy in file `num` is held: a sort or defrag of the file waits (the copies
    /// it writes would keep it live where no mark reaches it later).
    pub(super) fn holds_in(&self, num: u32) -> bool {
        self.old_copies_held.borrow().keys().any(|&(f, _)| f == num)
    }

    /// The open (last) file.
    pub(super) fn active(&self) -> Result<Rc<Segment<F>>, BlobError> {
        self.files
            .borrow()
            .values()
            .next_back()
            .cloned()
            .ok_or(BlobError::Invalid("log has no files"))
    }

    /// Append a header to `seg`'s index and return its slot.
    pub(super) async fn append_index(
        &self,
        seg: &Segment<F>,
        dc: &DiskControl,
    ) -> Result<u32, BlobError> {
        let slot = seg.index_slots.get();
        debug_assert!(dc.position + dc.disk_size <= seg.tail_bytes.get());
        seg.index_slots.set(slot + 1);
        let provable = dc.flags & (record_flags::NOCSUM | record_flags::UNCOMMITTED) == 0
            && super::footer::FooterKind::of_flags(dc.flags).is_some();
        // Under periodic sync a record past a gap (left by a write that failed, say on a
        // full disk) cannot be found by walking the data file from the entries before it:
        // its entry goes to the `.index` at once (a write, no fdatasync), so a restart after
        // the process died still finds it.
        let after_gap = self.opts.sync_s != 0 && dc.position != seg.contiguous_end.get();
        seg.note_index_append(
            dc.position,
            dc.position.saturating_add(dc.disk_size),
            provable,
        );
        if seg.pending.push(slot, &dc.encode()) || after_gap {
            match seg.flush_index().await {
                // A full disk: the entries stay buffered for the next flush.
                Ok(()) | Err(BlobError::NoSpace(_)) => {}
                Err(e) => {
                    // A hole in the index would hide every later entry at recovery: stop.
                    self.commit.poisoned.set(true);
                    return Err(e);
                }
            }
        }
        Ok(slot)
    }

    /// Set REMOVE on a record on disk and count it as removed.
    pub(super) async fn mark_removed(
        &self,
        seg: &Rc<Segment<F>>,
        loc: &Loc,
    ) -> Result<(), BlobError> {
        self.set_removed(seg, loc, true).await
    }

    /// Count the old copy of a rewritten key as removed and mark its index entry only (not
    /// its data-file header; see `remove_old_copies`).
    pub(super) async fn mark_replaced(
        &self,
        seg: &Rc<Segment<F>>,
        loc: &Loc,
    ) -> Result<(), BlobError> {
        self.set_removed(seg, loc, false).await
    }

    async fn set_removed(
        &self,
        seg: &Rc<Segment<F>>,
        loc: &Loc,
        data_copy_too: bool,
    ) -> Result<(), BlobError> {
        let _busy = Busy::new(seg);
        let flags = u64::from(loc.flags) | record_flags::REMOVE;
        if data_copy_too {
            seg.patch_flags(loc.position, loc.index_slot, flags).await?;
            // Start-up trusts the `.index` under the synced point (`super::checkpoint`):
            // there the round that acknowledges the remove makes its mark durable too.
            if loc.index_slot < seg.sync_claim.get() {
                seg.index_sync_needed.set(true);
            }
            self.dirty.borrow_mut().insert(seg.num, seg.clone());
        } else {
            seg.patch_index_flags(loc.index_slot, flags).await?;
            if self.opts.sync_s != 0 {
                // The periodic sync covers the mark (recovery takes the newer copy anyway).
                self.dirty.borrow_mut().insert(seg.num, seg.clone());
            }
        }
        self.index
            .borrow_mut()
            .disk_marked(loc.file, loc.index_slot);
        seg.removed.set(seg.removed.get() + 1);
        seg.removed_bytes
            .set(seg.removed_bytes.get() + loc.disk_size);
        Ok(())
    }

    /// Remove a key: tombstone in the data header and the index; -ENOENT if absent.
    pub async fn remove(&self, id: &RawId) -> Result<(), BlobError> {
        self.check_writable()?;
        let _guard = self.locks.lock(*id).await;
        let (loc, seg) = self.locate(id)?;
        self.index.borrow_mut().remove(id);
        if let Err(e) = self.mark_removed(&seg, &loc).await {
            self.index.borrow_mut().insert(*id, loc);
            return Err(e);
        }
        let seq = self.commit.next_seq();
        self.made_durable(seq).await
    }

    /// Stop the next defrags at `stop`, leaving their files as a crash would (tests).
    #[doc(hidden)]
    pub fn set_defrag_stop(&self, stop: super::defrag_state::DefragStop) {
        self.defrag_stop.set(stop);
    }

    pub fn set_read_only(&self, ro: bool) {
        self.read_only.set(ro);
    }

    pub fn options(&self) -> &BlobOptions {
        &self.opts
    }

    /// Live keys in `[start, end]`, sorted (uncommitted records excluded).
    pub fn keys_in_range(&self, start: &RawId, end: &RawId) -> Vec<RawId> {
        let mut keys: Vec<RawId> = Vec::new();
        self.index.borrow().for_each_live(|k, l| {
            if k >= start && k <= end && u64::from(l.flags) & record_flags::UNCOMMITTED == 0 {
                keys.push(*k);
            }
        });
        keys.sort_unstable();
        keys
    }

    /// Every live committed record (a snapshot, in no particular order).
    pub fn iter_meta(&self) -> impl Iterator<Item = (RawId, RecordMeta)> {
        let mut snapshot: Vec<(RawId, RecordMeta)> = Vec::new();
        self.index.borrow().for_each_live(|k, l| {
            if u64::from(l.flags) & record_flags::UNCOMMITTED == 0 {
                let meta = RecordMeta {
                    file: l.file,
                    position: l.position,
                    size: l.data_size.saturating_sub(EXT_HEADER_SIZE_BYTES),
                    record_flags: u64::from(l.flags),
                };
                snapshot.push((*k, meta));
            }
        });
        snapshot.into_iter()
    }

    /// Bytes of RAM the key index holds.
    pub fn index_bytes(&self) -> usize {
        self.index.borrow().allocated_bytes()
    }

    pub fn stats(&self) -> BlobStats {
        let files = self.files.borrow();
        BlobStats {
            records: self.index.borrow().len() as u64,
            removed: files.values().map(|s| s.removed.get()).sum(),
            bytes: files.values().map(|s| s.tail_bytes.get()).sum(),
            files: files.len() as u64,
            removed_bytes: files.values().map(|s| s.removed_bytes.get()).sum(),
            defragmenting: self.defrag.state() != super::defrag_state::state::NOT_STARTED,
            writes: self.writes.get(),
            fsyncs: self.fsyncs.get(),
            sync_rounds: self.sync_rounds.get(),
        }
    }
}
