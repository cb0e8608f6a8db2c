//! Opening sealed files: a sealed file's one index is its sorted index; a `.index` left
//! beside it by an interrupted switch is deleted, a sorted index that does not check out is
//! set aside and the file's index rebuilt from its data. Also the directory sync that makes
//! created, renamed and deleted files durable, through the ring.

use super::error::BlobError;
use super::log::BlobLog;
use super::segment::{self, Segment};
use crate::io::IoFile;
use std::rc::Rc;

impl<F: IoFile> BlobLog<F> {
    /// fdatasync the log's directory through the ring (created, renamed, deleted files).
    pub(super) async fn sync_dir_async(&self) -> Result<(), BlobError> {
        let dir = segment::dir_of(&self.opts.data_prefix);
        let shown = dir.display().to_string();
        let f = F::from_std(std::fs::File::open(&dir).map_err(|e| BlobError::io(&shown, e))?);
        f.sync_data().await.map_err(|e| BlobError::io(&shown, e))
    }

    /// Size the sealed files' key table for the entries of the sorted indexes of `nums`.
    pub(super) fn expect_sealed_keys(&self, nums: &[u32]) {
        let p = &self.opts.data_prefix;
        let bytes: u64 = nums
            .iter()
            .filter_map(|&n| {
                let path = segment::side_path(p, self.opts.shard, n, segment::SORTED_SUFFIX);
                std::fs::metadata(path).ok().map(|m| m.len())
            })
            .sum();
        let entries = bytes / super::disk_control::DISK_CONTROL_SIZE_BYTES;
        self.index.borrow_mut().expect_sealed_keys(entries);
    }

    /// File `num` has a sorted index (and so is sealed).
    pub(super) fn sealed_index_of(&self, num: u32) -> bool {
        let p = &self.opts.data_prefix;
        segment::side_path(p, self.opts.shard, num, segment::SORTED_SUFFIX).exists()
    }

    /// Open file `num` sealed, on its sorted index, when it has one and `closed`. A `.index`
    /// beside a sorted index of the same length is a leftover of an interrupted switch
    /// (deleted); of another length, the sorted index is stale (deleted, and the file is
    /// sorted again).
    pub(super) fn open_sealed(
        &self,
        num: u32,
        closed: bool,
    ) -> Result<Option<Rc<Segment<F>>>, BlobError> {
        let (p, shard, ro) = (&self.opts.data_prefix, self.opts.shard, self.opts.read_only);
        let sorted = segment::side_path(p, shard, num, segment::SORTED_SUFFIX);
        let unsorted = segment::side_path(p, shard, num, ".index");
        if !closed || !sorted.exists() {
            return Ok(None);
        }
        let len = |path: &std::path::Path| std::fs::metadata(path).map(|m| m.len()).ok();
        if let Some(unsorted_len) = len(&unsorted) {
            let stale = len(&sorted) != Some(unsorted_len);
            if ro {
                if stale {
                    return Ok(None);
                }
            } else {
                let gone = if stale { &sorted } else { &unsorted };
                std::fs::remove_file(gone)
                    .map_err(|e| BlobError::io(&gone.display().to_string(), e))?;
                if stale {
                    return Ok(None);
                }
            }
        }
        Ok(Some(Rc::new(Segment::open_sealed(p, shard, num, ro)?)))
    }

    /// A sorted index that does not check out is kept aside (`.corrupt`); the file's index
    /// is then rebuilt from its data.
    pub(super) fn set_aside_bad_sorted(&self, num: u32) -> Result<(), BlobError> {
        let (p, shard) = (&self.opts.data_prefix, self.opts.shard);
        let sorted = segment::side_path(p, shard, num, segment::SORTED_SUFFIX);
        let shown = sorted.display().to_string();
        if self.opts.read_only {
            return Err(BlobError::Corrupt {
                path: shown,
                reason: "sorted index does not match its data file".into(),
            });
        }
        tracing::warn!(file = %shown, "sorted index does not check out: rebuilding from data");
        let aside = segment::side_path(p, shard, num, ".index.sorted.corrupt");
        std::fs::rename(&sorted, &aside).map_err(|e| BlobError::io(&shown, e))
    }
}
