//! Read and lookup: locate a record, read the ext header and the asked range, verify the
//! footer chunks that overlap it (-EILSEQ, never the bad bytes).

use super::disk_control::DISK_CONTROL_SIZE_BYTES;
use super::error::BlobError;
use super::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use super::footer::{self, FooterKind, CHUNK_SIZE_BYTES};
use super::index::Loc;
use super::log::BlobLog;
use super::segment::Segment;
use super::{ReadOutcome, RecordInfo, ValueMeta};
use crate::io::IoFile;
use crate::key::RawId;
use crate::limits::STREAM_READ_THRESHOLD_BYTES;
use sha2::{Digest, Sha512};

/// A read whose value starts at most this far into the record's data reads the ext header
/// and the bytes between in the same call; one that starts further reads the header apart.
const PREFIX_READ_BYTES_MAX: u64 = 4096;

/// Record bytes read at most this large go through the data file's page-cache map
/// ([`Segment::read_mapped`]); larger ones through a vectored read.
const MAPPED_READ_BYTES_MAX: u64 = 256 * 1024;

/// The ext header at the front of `before` followed by `value`.
fn head_of(before: &[u8], value: &[u8]) -> ExtHeader {
    if before.len() >= EXT_HEADER_SIZE_BYTES as usize {
        return ExtHeader::decode_prefix(before);
    }
    let mut b = [0u8; EXT_HEADER_SIZE_BYTES as usize];
    for (d, s) in b.iter_mut().zip(before.iter().chain(value)) {
        *d = *s;
    }
    ExtHeader::decode_prefix(&b)
}

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

/// The [`ValueMeta`] of the record at `loc` whose ext header is `ext`.
fn value_meta(loc: &Loc, ext: &ExtHeader) -> ValueMeta {
    ValueMeta {
        size: loc.data_size.saturating_sub(EXT_HEADER_SIZE_BYTES),
        timestamp: ext.timestamp,
        user_flags: ext.user_flags,
        record_flags: u64::from(loc.flags),
    }
}

/// Where a READ of `size` bytes (0 = to the end) at `offset` of `loc`'s value lands: the
/// size actually read and the footer to verify.
pub(super) fn read_plan(
    loc: &Loc,
    offset: u64,
    size: u64,
    verify_csum: bool,
) -> Result<(u64, Option<FooterKind>), BlobError> {
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
    Ok((size, kind))
}

/// The record bytes [`BlobLog::read_range`] reads for `[start, start + len)`.
struct Bounds {
    /// The value, clamped to the record's data.
    start: u64,
    end: u64,
    /// `[from, to)` of the record's data is read ...
    from: u64,
    to: u64,
    /// ... and the footer with it when `joined` (it follows `to` directly).
    joined: bool,
    footer_bytes: u64,
    footer_at: u64,
}

impl Bounds {
    fn of(loc: &Loc, start: u64, len: u64, kind: Option<FooterKind>) -> Bounds {
        debug_assert!(loc.data_size + DISK_CONTROL_SIZE_BYTES <= loc.disk_size);
        let base = loc.position + DISK_CONTROL_SIZE_BYTES;
        let end = start.saturating_add(len).min(loc.data_size);
        let start = start.min(end);
        let footer_bytes = footer::footer_size(loc.data_size);
        let footer_at = loc.position + loc.disk_size - footer_bytes;
        let (from, to, joined) = match kind {
            None if start <= PREFIX_READ_BYTES_MAX => (0, end, false),
            None => (start, end, false),
            Some(_) => {
                let (from, to) = chunk_span(start, end, loc.data_size);
                (from, to, to == loc.data_size && base + to == footer_at)
            }
        };
        Bounds {
            start,
            end,
            from,
            to,
            joined,
            footer_bytes,
            footer_at,
        }
    }

    /// Verify (when `kind` is set) the chunks of `rec`, the record's bytes after its
    /// header, footer last, that cover the value's bytes; those bytes. `Err(Some(chunk))`
    /// for a bad chunk, `Err(None)` when `rec` is too short for the bounds.
    fn verified<'r>(
        &self,
        rec: &'r [u8],
        kind: Option<FooterKind>,
    ) -> Result<&'r [u8], Option<u64>> {
        let part = |from: u64, to: u64| {
            let from = usize::try_from(from).ok()?;
            rec.get(from..usize::try_from(to).ok()?)
        };
        if let Some(kind) = kind {
            let chunks = part(self.from, self.to).ok_or(None)?;
            let foot_at = (rec.len() as u64)
                .checked_sub(self.footer_bytes)
                .ok_or(None)?;
            let foot = part(foot_at, rec.len() as u64).ok_or(None)?;
            let first = self.from / CHUNK_SIZE_BYTES;
            footer::verify_parts(kind, foot, first, &[chunks]).map_err(Some)?;
        }
        part(self.start, self.end).ok_or(None)
    }
}

/// The run `from..to` of whole checksum chunks of a record's data (`data_size` bytes, ext
/// header at 0) that covers `start..end`: what must be read to verify those bytes.
pub(super) fn chunk_span(start: u64, end: u64, data_size: u64) -> (u64, u64) {
    let from = start / CHUNK_SIZE_BYTES * CHUNK_SIZE_BYTES;
    let last_chunk = end.saturating_sub(1).max(start) / CHUNK_SIZE_BYTES;
    let to = ((last_chunk + 1) * CHUNK_SIZE_BYTES).min(data_size);
    (from, to)
}

/// Verify `parts`, joined the record's data from `from` (a chunk boundary) on in whole
/// chunks (the last may end the data), against the footer `foot` of the record at `loc`.
pub(super) fn verify_chunks<F: IoFile>(
    seg: &Segment<F>,
    loc: &Loc,
    kind: FooterKind,
    foot: &[u8],
    from: u64,
    parts: &[&[u8]],
) -> Result<(), BlobError> {
    footer::verify_parts(kind, foot, from / CHUNK_SIZE_BYTES, parts)
        .map_err(|chunk| bad_chunk(seg, loc, chunk))
}

/// The error for a bad checksum chunk of the record at `loc`.
fn bad_chunk<F: IoFile>(seg: &Segment<F>, loc: &Loc, chunk: u64) -> BlobError {
    BlobError::ChecksumMismatch {
        path: seg.path.to_string(),
        position: loc.position,
        chunk,
    }
}

fn usize_of(n: u64) -> Result<usize, BlobError> {
    usize::try_from(n).map_err(|_| BlobError::Invalid("read too large"))
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
        let (size, kind) = read_plan(&loc, offset, size, verify_csum)?;
        let (ext, data) = self
            .read_range(&seg, &loc, EXT_HEADER_SIZE_BYTES + offset, size, kind)
            .await?;
        Ok(ReadOutcome {
            info: record_info(&seg, &loc, &ext),
            offset,
            data,
        })
    }

    /// [`BlobLog::read`] when it can finish at once: no writer holds the key and the bytes
    /// come from the page-cache map. `emit` gets the record's info and the value's bytes,
    /// verified, in the map (so a reply copies them once, into its frame). `None` when it
    /// cannot: call `read`.
    pub fn read_now<R>(
        &self,
        id: &RawId,
        offset: u64,
        size: u64,
        verify_csum: bool,
        emit: impl FnOnce(&ValueMeta, &[u8]) -> R,
    ) -> Option<Result<R, BlobError>> {
        // Nothing else runs on this thread until this returns: only a writer already
        // inside its update (holding the key across a wait) must be waited for.
        if self.locks.held_exclusive(id) {
            return None;
        }
        let (loc, seg) = match self.locate_visible(id) {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        let (size, kind) = match read_plan(&loc, offset, size, verify_csum) {
            Ok(plan) => plan,
            Err(e) => return Some(Err(e)),
        };
        let start = EXT_HEADER_SIZE_BYTES + offset;
        self.read_range_mapped(&seg, &loc, start, size, kind, |ext, bytes| {
            emit(&value_meta(&loc, &ext), bytes)
        })
    }

    /// [`BlobLog::read_range`] through the data file's page-cache map, the bytes handed to
    /// `emit` with the ext header; `None` when they must be read with a syscall.
    fn read_range_mapped<R>(
        &self,
        seg: &Segment<F>,
        loc: &Loc,
        start: u64,
        len: u64,
        kind: Option<FooterKind>,
        emit: impl FnOnce(ExtHeader, &[u8]) -> R,
    ) -> Option<Result<R, BlobError>> {
        let b = Bounds::of(loc, start, len, kind);
        if b.to - b.from > MAPPED_READ_BYTES_MAX {
            return None;
        }
        let rec_len = loc.disk_size.saturating_sub(DISK_CONTROL_SIZE_BYTES);
        let base = loc.position + DISK_CONTROL_SIZE_BYTES;
        let res = seg.read_mapped(base, rec_len, |rec| {
            b.verified(rec, kind)
                .map(|bytes| emit(ExtHeader::decode_prefix(rec), bytes))
        })?;
        Some(res.and_then(|out| {
            out.map_err(|chunk| match chunk {
                Some(chunk) => bad_chunk(seg, loc, chunk),
                None => BlobError::Invalid("record outside its file"),
            })
        }))
    }

    /// Read record bytes `[start, start + len)` (ext header included in the numbering) and
    /// the ext header, verifying the covered chunks when `kind` is set.
    ///
    /// Small records come from the page-cache map. Otherwise one vectored read fills three
    /// buffers: the bytes before the value that the ext header or the first verified chunk
    /// needs, the value itself (exactly sized, never zeroed or moved), and the rest of the
    /// last verified chunk with the footer when it follows.
    pub(super) async fn read_range(
        &self,
        seg: &Segment<F>,
        loc: &Loc,
        start: u64,
        len: u64,
        kind: Option<FooterKind>,
    ) -> Result<(ExtHeader, Vec<u8>), BlobError> {
        if let Some(res) =
            self.read_range_mapped(seg, loc, start, len, kind, |ext, b| (ext, b.to_vec()))
        {
            return res;
        }
        let base = loc.position + DISK_CONTROL_SIZE_BYTES;
        let b = Bounds::of(loc, start, len, kind);
        let (start, end, from, to) = (b.start, b.end, b.from, b.to);
        let size = usize_of;
        let value_len = size(end - start)?;
        let after_len = size(to - end + if b.joined { b.footer_bytes } else { 0 })?;
        let bufs = vec![
            Vec::with_capacity(size(start - from)?),
            Vec::with_capacity(value_len),
            Vec::with_capacity(after_len),
        ];
        let mut bufs = seg.read_vectored(bufs, base + from).await?.into_iter();
        let (Some(before), Some(value), Some(after)) = (bufs.next(), bufs.next(), bufs.next())
        else {
            return Err(BlobError::Invalid("vectored read lost a buffer"));
        };
        if value.len() != value_len || after.len() != after_len {
            return Err(BlobError::Invalid("short vectored read"));
        }
        if let Some(kind) = kind {
            let split = size(to - end)?.min(after.len());
            let (tail, joined_foot) = after.split_at(split);
            let separate;
            let foot = if b.joined {
                joined_foot
            } else {
                separate = seg.read_data(b.footer_bytes, b.footer_at).await?;
                &separate
            };
            let parts = [before.as_slice(), value.as_slice(), tail];
            verify_chunks(seg, loc, kind, foot, from, &parts)?;
        }
        let head = if from == 0 {
            head_of(&before, &value)
        } else {
            ExtHeader::decode_prefix(&seg.read_data(EXT_HEADER_SIZE_BYTES, base).await?)
        };
        Ok((head, value))
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
        if loc.data_size > STREAM_READ_THRESHOLD_BYTES {
            let (ext, sha) = self.value_sha512_in_pieces(&seg, &loc).await?;
            let mut info = record_info(&seg, &loc, &ext);
            info.checksum = Some(sha);
            return Ok(info);
        }
        let (ext, data) = self.read_value(&seg, &loc, true).await?;
        let mut info = record_info(&seg, &loc, &ext);
        info.checksum = Some(Sha512::digest(&data).into());
        Ok(info)
    }
}
