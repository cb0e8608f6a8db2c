//! One data file of the log and its index files: `<prefix>-<shard>.<N>`, `….<N>.index`
//! (96-byte headers in write order) and, once the file is closed, `….<N>.index.sorted`
//! (the same headers sorted by key). Owns file naming, creation and the lock file.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES, FLAGS_OFFSET_BYTES};
use super::error::BlobError;
use super::page_map::PageMap;
use super::pending::{FlushStep, PendingIndex};
use super::sort::SortState;
use crate::io::IoFile;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Suffix of a sealed file's index, sorted by key (eblob's layout).
pub const SORTED_SUFFIX: &str = ".index.sorted";

/// Path of data file `num`.
pub fn data_path(prefix: &Path, shard: u32, num: u32) -> PathBuf {
    PathBuf::from(format!("{}-{}.{}", prefix.display(), shard, num))
}

/// Path of a companion file of data file `num` (`suffix` like ".index").
pub fn side_path(prefix: &Path, shard: u32, num: u32, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}-{}.{}{}", prefix.display(), shard, num, suffix))
}

/// Path of the lock file.
pub fn lock_path(prefix: &Path, shard: u32) -> PathBuf {
    PathBuf::from(format!("{}-{}.lock", prefix.display(), shard))
}

/// Take the exclusive lock of a log; a second holder gets [`BlobError::Locked`].
pub fn lock(prefix: &Path, shard: u32) -> Result<File, BlobError> {
    let path = lock_path(prefix, shard);
    let shown = path.display().to_string();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| BlobError::io(&shown, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BlobError::Locked { path: shown }),
        Err(std::fs::TryLockError::Error(e)) => Err(BlobError::io(&shown, e)),
    }
}

/// The directory holding the log.
pub fn dir_of(prefix: &Path) -> PathBuf {
    match prefix.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync the directory holding the log, so that created and renamed files persist.
pub fn sync_dir(prefix: &Path) -> Result<(), BlobError> {
    let dir = dir_of(prefix);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BlobError::io(&dir.display().to_string(), e))
}

/// Data file numbers present for `prefix`/`shard`, ascending.
pub fn list_files(prefix: &Path, shard: u32) -> Result<Vec<u32>, BlobError> {
    let dir = match prefix.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = prefix
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let want = format!("{stem}-{shard}.");
    let shown = dir.display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| BlobError::io(&shown, e))? {
        let entry = entry.map_err(|e| BlobError::io(&shown, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(&want) {
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = rest.parse::<u32>() {
                    out.push(n);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

pub(crate) fn open_rw(path: &Path, read_only: bool) -> Result<File, BlobError> {
    OpenOptions::new()
        .read(true)
        .write(!read_only)
        .create(!read_only)
        .truncate(false)
        .open(path)
        .map_err(|e| BlobError::io(&path.display().to_string(), e))
}

/// A data file with its index, and the counters the log keeps about it.
#[derive(Debug)]
pub struct Segment<F: IoFile> {
    pub num: u32,
    pub data: F,
    pub index: F,
    pub path: std::sync::Arc<str>,
    /// Path of the index in use: `.index`, or `.index.sorted` once the file is sealed.
    pub index_path: String,
    sorted_path: String,
    /// End of the space handed out in the data file.
    pub tail_bytes: Cell<u64>,
    /// Entries handed out in the `.index`.
    pub index_slots: Cell<u32>,
    /// Records allocated in this file (for `records_in_blob`).
    pub records: Cell<u64>,
    /// Removed records and the bytes they occupy.
    pub removed: Cell<u64>,
    pub removed_bytes: Cell<u64>,
    /// No new records go here any more.
    pub closed: Cell<bool>,
    /// `.index.sorted` is written and in-memory slots point into it.
    pub sorted: Cell<bool>,
    /// Operations currently changing records of this file.
    pub busy: Cell<u32>,
    /// A defrag is copying this file: no record of it is overwritten in place.
    pub defragging: Cell<bool>,
    /// Index entries not yet written to `.index`.
    pub pending: PendingIndex,
    /// The next group-commit round must fdatasync the `.index` too (see
    /// [`Segment::note_index_append`]).
    pub index_sync_needed: Cell<bool>,
    /// End of the run of records, from the file start, whose index entries were appended
    /// in file order.
    pub contiguous_end: Cell<u64>,
    /// When the `.index` was last made durable.
    pub index_synced_at: Cell<Instant>,
    /// Reads served from the data file's page cache without a syscall.
    page_map: PageMap,
    /// The sorted index being written for this closed file, and the `.index` slots whose
    /// entries changed since it was last written ([`super::sort`]).
    pub(super) sort: RefCell<Option<SortState<F>>>,
    changed_slots: RefCell<Vec<u32>>,
    /// Where the log's synced point is written ([`super::checkpoint`]).
    synced_path: PathBuf,
    /// The most `.index` entries a synced point of this file may claim: set when a full
    /// sync starts. A REMOVE under it must reach the `.index` durably.
    pub sync_claim: Cell<u32>,
}

impl<F: IoFile> Segment<F> {
    /// Open (creating if allowed) data file `num` and its index.
    pub fn open(prefix: &Path, shard: u32, num: u32, read_only: bool) -> Result<Self, BlobError> {
        let dpath = data_path(prefix, shard, num);
        let ipath = side_path(prefix, shard, num, ".index");
        let data = open_rw(&dpath, read_only)?;
        // Records are read at random: a miss reads the record's pages, not a readahead
        // window around them (which, on a data set larger than the page cache, multiplies
        // the bytes read from the device and evicts what is hot).
        let _ = rustix::fs::fadvise(&data, 0, None, rustix::fs::Advice::Random);
        let data = F::from_std(data);
        let index = F::from_std(open_rw(&ipath, read_only)?);
        let synced = super::checkpoint::path(prefix, shard);
        Ok(Self::with_files(
            data, index, dpath, ipath, synced, num, read_only,
        ))
    }

    /// Open sealed data file `num` whose one index is its sorted index
    /// (`….<N>.index.sorted`, which must exist).
    pub fn open_sealed(
        prefix: &Path,
        shard: u32,
        num: u32,
        read_only: bool,
    ) -> Result<Self, BlobError> {
        let dpath = data_path(prefix, shard, num);
        let ipath = side_path(prefix, shard, num, SORTED_SUFFIX);
        let data = open_rw(&dpath, read_only)?;
        // Read at random, as in `open`.
        let _ = rustix::fs::fadvise(&data, 0, None, rustix::fs::Advice::Random);
        let data = F::from_std(data);
        let shown = ipath.display().to_string();
        let index = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(&ipath)
            .map(F::from_std)
            .map_err(|e| BlobError::io(&shown, e))?;
        let synced = super::checkpoint::path(prefix, shard);
        let seg = Self::with_files(data, index, dpath, ipath, synced, num, read_only);
        seg.closed.set(true);
        seg.sorted.set(true);
        Ok(seg)
    }

    /// The same data file, now sealed, with `index` (its sorted index at `index_path`) as
    /// its one index; the counters carry over.
    pub fn sealed_copy(&self, index: F, index_path: &Path) -> Result<Self, BlobError> {
        let data = self
            .data
            .as_std()
            .try_clone()
            .map(F::from_std)
            .map_err(|e| BlobError::io(&self.path, e))?;
        let seg = Self::with_files(
            data,
            index,
            PathBuf::from(&*self.path),
            index_path.to_path_buf(),
            self.synced_path.clone(),
            self.num,
            false,
        );
        seg.tail_bytes.set(self.tail_bytes.get());
        seg.index_slots.set(self.index_slots.get());
        seg.records.set(self.records.get());
        seg.removed.set(self.removed.get());
        seg.removed_bytes.set(self.removed_bytes.get());
        seg.contiguous_end.set(self.contiguous_end.get());
        seg.pending.reset(self.index_slots.get());
        seg.closed.set(true);
        seg.sorted.set(true);
        Ok(seg)
    }

    fn with_files(
        data: F,
        index: F,
        dpath: PathBuf,
        ipath: PathBuf,
        synced_path: PathBuf,
        num: u32,
        read_only: bool,
    ) -> Self {
        let sorted_path = if ipath.to_string_lossy().ends_with(SORTED_SUFFIX) {
            ipath.display().to_string()
        } else {
            format!("{}.sorted", ipath.display())
        };
        Segment {
            num,
            data,
            index,
            path: dpath.display().to_string().into(),
            index_path: ipath.display().to_string(),
            sorted_path,
            tail_bytes: Cell::new(0),
            index_slots: Cell::new(0),
            records: Cell::new(0),
            removed: Cell::new(0),
            removed_bytes: Cell::new(0),
            closed: Cell::new(false),
            sorted: Cell::new(false),
            busy: Cell::new(0),
            defragging: Cell::new(false),
            pending: PendingIndex::default(),
            index_sync_needed: Cell::new(false),
            contiguous_end: Cell::new(0),
            index_synced_at: Cell::new(Instant::now()),
            page_map: PageMap::new(!read_only),
            sort: RefCell::new(None),
            changed_slots: RefCell::new(Vec::new()),
            synced_path,
            sync_claim: Cell::new(0),
        }
    }

    pub fn data_len(&self) -> Result<u64, BlobError> {
        self.data
            .as_std()
            .metadata()
            .map(|m| m.len())
            .map_err(|e| BlobError::io(&self.path, e))
    }

    pub fn index_len(&self) -> Result<u64, BlobError> {
        self.index
            .as_std()
            .metadata()
            .map(|m| m.len())
            .map_err(|e| BlobError::io(&self.index_path, e))
    }

    /// Path of the sorted index of this file.
    pub fn sorted_path(&self) -> String {
        self.sorted_path.clone()
    }

    pub async fn write_data(&self, bufs: Vec<Bytes>, offset: u64) -> Result<(), BlobError> {
        self.data
            .write_all_at(bufs, offset)
            .await
            .map_err(|e| BlobError::io(&self.path, e))
    }

    /// `len` bytes of the data file at `offset` (the caller bounded `len`).
    pub async fn read_data(&self, len: u64, offset: u64) -> Result<Vec<u8>, BlobError> {
        let len = usize::try_from(len).map_err(|_| BlobError::Invalid("read too large"))?;
        let mut bufs = self
            .read_vectored(vec![Vec::with_capacity(len)], offset)
            .await?;
        match bufs.pop() {
            Some(buf) if buf.len() == len => Ok(buf),
            _ => Err(BlobError::Invalid("short vectored read")),
        }
    }

    /// Fill the spare capacity of `bufs` in order from `offset` of the data file (see
    /// [`IoFile::read_vectored_at`]).
    pub async fn read_vectored(
        &self,
        bufs: Vec<Vec<u8>>,
        offset: u64,
    ) -> Result<Vec<Vec<u8>>, BlobError> {
        let (res, bufs) = self.data.read_vectored_at(bufs, offset).await;
        res.map_err(|e| BlobError::io(&self.path, e))?;
        Ok(bufs)
    }

    /// Run `f` over data-file bytes `[offset, offset + len)` read from the page cache
    /// without a syscall; `None` when they must be read with [`Segment::read_vectored`]
    /// instead. The caller must only ask for bytes of records already written.
    pub fn read_mapped<R>(
        &self,
        offset: u64,
        len: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<Result<R, BlobError>> {
        if !self.data.mappable() {
            return None;
        }
        let res = self.page_map.read(self.data.as_std(), offset, len, f)?;
        Some(res.map_err(|e| BlobError::io(&self.path, e)))
    }

    /// Start loading data-file bytes `[offset, offset + len)` into the CPU cache when the
    /// file's map covers them (a hint).
    pub fn prefetch(&self, offset: u64, len: u64) {
        if self.data.mappable() {
            self.page_map.prefetch(offset, len);
        }
    }

    /// Store `parts` back to back at `offset` of the data file through its page-cache map,
    /// bytes of a record already in the file; `false` when they must be written with
    /// [`Segment::write_data`] instead (no map, or a store faulted).
    pub fn write_mapped(&self, offset: u64, parts: &[&[u8]]) -> bool {
        self.data.mappable()
            && matches!(
                self.page_map.write(self.data.as_std(), offset, parts),
                Some(Ok(()))
            )
    }

    /// Store a new record's `parts` at `offset`, the end of the space handed out, through
    /// the page-cache map, the file extended with zeros first where it does not reach
    /// `record_end` (`PageMap::append`); `false` when they must be written with
    /// [`Segment::write_data`] instead.
    pub fn append_mapped(&self, offset: u64, record_end: u64, parts: &[&[u8]]) -> bool {
        self.data.mappable()
            && !self.closed.get()
            && matches!(
                self.page_map
                    .append(self.data.as_std(), offset, record_end, parts),
                Some(Ok(()))
            )
    }

    /// Cut the zeros that [`Segment::append_mapped`] wrote past the last record.
    pub fn trim_zeros(&self) -> Result<(), BlobError> {
        self.page_map
            .trim_zeros(self.data.as_std(), self.tail_bytes.get())
            .map_err(|e| BlobError::io(&self.path, e))
    }

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

    /// Start recording changed entries for the sorted index being written.
    pub(super) fn begin_sort(&self, state: SortState<F>) {
        self.changed_slots.borrow_mut().clear();
        *self.sort.borrow_mut() = Some(state);
    }

    /// Stop recording; the sorted index being written, if any.
    pub(super) fn end_sort(&self) -> Option<SortState<F>> {
        self.changed_slots.borrow_mut().clear();
        self.sort.borrow_mut().take()
    }

    /// The entry of `.index` slot `slot` changed (while a sorted index is being written).
    pub(super) fn note_changed_slot(&self, slot: u32) {
        if self.sort.borrow().is_some() {
            self.changed_slots.borrow_mut().push(slot);
        }
    }

    /// The slots recorded by [`Segment::note_changed_slot`] since the last call.
    pub(super) fn take_changed_slots(&self) -> Vec<u32> {
        std::mem::take(&mut *self.changed_slots.borrow_mut())
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
                if let Err(e) = super::checkpoint::write(&self.synced_path, self.num, durable_slots)
                {
                    tracing::warn!(file = %self.synced_path.display(), "synced point not written: {e}");
                }
            }
        }
        data.and(index)
    }
}

impl<F: IoFile> Drop for Segment<F> {
    /// A clean close leaves no index entry behind (recovery would find them in the data
    /// file anyway; this keeps the next open from scanning).
    fn drop(&mut self) {
        if let Err(e) = self.trim_zeros() {
            tracing::warn!(file = %self.path, "zeros past the last record left at close: {e}");
        }
        let (bytes, at) = self.pending.take_all();
        if !bytes.is_empty() {
            use std::os::unix::fs::FileExt;
            if let Err(e) = self.index.as_std().write_all_at(&bytes, at) {
                tracing::warn!(file = %self.index_path, "index entries lost at close: {e}");
            }
        }
    }
}
