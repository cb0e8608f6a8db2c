//! Read and lookup: locate a record, read the ext header and the asked range, verify the
//! footer chunks that overlap it (-EILSEQ, never the bad bytes).

use super::disk_control::DISK_CONTROL_SIZE_BYTES;
use super::error::BlobError;
use super::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use super::footer::{self, FooterKind, CHUNK_SIZE_BYTES};
use super::index::Loc;
use super::log::BlobLog;
use super::segment::Segment;
use super::{ReadOutcome, RecordInfo};
use crate::io::IoFile;
use crate::key::RawId;
use sha2::{Digest, Sha512};

/// Build the reported metadata of a record.
pub(super) fn record_info<F: IoFile>(seg: &Segment<F>, loc: &Loc, ext: &ExtHeader) -> RecordInfo {
    RecordInfo {
        path: seg.path.clone(),
        data_offset: loc.position + DISK_CONTROL_SIZE_BYTES + EXT_HEADER_SIZE_BYTES,
        size: loc.data_size.saturating_sub(EXT_HEADER_SIZE_BYTES),
        timestamp: ext.timestamp,
        user_flags: ext.user_flags,
        record_flags: u64::from(loc.flags),
        checksum: None,
    }
}

impl<F: IoFile> BlobLog<F> {
    /// Read `size` bytes (0 = to the end) at `offset` of a value.
    pub async fn read(
        &self,
        id: &RawId,
        offset: u64,
        size: u64,
        verify_csum: bool,
    ) -> Result<ReadOutcome, BlobError> {
        let _reading = self.locks.lock_shared(*id).await;
        let (loc, seg) = self.locate_visible(id)?;
        let total = loc.data_size.saturating_sub(EXT_HEADER_SIZE_BYTES);
        if offset >= total {
            return Err(BlobError::OffsetPastEnd {
                offset,
                size_bytes: total,
            });
        }
        let left = total - offset;
        let size = if size == 0 || size > left { left } else { size };
        let kind = if verify_csum {
            FooterKind::of_flags(u64::from(loc.flags))
        } else {
            None
        };
        let (ext, data) = self
            .read_range(&seg, &loc, EXT_HEADER_SIZE_BYTES + offset, size, kind)
            .await?;
        Ok(ReadOutcome {
            info: record_info(&seg, &loc, &ext),
            offset,
            data,
        })
    }

    /// Read record bytes `[start, start + len)` (ext header included in the numbering) and
    /// the ext header, verifying the covered chunks when `kind` is set.
    pub(super) async fn read_range(
        &self,
        seg: &Segment<F>,
        loc: &Loc,
        start: u64,
        len: u64,
        kind: Option<FooterKind>,
    ) -> Result<(ExtHeader, Vec<u8>), BlobError> {
        debug_assert!(loc.data_size + DISK_CONTROL_SIZE_BYTES <= loc.disk_size);
        let base = loc.position + DISK_CONTROL_SIZE_BYTES;
        let end = start.saturating_add(len).min(loc.data_size);
        let start = start.min(end);
        let Some(kind) = kind else {
            if start <= EXT_HEADER_SIZE_BYTES {
                let mut buf = seg.read_data(end, base).await?;
                let ext = ExtHeader::decode_prefix(&buf);
                buf.drain(..usize::try_from(start).unwrap_or(0).min(buf.len()));
                return Ok((ext, buf));
            }
            let head = seg.read_data(EXT_HEADER_SIZE_BYTES, base).await?;
            let data = seg.read_data(end - start, base + start).await?;
            return Ok((ExtHeader::decode_prefix(&head), data));
        };
        let first_chunk = start / CHUNK_SIZE_BYTES;
        let last_chunk = end.saturating_sub(1).max(start) / CHUNK_SIZE_BYTES;
        let from = first_chunk * CHUNK_SIZE_BYTES;
        let to = ((last_chunk + 1) * CHUNK_SIZE_BYTES).min(loc.data_size);
        let footer_bytes = footer::footer_size(loc.data_size);
        let footer_at = loc.position + loc.disk_size - footer_bytes;
        // One read when the footer follows the data; the footer then is the tail of `buf`.
        let joined = to == loc.data_size && base + to == footer_at;
        let span = to.saturating_sub(from);
        let (mut buf, separate_foot) = if joined {
            (seg.read_data(span + footer_bytes, base + from).await?, None)
        } else {
            let buf = seg.read_data(span, base + from).await?;
            (buf, Some(seg.read_data(footer_bytes, footer_at).await?))
        };
        let split = usize::try_from(span).unwrap_or(usize::MAX).min(buf.len());
        let (data_part, tail_part) = buf.split_at(split);
        let foot = separate_foot.as_deref().unwrap_or(tail_part);
        if let Err(chunk) = footer::verify(kind, foot, first_chunk, data_part) {
            return Err(BlobError::ChecksumMismatch {
                path: seg.path.clone(),
                position: loc.position,
                chunk,
            });
        }
        let head = if from == 0 {
            ExtHeader::decode_prefix(&buf)
        } else {
            ExtHeader::decode_prefix(&seg.read_data(EXT_HEADER_SIZE_BYTES, base).await?)
        };
        let hi = usize::try_from(end - from).unwrap_or(0).min(buf.len());
        buf.truncate(hi);
        let lo = usize::try_from(start - from).unwrap_or(0).min(buf.len());
        buf.drain(..lo);
        Ok((head, buf))
    }

    /// The whole value of a located record, verified when it carries a footer.
    pub(super) async fn read_value(
        &self,
        seg: &Segment<F>,
        loc: &Loc,
        verify: bool,
    ) -> Result<(ExtHeader, Vec<u8>), BlobError> {
        let kind = if verify {
            FooterKind::of_flags(u64::from(loc.flags))
        } else {
            None
        };
        let len = loc.data_size.saturating_sub(EXT_HEADER_SIZE_BYTES);
        self.read_range(seg, loc, EXT_HEADER_SIZE_BYTES, len, kind)
            .await
    }

    /// Metadata of a value; with `checksum`, its footer is verified and its sha512 returned.
    pub async fn lookup(&self, id: &RawId, checksum: bool) -> Result<RecordInfo, BlobError> {
        let _reading = self.locks.lock_shared(*id).await;
        let (loc, seg) = self.locate_visible(id)?;
        if loc.data_size <= EXT_HEADER_SIZE_BYTES {
            return Err(BlobError::NotFound);
        }
        if !checksum {
            let head = seg
                .read_data(
                    EXT_HEADER_SIZE_BYTES,
                    loc.position + DISK_CONTROL_SIZE_BYTES,
                )
                .await?;
            return Ok(record_info(&seg, &loc, &ExtHeader::decode_prefix(&head)));
        }
        let (ext, data) = self.read_value(&seg, &loc, true).await?;
        let mut info = record_info(&seg, &loc, &ext);
        info.checksum = Some(Sha512::digest(&data).into());
        Ok(info)
    }
}
