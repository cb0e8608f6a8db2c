//! Cache hints for keys about to be served: a connection that received a batch of requests
//! asks for each key's index entry first, then for each record's first bytes, so that the
//! misses of the whole batch overlap (see [`crate::io::prefetch`]). Hints only: nothing
//! here changes state or fails.

use super::log::BlobLog;
use crate::io::IoFile;
use crate::key::RawId;

/// Record bytes hinted at most: headers and a small value.
const RECORD_PREFETCH_BYTES_MAX: u64 = 512;

impl<F: IoFile> BlobLog<F> {
    /// Start loading the index entry of `id`.
    pub fn prefetch_entry(&self, id: &RawId) {
        if let Ok(index) = self.index.try_borrow() {
            index.prefetch(id);
        }
    }

    /// Start loading the first bytes of the record of `id` through the data file's map.
    pub fn prefetch_record(&self, id: &RawId) {
        let (Ok(index), Ok(files)) = (self.index.try_borrow(), self.files.try_borrow()) else {
            return;
        };
        let Some(loc) = index.get(id) else {
            return;
        };
        if let Some(seg) = files.get(&loc.file) {
            seg.prefetch(loc.position, loc.disk_size.min(RECORD_PREFETCH_BYTES_MAX));
        }
    }
}
