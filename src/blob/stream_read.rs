//! Values read a piece at a time: a READ of a large record (or of a large range of one) is
//! answered from the file in pieces, each piece's checksum chunks verified against the
//! record's footer (read once, when the stream opens) before its bytes are handed out.
//!
//! Pieces end on footer-chunk boundaries, so every chunk is read and verified once. The
//! stream holds its file busy (no defrag moves it), and while it lasts the key's record is
//! not overwritten in place: a write of the key makes a new record, and the stream keeps
//! reading the bytes it opened.

use super::disk_control::DISK_CONTROL_SIZE_BYTES;
use super::error::BlobError;
use super::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use super::footer::{self, FooterKind, CHUNK_SIZE_BYTES};
use super::index::Loc;
use super::log::{BlobLog, Busy};
use super::read::{chunk_span, read_plan, record_info, verify_chunks};
use super::segment::Segment;
use super::stream_table::ReadStream;
use super::{ReadOutcome, RecordInfo};
use crate::io::IoFile;
use crate::key::RawId;
use bytes::Bytes;
use sha2::{Digest, Sha512};

/// How a READ opened with [`BlobLog::stream_read_open`] is answered.
#[derive(Debug)]
pub enum ReadOpen {
    /// Its range is small: read whole, from the record the open located.
    Whole(ReadOutcome),
    /// Streamed a piece at a time.
    Stream(ReadOpened),
}

/// What a streamed read was opened on.
#[derive(Debug, Clone)]
pub struct ReadOpened {
    pub ticket: u64,
    pub info: RecordInfo,
    /// Bytes the stream will hand out.
    pub size: u64,
}

impl<F: IoFile> BlobLog<F> {
    /// Open a streamed read of `size` bytes (0 = to the end) at `offset` of `id`'s value;
    /// a range of at most `threshold_bytes` is read whole at once instead (as
    /// [`BlobLog::read`] would, from the record already located).
    pub async fn stream_read_open(
        &self,
        id: &RawId,
        offset: u64,
        size: u64,
        verify_csum: bool,
        threshold_bytes: u64,
    ) -> Result<ReadOpen, BlobError> {
        let _reading = self.locks.lock_shared(*id).await;
        let (loc, seg) = self.locate_visible(id)?;
        let (size, kind) = read_plan(&loc, offset, size, verify_csum)?;
        if size <= threshold_bytes {
            let (ext, data) = self
                .read_range(&seg, &loc, EXT_HEADER_SIZE_BYTES + offset, size, kind)
                .await?;
            return Ok(ReadOpen::Whole(ReadOutcome {
                info: record_info(&seg, &loc, &ext),
                offset,
                data,
            }));
        }
        let busy = Busy::new(&seg);
        let base = loc.position + DISK_CONTROL_SIZE_BYTES;
        let ext = ExtHeader::decode_prefix(&seg.read_data(EXT_HEADER_SIZE_BYTES, base).await?);
        let check = match kind {
            Some(kind) => {
                let footer_bytes = footer::footer_size(loc.data_size);
                let at = loc.position + loc.disk_size - footer_bytes;
                Some((kind, seg.read_data(footer_bytes, at).await?))
            }
            None => None,
        };
        let next = EXT_HEADER_SIZE_BYTES + offset;
        let ticket = self.streams.ticket();
        let info = record_info(&seg, &loc, &ext);
        let stream = ReadStream {
            id: *id,
            seg,
            _busy: busy,
            loc,
            check,
            next,
            end: next + size,
        };
        self.streams.reads.borrow_mut().insert(ticket, stream);
        Ok(ReadOpen::Stream(ReadOpened { ticket, info, size }))
    }

    /// The next verified piece of stream `ticket` (at most about `piece_bytes`), `None`
    /// once all is handed out (the stream is then closed). A bad chunk ends the stream.
    pub async fn stream_read_piece(
        &self,
        ticket: u64,
        piece_bytes: u64,
    ) -> Result<Option<Bytes>, BlobError> {
        let mut stream = self
            .streams
            .reads
            .borrow_mut()
            .remove(&ticket)
            .ok_or(BlobError::Invalid("no such stream"))?;
        if stream.next >= stream.end {
            return Ok(None);
        }
        let from = stream.next;
        let mut to = (from + piece_bytes) / CHUNK_SIZE_BYTES * CHUNK_SIZE_BYTES;
        if to <= from {
            to = from + piece_bytes.max(1);
        }
        let to = to.min(stream.end);
        let base = stream.loc.position + DISK_CONTROL_SIZE_BYTES;
        let (read_from, read_to) = match &stream.check {
            Some(_) => chunk_span(from, to, stream.loc.data_size),
            None => (from, to),
        };
        let bytes = stream
            .seg
            .read_data(read_to - read_from, base + read_from)
            .await?;
        if let Some((kind, foot)) = &stream.check {
            verify_chunks(&stream.seg, &stream.loc, *kind, foot, read_from, &[&bytes])?;
        }
        let lo = usize::try_from(from - read_from).map_err(|_| BlobError::Invalid("piece"))?;
        let hi = usize::try_from(to - read_from).map_err(|_| BlobError::Invalid("piece"))?;
        let piece = Bytes::from(bytes).slice(lo..hi);
        stream.next = to;
        self.streams.reads.borrow_mut().insert(ticket, stream);
        Ok(Some(piece))
    }
}

/// Record data read at once while a large value is checksummed for a LOOKUP.
const CHECKSUM_READ_BYTES: u64 = 4 * CHUNK_SIZE_BYTES;

impl<F: IoFile> BlobLog<F> {
    /// The ext header and the sha512 of the value of the record at `loc`, read a few
    /// checksum chunks at a time, each verified against the footer before it is hashed:
    /// how a LOOKUP with a checksum reads a large value, with memory that does not grow
    /// with it.
    pub(super) async fn value_sha512_in_pieces(
        &self,
        seg: &Segment<F>,
        loc: &Loc,
    ) -> Result<(ExtHeader, [u8; 64]), BlobError> {
        let base = loc.position + DISK_CONTROL_SIZE_BYTES;
        let check = match FooterKind::of_flags(u64::from(loc.flags)) {
            Some(kind) => {
                let footer_bytes = footer::footer_size(loc.data_size);
                let at = loc.position + loc.disk_size - footer_bytes;
                Some((kind, seg.read_data(footer_bytes, at).await?))
            }
            None => None,
        };
        let mut hasher = Sha512::new();
        let mut ext = None;
        let mut from = 0;
        while from < loc.data_size {
            let to = (from + CHECKSUM_READ_BYTES).min(loc.data_size);
            let bytes = seg.read_data(to - from, base + from).await?;
            if let Some((kind, foot)) = &check {
                verify_chunks(seg, loc, *kind, foot, from, &[&bytes])?;
            }
            let value = if from == 0 {
                ext = Some(ExtHeader::decode_prefix(&bytes));
                bytes
                    .get(EXT_HEADER_SIZE_BYTES as usize..)
                    .unwrap_or_default()
            } else {
                &bytes
            };
            hasher.update(value);
            from = to;
        }
        let ext = ext.ok_or(BlobError::Invalid("a record without its ext header"))?;
        Ok((ext, hasher.finalize().into()))
    }
}
