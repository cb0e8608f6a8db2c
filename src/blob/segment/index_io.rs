//! A segment's index I/O and durability: record headers and their index entries, REMOVE
//! flag patches, the buffered `.index` entries and their flush, and the fdatasyncs of data
//! and index.

use super::Segment;
use crate::blob::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES, FLAGS_OFFSET_BYTES};
use crate::blob::error::BlobError;
use crate::blob::pending::FlushStep;
use crate::io::IoFile;
use bytes::Bytes;
use std::time::Instant;

impl<F: IoFile> Segment<F> {
    /// Write a record header to the data file and to its index entry.
    pub async fn write_header(&self, dc: &DiskControl, slot: u32) -> Result<(), BlobError> {
        let bytes = Bytes::copy_from_slice(&dc.encode());
        self.write_index_entry(bytes.clone(), slot).await?;
        self.write_data(vec![bytes], dc.position).await
    }

    async fn write_index_entry(&self, bytes: Bytes, slot: u32) -> Result<(), BlobError> {
        let at = u64::from(slot) * DISK_CONTROL_SIZE_BYTES;
        if !self.sorted.get() && self.pending.patch(slot, 0, &bytes) {
            return Ok(());
        }
        self.index_sync_needed.set(true);
        self.index
            .write_all_at(vec![bytes], at)
            .await
            .map_err(|e| BlobError::io(&self.index_path, e))
    }

    /// Set new `flags` on a record (data header and index entry): a remove, which adds
    /// REMOVE and nothing else.
    pub async fn patch_flags(&self, position: u64, slot: u32, flags: u64) -> Result<(), BlobError> {
        let bytes = self.patch_index_flags(slot, flags).await?;
        self.write_data(vec![bytes], position + FLAGS_OFFSET_BYTES)
            .await
    }

    /// Set new `flags` on a record's index entry only (a remove); returns their bytes.
    pub async fn patch_index_flags(&self, slot: u32, flags: u64) -> Result<Bytes, BlobError> {
        debug_assert!(flags & crate::protocol::record_flags::REMOVE != 0);
        self.note_changed_slot(slot);
        let bytes = Bytes::copy_from_slice(&flags.to_le_bytes());
        let at = u64::from(slot) * DISK_CONTROL_SIZE_BYTES + FLAGS_OFFSET_BYTES;
        if self.sorted.get() {
            // A sealed file's one index is its sorted index: the next round (or periodic
            // sync) that covers the file makes the mark durable.
            self.index_sync_needed.set(true);
            self.index
                .write_all_at(vec![bytes.clone()], at)
                .await
                .map_err(|e| BlobError::io(&self.index_path, e))?;
        } else if !self
            .pending
            .patch(slot, FLAGS_OFFSET_BYTES as usize, &bytes)
        {
            // Recovery takes REMOVE from either copy of the header, and the data file's
            // copy is made durable by the round: this `.index` write may lag.
            self.index
                .write_all_at(vec![bytes.clone()], at)
                .await
                .map_err(|e| BlobError::io(&self.index_path, e))?;
        }
        Ok(bytes)
    }

    /// Write the buffered index entries (those buffered now; later ones may stay).
    pub async fn flush_index(&self) -> Result<(), BlobError> {
        let target = self.pending.buffered_end();
        while self.pending.flushed_slots() < target {
            match self.pending.begin() {
                FlushStep::Idle => return Ok(()),
                FlushStep::Wait(seen) => self.pending.wait(seen).await,
                FlushStep::Write {
                    bytes,
                    offset_bytes,
                } => {
                    let n = bytes.len();
                    let res = self
                        .index
                        .write_all_at(vec![Bytes::from(bytes)], offset_bytes)
                        .await;
                    self.pending.finish(n, res.is_ok());
                    res.map_err(|e| BlobError::io(&self.index_path, e))?;
                }
            }
        }
        Ok(())
    }

    /// Account for the index entry of a new record at `position..end`: recovery finds a
    /// record without its entry only by walking the data file from the last entry, record
    /// by record, through records that prove themselves whole (a verified footer). So the
    /// `.index` must be made durable with the data when this record cannot be found that
    /// way: it carries no footer (`provable` false), or it does not follow the previous
    /// record (an earlier write is still in flight or failed, leaving a gap).
    pub fn note_index_append(&self, position: u64, end: u64, provable: bool) {
        if !provable || position != self.contiguous_end.get() {
            self.index_sync_needed.set(true);
        }
        self.contiguous_end.set(self.contiguous_end.get().max(end));
    }

    /// Write buffered index entries (claiming their space now, not at recovery on a full
    /// disk) and fdatasync the data file only: the `.index` may lag.
    pub async fn sync_data_lazy_index(&self) -> Result<(), BlobError> {
        self.flush_index().await?;
        self.sync_data_only().await
    }

    /// fdatasync the data file only.
    pub async fn sync_data_only(&self) -> Result<(), BlobError> {
        self.data
            .sync_data()
            .await
            .map_err(|e| BlobError::io(&self.path, e))
    }

    /// Buffer the entries of the last `entries.len()` slots, which the `.index` lacks,
    /// for the next flush.
    pub fn buffer_index_entries(&self, entries: &[DiskControl]) {
        if entries.is_empty() {
            return;
        }
        let first = self
            .index_slots
            .get()
            .saturating_sub(u32::try_from(entries.len()).unwrap_or(u32::MAX));
        self.pending.reset(first);
        for (slot, dc) in (first..).zip(entries) {
            self.pending.push(slot, &dc.encode());
        }
        self.index_sync_needed.set(true);
    }

    /// Write buffered index entries, then fdatasync data and index (both in flight at once
    /// on a backend that can).
    pub async fn sync_all(&self) -> Result<(), BlobError> {
        self.index_sync_needed.set(false);
        let started = Instant::now();
        let durable_slots = self.pending.buffered_end();
        self.sync_claim
            .set(self.sync_claim.get().max(durable_slots));
        self.flush_index().await?;
        let index = async {
            self.index
                .sync_data()
                .await
                .map_err(|e| BlobError::io(&self.index_path, e))
        };
        let (data, index) = futures::future::join(self.sync_data_only(), index).await;
        if data.is_err() || index.is_err() {
            self.index_sync_needed.set(true);
        } else {
            self.index_synced_at.set(started);
            if !self.closed.get() {
                if let Err(e) =
                    crate::blob::checkpoint::write(&self.synced_path, self.num, durable_slots)
                {
                    tracing::warn!(file = %self.synced_path.display(), "synced point not written: {e}");
                }
            }
        }
        data.and(index)
    }
}
