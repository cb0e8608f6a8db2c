//! The write that finishes at once: a whole value replacing a record of the same size (in
//! the open file, or in a sealed file that no defrag is copying), stored through the page-cache map, under `sync` > 0 (acknowledged on
//! write). It is the common overwrite of a key-value workload, and answering it without a
//! task lets the node reply from its receive loop. Every other write is [`BlobLog::write`].

use super::error::BlobError;
use super::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use super::log::{BlobLog, Busy};
use super::read::record_info;
use super::write::{same_checksum, WholeValue};
use super::RecordInfo;
use crate::io::IoFile;
use crate::protocol::{io_flags, record_flags, DnetTime, IoAttr};

/// Request flags that need more than replacing a value ([`BlobLog::write`] handles them).
const SLOW_FLAGS: u32 = io_flags::CAS_TIMESTAMP
    | io_flags::COMPARE_AND_SWAP
    | io_flags::PREPARE
    | io_flags::COMMIT
    | io_flags::PLAIN_WRITE
    | io_flags::APPEND;

impl<F: IoFile> BlobLog<F> {
    /// [`BlobLog::write`] when it can finish at once (see the module header); `None` when
    /// it cannot: call `write` (which also completes a store into the map that faulted
    /// half-way, writing every byte again with a syscall).
    pub fn write_now(&self, io: &IoAttr, data: &[u8]) -> Option<Result<RecordInfo, BlobError>> {
        if self.opts.sync_s == 0
            || io.flags & SLOW_FLAGS != 0
            || io.offset != 0
            || self.check_writable().is_err()
            || !self.locks.is_free(&io.id)
            || self.streams.is_reading(&io.id)
        {
            return None;
        }
        let (loc, seg) = self.locate(&io.id).ok()?;
        let flags = u64::from(loc.flags);
        let csum_flags = self.csum_flags_of(io);
        if seg.defragging.get()
            || flags & record_flags::UNCOMMITTED != 0
            || flags & record_flags::EXTHDR == 0
            || !same_checksum(&loc, csum_flags)
            || loc.data_size != EXT_HEADER_SIZE_BYTES + data.len() as u64
        {
            return None;
        }
        let ext = ExtHeader {
            timestamp: if io.timestamp.is_empty() {
                DnetTime::now()
            } else {
                io.timestamp
            },
            user_flags: io.user_flags,
        };
        let _busy = Busy::new(&seg);
        // The record keeps its place, size and flags: its header and index entry stay.
        if !WholeValue::new(&loc, &ext, data).store_mapped(&seg, data) {
            return None;
        }
        self.touch(&seg);
        self.writes.set(self.writes.get() + 1);
        self.commit.next_seq();
        Some(Ok(record_info(&seg, &loc, &ext)))
    }
}
