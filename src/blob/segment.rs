//! One data file of the log and its index files: `<prefix>-<shard>.<N>`, `….<N>.index`
//! (96-byte headers in write order) and, once the file is closed, `….<N>.index.sorted`
//! (the same headers sorted by key). Owns file naming, creation and the lock file.
//!
//! The segment's state and how it is opened live here; the file naming and locking, the
//! data-file I/O and the index I/O are in its child modules.

mod data_io;
mod files;
mod index_io;

pub(crate) use files::open_rw;
pub use files::{
    data_path, dir_of, list_files, lock, lock_path, side_path, sync_dir, SORTED_SUFFIX,
};

use super::disk_control::DiskControl;
use super::error::BlobError;
use super::page_map::PageMap;
use super::pending::PendingIndex;
use crate::io::IoFile;
use std::cell::{Cell, RefCell};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

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

/// Marks a segment busy while an operation changes its records.
#[derive(Debug)]
pub(super) struct Busy<F: IoFile>(pub Rc<Segment<F>>);

impl<F: IoFile> Busy<F> {
    pub fn new(seg: &Rc<Segment<F>>) -> Self {
        seg.busy.set(seg.busy.get() + 1);
        Busy(seg.clone())
    }
}

impl<F: IoFile> Drop for Busy<F> {
    fn drop(&mut self) {
        self.0.busy.set(self.0.busy.get().saturating_sub(1));
    }
}

/// A sorted index being written for a closed file.
#[derive(Debug)]
pub struct SortState<F> {
    /// The file's headers in `.index` slot order.
    pub(super) raw: Vec<DiskControl>,
    /// The place in the sorted index of each `.index` slot.
    pub(super) sorted_slot_of: Vec<u32>,
    pub(super) tmp_path: String,
    pub(super) tmp: Rc<F>,
}
