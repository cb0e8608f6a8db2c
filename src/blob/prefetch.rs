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
    /// Start loading the index entry of `id`; where it probably is, for
    /// [`BlobLog::prefetch_record`].
    pub fn prefetch_entry(&self, id: &RawId) -> Option<usize> {
        self.index.try_borrow().ok()?.prefetch(id)
    }

    /// Start loading the first bytes of the record of `id` through the data file's map;
    /// `hint` is what [`BlobLog::prefetch_entry`] returned (it saves a second lookup).
    pub fn prefetch_record(&self, id: &RawId, hint: Option<usize>) {
        let (Ok(index), Ok(files)) = (self.index.try_borrow(), self.files.try_borrow()) else {
            return;
        };
        let loc = match hint {
            Some(pos) => index.probable(pos).copied(),
            None => index.get(id),
        };
        let Some(loc) = loc else {
            return;
        };
        if let Some(seg) = files.get(&loc.file) {
            seg.prefetch(loc.position, loc.disk_size.min(RECORD_PREFETCH_BYTES_MAX));
        }
    }
}
