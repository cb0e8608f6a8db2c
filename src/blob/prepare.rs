//! The two-phase write of eblob: PREPARE reserves an UNCOMMITTED record (or re-flags a big
//! enough one), PLAIN_WRITE fills it, COMMIT seals it with its size and footer. Also the
//! steps every new record shares: extending the file, the index entry, removing the old copy.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use super::footer::{self, FooterHasher};
use super::index::Loc;
use super::log::{BlobLog, Busy};
use super::segment::Segment;
use super::write::{capacity, flags32, header_of, same_checksum, too_big};
use crate::io::IoFile;
use crate::key::RawId;
use crate::limits::VALUE_BYTES_MAX_CEILING;
use crate::protocol::record_flags;
use bytes::Bytes;
use std::rc::Rc;

/// Data bytes read at once while a footer is rebuilt from the disk.
const FOOTER_READ_BYTES_MAX: u64 = 4 << 20;

impl<F: IoFile> BlobLog<F> {
    pub(super) fn touch(&self, seg: &Rc<Segment<F>>) {
        self.dirty.borrow_mut().insert(seg.num, seg.clone());
    }

    /// Reserve `num` user bytes in an UNCOMMITTED record (reusing a big enough one).
    pub(super) async fn prepare(
        &self,
        id: &RawId,
        num: u64,
        csum_flags: u64,
        ext: &ExtHeader,
    ) -> Result<(Rc<Segment<F>>, Loc), BlobError> {
        if num > VALUE_BYTES_MAX_CEILING {
            return Err(too_big());
        }
        let need = num + EXT_HEADER_SIZE_BYTES;
        let ext_bytes = Bytes::copy_from_slice(&ext.encode());
        if let Ok((old, seg)) = self.locate(id) {
            if capacity(&old) >= need
                && same_checksum(&old, csum_flags)
                && !self.streams.is_reading(id)
            {
                let _busy = Busy::new(&seg);
                let loc = Loc {
                    flags: old.flags | flags32(record_flags::UNCOMMITTED),
                    data_size: need,
                    ..old
                };
                self.index.borrow_mut().insert(*id, loc);
                seg.write_header(&header_of(id, &loc), loc.index_slot)
                    .await?;
                seg.write_data(vec![ext_bytes], loc.position + DISK_CONTROL_SIZE_BYTES)
                    .await?;
                self.touch(&seg);
                return Ok((seg, loc));
            }
        }
        let flags = record_flags::EXTHDR | record_flags::UNCOMMITTED | csum_flags;
        let (dc, busy) = self.reserve_record(id, flags, need, need)?;
        let seg = busy.0.clone();
        let head = Bytes::copy_from_slice(&dc.encode());
        seg.write_data(vec![head, ext_bytes], dc.position).await?;
        self.extend_to(&seg, dc.position + dc.disk_size)?;
        self.new_record_done(id, &seg, dc).await
    }

    /// The step every new record starts with: room for `reserve` data bytes (ext header
    /// included) and the footer `flags` ask for, at the end of the open file, marked busy;
    /// its header says `flags` and `need` data bytes. The file is the guard's.
    pub(super) fn reserve_record(
        &self,
        id: &RawId,
        flags: u64,
        need: u64,
        reserve: u64,
    ) -> Result<(DiskControl, Busy<F>), BlobError> {
        let footer_bytes = if flags & record_flags::NOCSUM != 0 {
            0
        } else {
            footer::footer_size(reserve)
        };
        let disk_size = DISK_CONTROL_SIZE_BYTES + reserve + footer_bytes;
        let (seg, position) = self.allocate(disk_size)?;
        let busy = Busy::new(&seg);
        let dc = DiskControl {
            key: *id,
            flags,
            data_size: need,
            disk_size,
            position,
        };
        Ok((dc, busy))
    }

    /// Make sure the data file covers `end` (reserved space reads back as zeros).
    pub(super) fn extend_to(&self, seg: &Segment<F>, end: u64) -> Result<(), BlobError> {
        if seg.data_len()? < end {
            seg.data
                .as_std()
                .set_len(end)
                .map_err(|e| BlobError::io(&seg.path, e))?;
        }
        Ok(())
    }

    /// After a new record's bytes are written: index entry, key index, old copy removed.
    pub(super) async fn new_record_done(
        &self,
        id: &RawId,
        seg: &Rc<Segment<F>>,
        dc: DiskControl,
    ) -> Result<(Rc<Segment<F>>, Loc), BlobError> {
        self.new_record_placed(id, seg, dc, self.opts.sync_s == 0)
            .await
    }

    /// [`Self::new_record_done`]; with `hold_old` the old copy stays live on disk until the
    /// next sync round, else only its index entry is marked removed at once.
    pub(super) async fn new_record_placed(
        &self,
        id: &RawId,
        seg: &Rc<Segment<F>>,
        dc: DiskControl,
        hold_old: bool,
    ) -> Result<(Rc<Segment<F>>, Loc), BlobError> {
        let slot = self.append_index(seg, &dc).await?;
        let loc = Loc {
            position: dc.position,
            data_size: dc.data_size,
            disk_size: dc.disk_size,
            file: seg.num,
            index_slot: slot,
            flags: flags32(dc.flags),
        };
        let old = self.index.borrow_mut().insert(*id, loc);
        self.touch(seg);
        if let Some(old) = old {
            let old_seg = self.segment(old.file)?;
            if hold_old {
                // The old copy holds the acknowledged value until the new one is durable: a
                // power cut before then must find it, not a tombstone. Until the round ends
                // both copies are live on disk; recovery keeps the newer one.
                *self
                    .old_copies_held
                    .borrow_mut()
                    .entry((old.file, old.position))
                    .or_insert(0) += 1;
                self.deferred_removals.borrow_mut().push((old_seg, old));
            } else {
                // Only the index entry is marked: recovery keeps the newer copy either way,
                // and a rewrite of a key in a sealed file costs one index store.
                self.mark_replaced(&old_seg, &old).await?;
            }
        }
        Ok((seg.clone(), loc))
    }

    /// PLAIN_WRITE: the ext header and `data` at `offset` inside an uncommitted record.
    pub(super) async fn plain_write(
        &self,
        seg: &Rc<Segment<F>>,
        loc: &Loc,
        offset: u64,
        data: &Bytes,
        ext: &ExtHeader,
    ) -> Result<(), BlobError> {
        let end = offset
            .checked_add(data.len() as u64)
            .and_then(|e| e.checked_add(EXT_HEADER_SIZE_BYTES))
            .ok_or_else(too_big)?;
        if end > capacity(loc) {
            return Err(BlobError::CommitTooLarge {
                commit_bytes: end,
                capacity_bytes: capacity(loc),
            });
        }
        let _busy = Busy::new(seg);
        let base = loc.position + DISK_CONTROL_SIZE_BYTES;
        seg.write_data(vec![Bytes::copy_from_slice(&ext.encode())], base)
            .await?;
        if !data.is_empty() {
            seg.write_data(vec![data.clone()], base + EXT_HEADER_SIZE_BYTES + offset)
                .await?;
        }
        self.touch(seg);
        Ok(())
    }

    /// COMMIT: `csize` data bytes (ext header included) become the value.
    pub(super) async fn commit_record(
        &self,
        id: &RawId,
        seg: &Rc<Segment<F>>,
        loc: Loc,
        csize: u64,
    ) -> Result<Loc, BlobError> {
        if u64::from(loc.flags) & record_flags::UNCOMMITTED == 0 {
            return Err(BlobError::NotPermitted("commit of a committed record"));
        }
        if csize > capacity(&loc) {
            return Err(BlobError::CommitTooLarge {
                commit_bytes: csize,
                capacity_bytes: capacity(&loc),
            });
        }
        let _busy = Busy::new(seg);
        let new = Loc {
            data_size: csize,
            flags: loc.flags & !flags32(record_flags::UNCOMMITTED),
            ..loc
        };
        self.write_footer(seg, &new).await?;
        seg.write_header(&header_of(id, &new), new.index_slot)
            .await?;
        self.index.borrow_mut().insert(*id, new);
        self.touch(seg);
        Ok(new)
    }

    /// Recompute and write the footer of a record from its data on disk, read a bounded
    /// piece at a time (a committed value may be far larger than memory).
    pub(super) async fn write_footer(&self, seg: &Segment<F>, loc: &Loc) -> Result<(), BlobError> {
        if u64::from(loc.flags) & record_flags::NOCSUM != 0 {
            return Ok(());
        }
        let mut hasher = FooterHasher::default();
        let base = loc.position + DISK_CONTROL_SIZE_BYTES;
        while hasher.total_bytes() < loc.data_size {
            let len = (loc.data_size - hasher.total_bytes()).min(FOOTER_READ_BYTES_MAX);
            let piece = seg.read_data(len, base + hasher.total_bytes()).await?;
            hasher.update(&piece);
        }
        let foot = hasher.finish();
        let at = loc.position + loc.disk_size - foot.len() as u64;
        seg.write_data(vec![Bytes::from(foot)], at).await
    }
}
