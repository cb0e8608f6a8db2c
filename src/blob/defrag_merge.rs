//! Merging small sealed files, as eblob's defrag merges its small blobs: a sealed file
//! whose live records fill at most 1/[`SMALL_SHARE`] of a data file (by bytes and by
//! records) has them written again, each as a new record at the end of the open file
//! (same value, timestamp and user flags). The same defrag pass then finds the file with
//! removed records only and deletes it. Without this, a file compacted in place keeps its
//! few long-lived records for good, and under rewrites and removes every rotation adds a
//! file (with its descriptors, map and index pages) that never goes away.
//!
//! eblob sorts a run of small blobs into one new blob; here the open file is where they
//! go. A copy thus only ever moves to a higher file, at a higher position than every copy
//! written before it, so start-up's rule (the highest file, then the highest position,
//! holds a key's newest copy) stays true without a commit across several files. Once
//! sealed again, the moved records share files with other long-lived ones, so a record
//! moves a bounded number of times.
//!
//! Crash safety: a record moves under its key's lock and only while it is the key's
//! current copy. Its old copy stays live on disk (held, see `BlobLog::old_copies_held`)
//! until a sync round has made the new one durable, whatever `sync` says; the merge runs
//! that round after every [`STEP_BYTES_MAX`] bytes it moved and at the end of the file,
//! and the copy that deletes the file waits for it too.

use super::defrag::STEP_BYTES_MAX;
use super::disk_control::DiskControl;
use super::error::BlobError;
use super::log::BlobLog;
use super::recovery::read_entries;
use super::segment::Segment;
use super::sync::YieldNow;
use crate::io::IoFile;
use crate::key::RawId;
use crate::protocol::{record_flags, IoAttr};
use bytes::Bytes;
use std::rc::Rc;

/// A sealed file is merged when its live part is at most 1/`SMALL_SHARE` of a data file.
/// eblob merges below 1/10; a larger share bounds the number of files more tightly (at
/// most `SMALL_SHARE` files' worth of live data per data file) for little more copying.
pub const SMALL_SHARE: u64 = 4;

/// Records bigger than this stay where they are (a moved value is read whole); their file
/// is compacted in place instead.
const MOVE_RECORD_BYTES_MAX: u64 = 64 << 20;

/// Sorted-index entries read per turn.
const CHUNK_ENTRIES: u64 = 4096;

impl<F: IoFile> BlobLog<F> {
    /// Whether sealed file `seg` holds so little live data that its records move forward.
    pub(super) fn wants_merge(&self, seg: &Segment<F>) -> bool {
        let live_records = seg.records.get().saturating_sub(seg.removed.get());
        let live_bytes = seg.tail_bytes.get().saturating_sub(seg.removed_bytes.get());
        seg.closed.get()
            && seg.sorted.get()
            && !seg.defragging.get()
            && live_records > 0
            && live_bytes.saturating_mul(SMALL_SHARE) <= self.opts.blob_size_bytes
            && live_records.saturating_mul(SMALL_SHARE) <= self.opts.records_in_blob
    }

    /// Move the live records of small sealed file `seg` to the open file; the number moved.
    /// A full disk ends the move (what moved so far stays moved).
    pub(super) async fn move_live(&self, seg: &Rc<Segment<F>>) -> Result<u64, BlobError> {
        let entries = u64::from(seg.index_slots.get());
        let (mut moved, mut step_bytes) = (0u64, 0u64);
        let mut slot = 0u64;
        while slot < entries && !self.defrag.stop.get() && !self.read_only.get() {
            let n = CHUNK_ENTRIES.min(entries - slot);
            let buf = read_entries(seg, slot, n).await?;
            for i in 0..usize::try_from(n).unwrap_or(0) {
                let Some(dc) = DiskControl::decode_at(&buf, i) else {
                    break;
                };
                if dc.flags & record_flags::REMOVE != 0 {
                    continue;
                }
                match self.move_one(seg.num, &dc).await {
                    Ok(true) => {
                        moved += 1;
                        step_bytes += dc.disk_size;
                    }
                    Ok(false) => {}
                    Err(BlobError::NoSpace(_)) => return self.end_move(seg.num, moved).await,
                    Err(e) => return Err(e),
                }
                if step_bytes >= STEP_BYTES_MAX as u64 {
                    // Bounded work per turn: make this step's copies durable (which ends
                    // the holds on their old copies), then let requests run.
                    step_bytes = 0;
                    self.holds_ended(seg.num).await?;
                    YieldNow::default().await;
                }
            }
            slot += n;
            YieldNow::default().await;
        }
        self.end_move(seg.num, moved).await
    }

    /// The round that makes the last moved copies durable and their old copies dead.
    async fn end_move(&self, num: u32, moved: u64) -> Result<u64, BlobError> {
        if moved > 0 {
            self.holds_ended(num).await?;
        }
        Ok(moved)
    }

    /// Write record `dc` of sealed file `num` again as a new record, if it is still the
    /// key's current copy; `false` when it is not (rewritten, removed, not committed), or
    /// when it stays (too big, damaged).
    async fn move_one(&self, num: u32, dc: &DiskControl) -> Result<bool, BlobError> {
        let key: RawId = dc.key;
        let _guard = self.locks.lock(key).await;
        self.check_writable()?;
        let Ok((loc, seg)) = self.locate(&key) else {
            return Ok(false);
        };
        let flags = u64::from(loc.flags);
        if loc.file != num
            || loc.position != dc.position
            || flags & record_flags::UNCOMMITTED != 0
            || loc.disk_size > MOVE_RECORD_BYTES_MAX
        {
            return Ok(false);
        }
        let (ext, value) = match self.read_value(&seg, &loc, true).await {
            Ok(v) => v,
            Err(e @ BlobError::Corrupt { .. }) => {
                // A damaged record stays where it is (and keeps its file).
                tracing::warn!(file = %seg.path, "a record not moved out of a small file: {e}");
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let csum_flags = if flags & record_flags::NOCSUM != 0 {
            record_flags::NOCSUM
        } else {
            self.csum_flags_of(&IoAttr::default())
        };
        self.rewrite_as_new(&key, (loc, seg), &Bytes::from(value), &ext, csum_flags)
            .await?;
        Ok(true)
    }
}
