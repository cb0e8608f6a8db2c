//! The write paths of Elliptics 2.26 on eblob (spec §5.6): plain write (in place when the
//! record is big enough, else a new record with the old bytes copied and the old one
//! removed), APPEND (2x reserve when it moves, 4x for a new key), PREPARE / PLAIN_WRITE /
//! COMMIT, compare-and-swap on sha512 and on timestamp.
//!
//! The write itself and its plan live here; a write in place and a write to a new record
//! are in the child modules `in_place` and `new_record`.

mod in_place;
mod new_record;

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use super::footer::{self, FooterKind};
use super::index::Loc;
use super::log::BlobLog;
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
    /// Keep the old copy live on disk until the next sync round, whatever `sync` says
    /// (a value moved by defrag: its old copy is acknowledged and durable, the new one not).
    hold_old_copy: bool,
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
            hold_old_copy: false,
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
}
