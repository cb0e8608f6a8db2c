//! The write paths of Elliptics 2.26 on eblob (spec §5.6): plain write (in place when the
//! record is big enough, else a new record with the old bytes copied and the old one
//! removed), APPEND (2x reserve when it moves, 4x for a new key), PREPARE / PLAIN_WRITE /
//! COMMIT, compare-and-swap on sha512 and on timestamp.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use super::footer::{self, FooterKind};
use super::index::Loc;
use super::log::{BlobLog, Busy};
use super::read::record_info;
use super::segment::Segment;
use super::{RecordInfo, BLOB_FLAG_NO_FOOTER};
use crate::io::IoFile;
use crate::key::RawId;
use crate::limits::FRAME_PAYLOAD_BYTES_MAX_CEILING;
use crate::protocol::{io_flags, record_flags, DnetTime, IoAttr};
use bytes::Bytes;
use sha2::{Digest, Sha512};
use std::rc::Rc;

/// Largest value (user bytes) a record may hold; bounds every buffer a write allocates.
pub const VALUE_SIZE_BYTES_MAX: u64 = FRAME_PAYLOAD_BYTES_MAX_CEILING;

pub(super) const HEAD_BYTES: u64 = DISK_CONTROL_SIZE_BYTES + EXT_HEADER_SIZE_BYTES;

/// Data bytes (ext header included) a record can hold.
pub(super) fn capacity(loc: &Loc) -> u64 {
    let room = loc.disk_size.saturating_sub(DISK_CONTROL_SIZE_BYTES);
    if u64::from(loc.flags) & record_flags::NOCSUM != 0 {
        room
    } else {
        room.saturating_sub(footer::footer_size(room))
    }
}

/// Whether a record can take a write that wants `csum_flags` without changing its footer.
pub(super) fn same_checksum(loc: &Loc, csum_flags: u64) -> bool {
    let flags = u64::from(loc.flags);
    if csum_flags & record_flags::NOCSUM != 0 {
        flags & record_flags::NOCSUM != 0
    } else {
        flags & record_flags::NOCSUM == 0 && flags & record_flags::CRC32_CSUM != 0
    }
}

pub(super) fn header_of(id: &RawId, loc: &Loc) -> DiskControl {
    DiskControl {
        key: *id,
        flags: u64::from(loc.flags),
        data_size: loc.data_size,
        disk_size: loc.disk_size,
        position: loc.position,
    }
}

pub(super) fn flags32(flags: u64) -> u32 {
    u32::try_from(flags & 0xffff_ffff).unwrap_or(0)
}

pub(super) fn too_big() -> BlobError {
    BlobError::Invalid("offset + size exceeds the largest value")
}

/// The bytes around a whole value rewritten in place: its ext header and footer.
pub(super) struct WholeValue {
    base: u64,
    ext_bytes: [u8; EXT_HEADER_SIZE_BYTES as usize],
    /// Empty for a record without footer.
    foot: Vec<u8>,
    foot_at: u64,
}

impl WholeValue {
    /// For `data` replacing the whole value of record `new`.
    pub(super) fn new(new: &Loc, ext: &ExtHeader, data: &[u8]) -> WholeValue {
        let ext_bytes = ext.encode();
        let foot = if u64::from(new.flags) & record_flags::NOCSUM == 0 {
            footer::build_parts(FooterKind::Crc32, &[&ext_bytes, data])
        } else {
            Vec::new()
        };
        WholeValue {
            base: new.position + DISK_CONTROL_SIZE_BYTES,
            ext_bytes,
            foot_at: new.position + new.disk_size - foot.len() as u64,
            foot,
        }
    }

    /// The footer directly follows the value (or there is none).
    fn joined(&self, data_len: usize) -> bool {
        self.foot.is_empty() || self.foot_at == self.base + EXT_HEADER_SIZE_BYTES + data_len as u64
    }

    /// Store ext header, value and footer through the segment's page-cache map; `false`
    /// when they must be written with [`WholeValue::write`] instead.
    pub(super) fn store_mapped<F: IoFile>(&self, seg: &Segment<F>, data: &[u8]) -> bool {
        if self.joined(data.len()) {
            seg.write_mapped(self.base, &[&self.ext_bytes, data, &self.foot])
        } else {
            seg.write_mapped(self.base, &[&self.ext_bytes, data])
                && seg.write_mapped(self.foot_at, &[&self.foot])
        }
    }

    /// Write ext header, value and footer with one vectored write (two when the footer
    /// does not follow the value).
    async fn write<F: IoFile>(self, seg: &Segment<F>, data: &Bytes) -> Result<(), BlobError> {
        let joined = self.joined(data.len());
        let mut parts = vec![Bytes::copy_from_slice(&self.ext_bytes), data.clone()];
        if joined {
            if !self.foot.is_empty() {
                parts.push(Bytes::from(self.foot));
            }
            return seg.write_data(parts, self.base).await;
        }
        seg.write_data(parts, self.base).await?;
        seg.write_data(vec![Bytes::from(self.foot)], self.foot_at)
            .await
    }
}

/// What a plain (non-PLAIN_WRITE) write puts where.
struct Plan {
    offset: u64,
    new_user: u64,
    committed_user: u64,
    append: bool,
}

impl<F: IoFile> BlobLog<F> {
    /// Write a value as `io` describes (flags, offset, num, timestamp, user_flags).
    pub async fn write(&self, io: &IoAttr, data: Bytes) -> Result<RecordInfo, BlobError> {
        self.check_writable()?;
        let _guard = self.locks.lock(io.id).await;
        self.check_writable()?;
        let timestamp = if io.timestamp.is_empty() {
            DnetTime::now()
        } else {
            io.timestamp
        };
        let ext = ExtHeader {
            timestamp,
            user_flags: io.user_flags,
        };
        if io.flags & (io_flags::CAS_TIMESTAMP | io_flags::COMPARE_AND_SWAP) != 0 {
            // Rare paths are boxed: they would otherwise size every write's future.
            Box::pin(self.check_cas(io, timestamp)).await?;
        }
        let csum_flags = self.csum_flags_of(io);
        let prepare = io.flags & io_flags::PREPARE != 0;
        let commit = io.flags & io_flags::COMMIT != 0;
        let mut prepared = None;
        if prepare {
            prepared = Some(Box::pin(self.prepare(&io.id, io.num, csum_flags, &ext)).await?);
        }
        let (seg, loc) = if io.flags & io_flags::PLAIN_WRITE != 0 {
            let (loc, seg) = self.locate(&io.id)?;
            if u64::from(loc.flags) & record_flags::UNCOMMITTED == 0 {
                return Err(BlobError::NotPermitted(
                    "plain write into a committed record",
                ));
            }
            Box::pin(self.plain_write(&seg, &loc, io.offset, &data, &ext)).await?;
            if commit {
                let user = if prepare {
                    io.offset
                        .checked_add(data.len() as u64)
                        .ok_or_else(too_big)?
                } else {
                    io.num
                };
                let csize = user
                    .checked_add(EXT_HEADER_SIZE_BYTES)
                    .ok_or_else(too_big)?;
                let loc = Box::pin(self.commit_record(&io.id, &seg, loc, csize)).await?;
                (seg, loc)
            } else {
                (seg, loc)
            }
        } else if let (Some(p), true, false) = (prepared.clone(), data.is_empty(), commit) {
            p
        } else {
            self.normal_write(io, &data, &ext, csum_flags).await?
        };
        self.writes.set(self.writes.get() + 1);
        let seq = self.commit.next_seq();
        self.made_durable(seq).await?;
        drop(_guard);
        Ok(record_info(&seg, &loc, &ext))
    }

    /// The checksum flag a write's record gets: none under the request's NOCSUM or the
    /// backend's NO_FOOTER, else our CRC32 footer.
    pub(super) fn csum_flags_of(&self, io: &IoAttr) -> u64 {
        if io.flags & io_flags::NOCSUM != 0 || self.opts.blob_flags & BLOB_FLAG_NO_FOOTER != 0 {
            record_flags::NOCSUM
        } else {
            record_flags::CRC32_CSUM
        }
    }

    async fn check_cas(&self, io: &IoAttr, timestamp: DnetTime) -> Result<(), BlobError> {
        if io.flags & (io_flags::CAS_TIMESTAMP | io_flags::COMPARE_AND_SWAP) == 0 {
            return Ok(());
        }
        let Ok((loc, seg)) = self.locate_visible(&io.id) else {
            return Ok(());
        };
        if io.flags & io_flags::CAS_TIMESTAMP != 0 {
            let head = seg
                .read_data(
                    EXT_HEADER_SIZE_BYTES,
                    loc.position + DISK_CONTROL_SIZE_BYTES,
                )
                .await?;
            if ExtHeader::decode_prefix(&head).timestamp > timestamp {
                return Err(BlobError::CasMismatch("stored timestamp is newer"));
            }
        }
        if io.flags & io_flags::COMPARE_AND_SWAP != 0 {
            let (_, value) = self.read_value(&seg, &loc, true).await?;
            let digest: [u8; 64] = Sha512::digest(&value).into();
            if digest != io.parent.0 {
                return Err(BlobError::CasMismatch(
                    "checksum of the stored data differs",
                ));
            }
        }
        Ok(())
    }

    async fn normal_write(
        &self,
        io: &IoAttr,
        data: &Bytes,
        ext: &ExtHeader,
        csum_flags: u64,
    ) -> Result<(Rc<Segment<F>>, Loc), BlobError> {
        let existing = self.locate(&io.id).ok();
        let committed_user = match &existing {
            Some((l, _)) if u64::from(l.flags) & record_flags::UNCOMMITTED == 0 => {
                l.data_size.saturating_sub(EXT_HEADER_SIZE_BYTES)
            }
            _ => 0,
        };
        let append = io.flags & io_flags::APPEND != 0;
        let offset = io
            .offset
            .checked_add(if append { committed_user } else { 0 })
            .ok_or_else(too_big)?;
        let write_end = offset.checked_add(data.len() as u64).ok_or_else(too_big)?;
        if write_end > VALUE_SIZE_BYTES_MAX {
            return Err(too_big());
        }
        let new_user = if !append && io.offset == 0 {
            data.len() as u64
        } else {
            committed_user.max(write_end)
        };
        let plan = Plan {
            offset,
            new_user,
            committed_user,
            append,
        };
        // Under `sync = 0` acknowledged bytes are never overwritten: a power cut during an
        // in-place write could tear the record and lose the value it held. The new value
        // goes to a new record; the old copy is removed once the new one is durable.
        // A streamed read of the key keeps reading the bytes it opened.
        let in_place_allowed = self.opts.sync_s != 0 && !self.streams.is_reading(&io.id);
        if let Some((l, seg)) = existing.as_ref().filter(|_| in_place_allowed) {
            let fits = HEAD_BYTES - DISK_CONTROL_SIZE_BYTES + new_user <= capacity(l);
            // A sealed file takes only a whole same-size value in place: its header and
            // index entry stay as they are (as in eblob), and no defrag is copying it.
            let same_size_whole = !plan.append
                && plan.offset == 0
                && plan.new_user == data.len() as u64
                && l.data_size == EXT_HEADER_SIZE_BYTES + plan.new_user
                && u64::from(l.flags) & record_flags::UNCOMMITTED == 0;
            let sealed_ok = same_size_whole && !seg.defragging.get();
            if (!seg.closed.get() || sealed_ok)
                && fits
                && same_checksum(l, csum_flags)
                && u64::from(l.flags) & record_flags::EXTHDR != 0
            {
                let loc = self
                    .write_in_place(&io.id, seg, l, &plan, data, ext)
                    .await?;
                return Ok((seg.clone(), loc));
            }
        }
        self.write_new_record(&io.id, existing, &plan, data, ext, csum_flags)
            .await
    }

    async fn write_in_place(
        &self,
        id: &RawId,
        seg: &Rc<Segment<F>>,
        old: &Loc,
        plan: &Plan,
        data: &Bytes,
        ext: &ExtHeader,
    ) -> Result<Loc, BlobError> {
        let _busy = Busy::new(seg);
        let mut flags = (u64::from(old.flags) & !record_flags::UNCOMMITTED) | record_flags::EXTHDR;
        if plan.append {
            flags |= record_flags::APPEND;
        }
        let new = Loc {
            data_size: plan.new_user + EXT_HEADER_SIZE_BYTES,
            flags: flags32(flags),
            ..*old
        };
        if plan.offset == 0 && plan.new_user == data.len() as u64 {
            self.overwrite_whole(seg, &new, data, ext).await?;
        } else {
            Box::pin(self.overwrite_part(seg, old, plan, data, ext)).await?;
            Box::pin(self.write_footer(seg, &new)).await?;
        }
        // A same-size overwrite leaves the header and the index entry as they were.
        if new != *old {
            seg.write_header(&header_of(id, &new), new.index_slot)
                .await?;
            self.index.borrow_mut().insert(*id, new);
        }
        self.touch(seg);
        Ok(new)
    }

    /// Replace the whole value of `new`'s record: every data byte is in hand, so the footer
    /// is computed here (not read back) and, when it follows the data, goes out with it in
    /// one store into the page-cache map or else one write.
    async fn overwrite_whole(
        &self,
        seg: &Segment<F>,
        new: &Loc,
        data: &Bytes,
        ext: &ExtHeader,
    ) -> Result<(), BlobError> {
        let whole = WholeValue::new(new, ext, data);
        // Under `sync: 0` every write waits for an fdatasync, which write-protects the
        // mapped pages again: a store would fault each time, and saves nothing there.
        if self.opts.sync_s != 0 && whole.store_mapped(seg, data) {
            return Ok(());
        }
        whole.write(seg, data).await
    }

    /// Write part of a value in place (at an offset, or shorter than what stays): the
    /// bytes between the old end and the write become zeros; the footer is rebuilt after.
    async fn overwrite_part(
        &self,
        seg: &Segment<F>,
        old: &Loc,
        plan: &Plan,
        data: &Bytes,
        ext: &ExtHeader,
    ) -> Result<(), BlobError> {
        let base = old.position + DISK_CONTROL_SIZE_BYTES;
        let ext_bytes = Bytes::copy_from_slice(&ext.encode());
        let mut bufs = vec![ext_bytes];
        let mut at = base + EXT_HEADER_SIZE_BYTES;
        if plan.offset > plan.committed_user {
            let gap = usize::try_from(plan.offset - plan.committed_user).map_err(|_| too_big())?;
            seg.write_data(vec![Bytes::from(vec![0u8; gap])], at + plan.committed_user)
                .await?;
        }
        if plan.offset == 0 {
            bufs.push(data.clone());
        } else {
            seg.write_data(std::mem::take(&mut bufs), base).await?;
            at += plan.offset;
            bufs.push(data.clone());
        }
        let start = if plan.offset == 0 { base } else { at };
        seg.write_data(bufs, start).await
    }

    async fn write_new_record(
        &self,
        id: &RawId,
        existing: Option<(Loc, Rc<Segment<F>>)>,
        plan: &Plan,
        data: &Bytes,
        ext: &ExtHeader,
        csum_flags: u64,
    ) -> Result<(Rc<Segment<F>>, Loc), BlobError> {
        let need = plan.new_user + EXT_HEADER_SIZE_BYTES;
        let reserve = match (plan.append, plan.committed_user > 0) {
            (true, true) => need * 2,
            (true, false) => need * 4,
            _ => need,
        };
        let nocsum = csum_flags & record_flags::NOCSUM != 0;
        let footer_bytes = if nocsum {
            0
        } else {
            footer::footer_size(reserve)
        };
        let disk_size = DISK_CONTROL_SIZE_BYTES + reserve + footer_bytes;
        let mut flags = record_flags::EXTHDR | csum_flags;
        if plan.append {
            flags |= record_flags::APPEND;
        }
        let keep = existing.as_ref().is_some_and(|_| {
            plan.committed_user > 0
                && (plan.offset > 0 || plan.offset + (data.len() as u64) < plan.new_user)
        });
        // The value is the caller's bytes as they are: they go out without a copy.
        let whole = !keep && plan.offset == 0 && data.len() as u64 == plan.new_user;
        let value = if whole {
            data.clone()
        } else {
            Bytes::from(Box::pin(self.merged_value(existing.as_ref(), keep, plan, data)).await?)
        };
        let ext_bytes = ext.encode();
        let foot = if nocsum {
            Vec::new()
        } else {
            footer::build_parts(FooterKind::Crc32, &[&ext_bytes, &value])
        };
        let (seg, position) = self.allocate(disk_size)?;
        let _busy = Busy::new(&seg);
        let dc = DiskControl {
            key: *id,
            flags,
            data_size: need,
            disk_size,
            position,
        };
        let mut head = Vec::with_capacity(usize::try_from(HEAD_BYTES).unwrap_or(144));
        head.extend_from_slice(&dc.encode());
        head.extend_from_slice(&ext_bytes);
        let written = DISK_CONTROL_SIZE_BYTES + need;
        let foot_at = position + disk_size - foot.len() as u64;
        // Under `sync` > 0 a record that is one run of bytes is stored into the open file's
        // page-cache map (see `page_map`); under `sync: 0` every round's fdatasync would
        // write the zeros ahead of the records to the disk as well.
        let joined = foot.is_empty() || foot_at == position + written;
        let stored = self.opts.sync_s != 0
            && joined
            && seg.append_mapped(position, position + disk_size, &[&head, &value, &foot]);
        if !stored && joined {
            // No slack: the footer (if any) goes out with the record in one write.
            let mut parts = vec![Bytes::from(head), value];
            if !foot.is_empty() {
                parts.push(Bytes::from(foot));
            }
            seg.write_data(parts, position).await?;
        } else if !stored {
            seg.write_data(vec![Bytes::from(head), value], position)
                .await?;
            seg.write_data(vec![Bytes::from(foot)], foot_at).await?;
        }
        if nocsum && written < disk_size {
            self.extend_to(&seg, position + disk_size)?;
        }
        self.new_record_done(id, &seg, dc).await
    }

    /// The new value of a write that does not replace the whole value: the kept bytes of
    /// the old value (when `keep`), zeros up to the write, then `data` at its offset.
    async fn merged_value(
        &self,
        existing: Option<&(Loc, Rc<Segment<F>>)>,
        keep: bool,
        plan: &Plan,
        data: &Bytes,
    ) -> Result<Vec<u8>, BlobError> {
        let len = usize::try_from(plan.new_user).map_err(|_| too_big())?;
        let mut buf = match existing {
            Some((old, old_seg)) if keep => self.read_value(old_seg, old, false).await?.1,
            _ => Vec::new(),
        };
        buf.resize(len, 0);
        let at = usize::try_from(plan.offset).map_err(|_| too_big())?;
        let dst = buf
            .get_mut(at..at + data.len())
            .ok_or(BlobError::Invalid("write outside its value"))?;
        dst.copy_from_slice(data);
        Ok(buf)
    }
}
