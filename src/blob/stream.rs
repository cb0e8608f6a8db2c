//! Values written a piece at a time, in the order their bytes arrive, with memory that does
//! not grow with the value.
//!
//! A streamed WRITE reserves its whole record in the open file at once (`UNCOMMITTED` in
//! the data file's header, no `.index` entry and no key-index entry yet, so readers keep
//! seeing the previous value) and writes each piece at its place. The footer's checksums
//! are computed by the caller as the bytes arrive, with the [`FooterHasher`] the stream
//! hands out when it begins (already fed the ext header), so the caller can hash each
//! slice of the value the moment it is received instead of a whole piece at once; only
//! when every byte is in (and the hasher has taken exactly the record's data) are the
//! footer, the final header and the index entry written, the key pointed at the new record and the write made durable as
//! `sync` says. A stream given up (connection closed or stalled) leaves a reserved run no
//! index names: dead bytes, counted as removed so that defrag reclaims them. After a crash
//! the run is invisible too: start-up validates only records the `.index` names, and its
//! walk past the last entry stops at the `UNCOMMITTED` header (cutting the file there when
//! nothing follows).
//!
//! A PLAIN_WRITE into a prepared (`UNCOMMITTED`) record streams the same way into that
//! record, and a COMMIT with it seals the record once the bytes are in.
//!
//! Every stream holds its file busy, so no sort or defrag moves the file under it. Streams
//! are named by a ticket: the node drives them from the connection's shard with one call
//! per piece (`stream_read` holds the reading side).

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use super::footer::{self, FooterHasher};
use super::index::Loc;
use super::log::{BlobLog, Busy};
use super::read::record_info;
use super::segment::Segment;
pub use super::stream_table::StreamTable;
use super::stream_table::{Target, WriteStream};
use super::write::capacity;
use super::RecordInfo;
use crate::io::IoFile;
use crate::key::RawId;
use crate::limits::VALUE_BYTES_MAX_CEILING;
use crate::protocol::{io_flags, record_flags, DnetTime, IoAttr};
use bytes::Bytes;
use std::rc::Rc;

/// Request flags a streamed WRITE cannot honour: they need the old value's bytes.
const UNSTREAMABLE_FLAGS: u32 =
    io_flags::CAS_TIMESTAMP | io_flags::COMPARE_AND_SWAP | io_flags::APPEND | io_flags::PREPARE;

/// Whether a WRITE described by `io` can be streamed: a whole new value (offset 0), or a
/// PLAIN_WRITE (with or without COMMIT) into a prepared record.
pub fn streamable(io: &IoAttr) -> bool {
    io.flags & UNSTREAMABLE_FLAGS == 0 && (io.offset == 0 || io.flags & io_flags::PLAIN_WRITE != 0)
}

/// A streamed write begun: its ticket, and the hasher of its footer (see
/// [`BlobLog::stream_write_begin`]).
#[derive(Debug)]
pub struct WriteBegun {
    pub ticket: u64,
    pub hasher: Option<FooterHasher>,
}

impl<F: IoFile> BlobLog<F> {
    /// Begin a streamed write of `value_bytes` bytes as `io` describes (see
    /// [`streamable`]); returns the stream's ticket and, when the record gets a checksum
    /// footer, the hasher to feed every byte of the value to, in order, and to hand back
    /// to [`BlobLog::stream_write_finish`].
    pub async fn stream_write_begin(
        &self,
        io: &IoAttr,
        value_bytes: u64,
    ) -> Result<WriteBegun, BlobError> {
        self.check_writable()?;
        if !streamable(io) {
            return Err(BlobError::Invalid("this write cannot be streamed"));
        }
        if value_bytes > VALUE_BYTES_MAX_CEILING {
            return Err(super::write::too_big());
        }
        let ext = ExtHeader {
            timestamp: if io.timestamp.is_empty() {
                DnetTime::now()
            } else {
                io.timestamp
            },
            user_flags: io.user_flags,
        };
        let (seg, target, hasher) = if io.flags & io_flags::PLAIN_WRITE != 0 {
            let (seg, target) = self.stream_into_prepared(io, value_bytes, &ext).await?;
            (seg, target, None)
        } else {
            self.stream_reserve(&io.id, self.csum_flags_of(io), value_bytes, &ext)
                .await?
        };
        let ticket = self.streams.ticket();
        let stream = WriteStream {
            id: io.id,
            _busy: Busy::new(&seg),
            seg,
            target,
            ext,
            value_bytes,
            received_bytes: 0,
            done: false,
        };
        self.streams.writes.borrow_mut().insert(ticket, stream);
        Ok(WriteBegun { ticket, hasher })
    }

    /// Reserve a new record for a streamed value and write its `UNCOMMITTED` header.
    async fn stream_reserve(
        &self,
        id: &RawId,
        csum_flags: u64,
        value_bytes: u64,
        ext: &ExtHeader,
    ) -> Result<(Rc<Segment<F>>, Target, Option<FooterHasher>), BlobError> {
        let need = value_bytes + EXT_HEADER_SIZE_BYTES;
        let nocsum = csum_flags & record_flags::NOCSUM != 0;
        let footer_bytes = if nocsum { 0 } else { footer::footer_size(need) };
        let disk_size = DISK_CONTROL_SIZE_BYTES + need + footer_bytes;
        let (seg, position) = self.allocate(disk_size)?;
        let _busy = Busy::new(&seg);
        let dc = DiskControl {
            key: *id,
            flags: record_flags::EXTHDR | csum_flags,
            data_size: need,
            disk_size,
            position,
        };
        let mut hasher = (!nocsum).then(FooterHasher::default);
        let ext_bytes = ext.encode();
        if let Some(h) = hasher.as_mut() {
            h.update(&ext_bytes);
        }
        let unsealed = DiskControl {
            flags: dc.flags | record_flags::UNCOMMITTED,
            ..dc
        };
        let head = Bytes::copy_from_slice(&unsealed.encode());
        seg.write_data(vec![head, Bytes::copy_from_slice(&ext_bytes)], position)
            .await?;
        self.extend_to(&seg, position + disk_size)?;
        let footer = hasher.is_some();
        Ok((seg, Target::New { dc, footer }, hasher))
    }

    /// The prepared record a streamed PLAIN_WRITE fills, checked to hold its bytes.
    async fn stream_into_prepared(
        &self,
        io: &IoAttr,
        value_bytes: u64,
        ext: &ExtHeader,
    ) -> Result<(Rc<Segment<F>>, Target), BlobError> {
        let (loc, seg) = self.locate(&io.id)?;
        if u64::from(loc.flags) & record_flags::UNCOMMITTED == 0 {
            return Err(BlobError::NotPermitted(
                "plain write into a committed record",
            ));
        }
        let end = io
            .offset
            .checked_add(value_bytes)
            .and_then(|e| e.checked_add(EXT_HEADER_SIZE_BYTES))
            .ok_or_else(super::write::too_big)?;
        if end > capacity(&loc) {
            return Err(BlobError::CommitTooLarge {
                commit_bytes: end,
                capacity_bytes: capacity(&loc),
            });
        }
        // The value's bytes go out piece by piece; the ext header now.
        self.plain_write(&seg, &loc, io.offset, &Bytes::new(), ext)
            .await?;
        let commit = (io.flags & io_flags::COMMIT != 0).then_some(io.num);
        let target = Target::Plain {
            offset: io.offset,
            commit,
        };
        Ok((seg, target))
    }

    /// Write the piece of stream `ticket`'s value at `offset`: pieces are taken in order
    /// (each at the end of the ones before), and several may be written at once. A failed
    /// write ends the stream.
    pub async fn stream_write_piece(
        &self,
        ticket: u64,
        offset: u64,
        piece: Bytes,
    ) -> Result<(), BlobError> {
        let (seg, at) = {
            let mut writes = self.streams.writes.borrow_mut();
            let stream = writes
                .get_mut(&ticket)
                .ok_or(BlobError::Invalid("no such stream"))?;
            let len = piece.len() as u64;
            if offset != stream.received_bytes || offset + len > stream.value_bytes {
                return Err(BlobError::Invalid("a stream's piece out of its place"));
            }
            let start = match &stream.target {
                Target::New { dc, .. } => {
                    dc.position + DISK_CONTROL_SIZE_BYTES + EXT_HEADER_SIZE_BYTES
                }
                Target::Plain { offset, .. } => {
                    stream.seg.position_of_value(&stream.id, self)? + *offset
                }
            };
            stream.received_bytes += len;
            (stream.seg.clone(), start + offset)
        };
        if let Err(e) = seg.write_data(vec![piece], at).await {
            self.streams.writes.borrow_mut().remove(&ticket);
            return Err(e);
        }
        self.touch(&seg);
        Ok(())
    }

    /// Seal stream `ticket` once its whole value is in: footer (from `hasher`, the one
    /// [`BlobLog::stream_write_begin`] handed out, fed every byte), header, index entry,
    /// key index, durability; the record's info.
    pub async fn stream_write_finish(
        &self,
        ticket: u64,
        hasher: Option<FooterHasher>,
    ) -> Result<RecordInfo, BlobError> {
        let mut stream = self
            .streams
            .writes
            .borrow_mut()
            .remove(&ticket)
            .ok_or(BlobError::Invalid("no such stream"))?;
        if stream.received_bytes != stream.value_bytes {
            return Err(BlobError::Invalid("a stream ended before its value"));
        }
        self.check_writable()?;
        let guard = self.locks.lock(stream.id).await;
        let seg = stream.seg.clone();
        let loc = match &mut stream.target {
            Target::New { dc, footer } => {
                if *footer {
                    let h = hasher.filter(|h| h.total_bytes() == dc.data_size).ok_or(
                        BlobError::Invalid("a stream's checksums do not cover its value"),
                    )?;
                    let foot = h.finish();
                    let at = dc.position + dc.disk_size - foot.len() as u64;
                    seg.write_data(vec![Bytes::from(foot)], at).await?;
                }
                seg.write_data(vec![Bytes::copy_from_slice(&dc.encode())], dc.position)
                    .await?;
                let dc = *dc;
                stream.done = true;
                self.new_record_done(&stream.id, &seg, dc).await?.1
            }
            Target::Plain { commit, .. } => {
                let (loc, _) = self.locate(&stream.id)?;
                stream.done = true;
                match commit {
                    Some(user) => {
                        let csize = user
                            .checked_add(EXT_HEADER_SIZE_BYTES)
                            .ok_or_else(super::write::too_big)?;
                        self.commit_record(&stream.id, &seg, loc, csize).await?
                    }
                    None => loc,
                }
            }
        };
        self.writes.set(self.writes.get() + 1);
        let seq = self.commit.next_seq();
        self.made_durable(seq).await?;
        drop(guard);
        Ok(record_info(&seg, &loc, &stream.ext))
    }

    /// Give stream `ticket` up (a write's reserved space becomes dead bytes; a read ends).
    pub fn stream_abort(&self, ticket: u64) {
        let write = self.streams.writes.borrow_mut().remove(&ticket);
        drop(write);
        let read = self.streams.reads.borrow_mut().remove(&ticket);
        drop(read);
    }
}

impl<F: IoFile> Segment<F> {
    /// Where the value of `id`'s prepared record in this file starts.
    fn position_of_value(&self, id: &RawId, log: &BlobLog<F>) -> Result<u64, BlobError> {
        let (loc, seg): (Loc, _) = log.locate(id)?;
        if seg.num != self.num || u64::from(loc.flags) & record_flags::UNCOMMITTED == 0 {
            return Err(BlobError::NotPermitted(
                "the prepared record changed under a plain write",
            ));
        }
        Ok(loc.position + DISK_CONTROL_SIZE_BYTES + EXT_HEADER_SIZE_BYTES)
    }
}
