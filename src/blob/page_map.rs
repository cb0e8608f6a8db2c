//! Reads of a data file, and overwrites of bytes already in it, served through a shared
//! mapping of its page cache ([`crate::io::mapped`]).
//!
//! A read of a small record then costs one copy instead of a `preadv2` syscall, an
//! overwrite one copy instead of a `pwritev`. The map is
//! made on the first read, sized to a power of two of at least [`MAP_BYTES_MIN`] so that the
//! file being appended to is remapped only when it doubles. Two kinds of read step back to
//! the caller's syscall path: a read that the map does not cover (`None`), and, for the next
//! [`SKIP_READS_AFTER_SLOW`] reads, every read after one that took as long as a disk access
//! (the pages are not cached, and the syscall path hands such reads to the ring instead of
//! blocking the shard; one read in [`TIMED_READ_ONE_IN`] is timed). A map that cannot be
//! made is not tried again.
//!
//! Appends to the open file can be stores too ([`PageMap::append`]): the file is extended
//! by [`ZERO_AHEAD_BYTES`] of zeros at a time, one `pwrite` that fills whole page-cache pages,
//! and each record is then copied into pages that are already cached and dirty. On ext4 a
//! `pwrite` of a 4 256-byte record walks the buffered-write path for two pages (folio
//! lookup, block reservation, size update); the store is a copy. The zeros past the last
//! record are cut off when the file is closed, and recovery cuts them after a crash (a
//! zero header ends the walk of the data file).

use crate::io::mapped::Mapping;
use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io;

/// Smallest map of a file: virtual address space only, pages are mapped as they are read.
pub const MAP_BYTES_MIN: u64 = 64 << 20;

/// Timestamp ticks above which a mapped read waited on the disk (about 100 us or more at
/// the clock rates of current servers; a page-cache copy of a 1 MiB chunk takes under 100k).
const SLOW_READ_TICKS: u64 = 400_000;

/// Reads that go through the syscall path after a slow mapped read.
pub const SKIP_READS_AFTER_SLOW: u32 = 4096;

/// One mapped read in this many is timed (the first one included). Reading the timestamp
/// counter twice per read cost about 6% of the server CPU of a pipelined 100 B READ on a
/// VM here; a file whose pages are not cached is still caught within a few reads.
const TIMED_READ_ONE_IN: u32 = 16;

/// Zeros written past the end of the open file at a time by [`PageMap::append`].
pub const ZERO_AHEAD_BYTES: u64 = 1 << 20;

/// Zeros written by one `pwrite`: 16 per chunk. On a VM that hands free memory back to its
/// host, 1 MiB writes into fresh page cache were often several times slower than the same
/// bytes in 64 KiB writes (measured with `cargo bench --bench blob -- append` after an idle
/// minute).
const ZERO_PIECE_BYTES: u64 = 64 << 10;

/// The source of the zeros: untouched static memory, which costs no resident pages.
static ZEROS: [u8; ZERO_PIECE_BYTES as usize] = [0; ZERO_PIECE_BYTES as usize];

/// The mapping of one data file and the state of the heuristics above.
#[derive(Debug)]
pub struct PageMap {
    map: RefCell<Option<Mapping>>,
    skip_reads: Cell<u32>,
    /// Mapped reads so far (for [`TIMED_READ_ONE_IN`]).
    reads: Cell<u32>,
    disabled: Cell<bool>,
    writable: bool,
    /// The file's length when last asked: bytes past it are never touched through the map
    /// (that would fault), and asking again costs a syscall.
    file_bytes: Cell<u64>,
    /// Where the zeros written by [`PageMap::append`] end (0: none written).
    zeroed_end: Cell<u64>,
    /// Writing zeros failed (a full disk): appends use the caller's syscall path.
    zero_failed: Cell<bool>,
}

impl PageMap {
    /// A map made on first use; `writable` for a file opened for writing.
    pub fn new(writable: bool) -> Self {
        PageMap {
            map: RefCell::new(None),
            skip_reads: Cell::new(0),
            reads: Cell::new(0),
            disabled: Cell::new(false),
            writable,
            file_bytes: Cell::new(0),
            zeroed_end: Cell::new(0),
            zero_failed: Cell::new(false),
        }
    }

    /// Store `parts` back to back at `offset`, the end of the space handed out in `file`,
    /// first extending the file with zeros when it does not reach `record_end`; `None` when
    /// the caller should write with a syscall instead (as for [`PageMap::write`]).
    ///
    /// The zeros start at the file's length and only when no byte before `offset` lies
    /// past it: bytes there would belong to an earlier record whose write may still be in
    /// flight, and zeros landing after it would destroy it.
    pub fn append(
        &self,
        file: &File,
        offset: u64,
        record_end: u64,
        parts: &[&[u8]],
    ) -> Option<io::Result<()>> {
        if self.disabled.get() || !self.writable || self.zero_failed.get() {
            return None;
        }
        if record_end > self.file_bytes.get() {
            let len = file.metadata().ok()?.len();
            self.file_bytes.set(len);
            if record_end > len {
                if offset > len {
                    return None;
                }
                self.zero_ahead(file, len, record_end.next_multiple_of(ZERO_AHEAD_BYTES))?;
            }
        }
        self.write(file, offset, parts)
    }

    /// Write zeros over `[from, to)`, past the end of `file`; on failure cut the file back
    /// to `from` and stop appending through the map.
    fn zero_ahead(&self, file: &File, from: u64, to: u64) -> Option<()> {
        use std::os::unix::fs::FileExt;
        let mut at = from;
        while at < to {
            let n = usize::try_from((to - at).min(ZERO_PIECE_BYTES)).ok()?;
            if let Err(e) = file.write_all_at(ZEROS.get(..n)?, at) {
                tracing::warn!("appends fall back to syscalls: extending a data file failed: {e}");
                self.zero_failed.set(true);
                if let Err(e) = file.set_len(from) {
                    tracing::warn!("cutting back a data file after a failed extension: {e}");
                }
                return None;
            }
            at += n as u64;
        }
        self.file_bytes.set(to);
        self.zeroed_end.set(to);
        Some(())
    }

    /// Cut the zeros written by [`PageMap::append`] past `tail`, the end of the last record
    /// (a file being closed keeps no zero tail: eblob's tools take the length as the end).
    pub fn trim_zeros(&self, file: &File, tail: u64) -> io::Result<()> {
        if self.zeroed_end.get() > tail {
            file.set_len(tail)?;
            self.zeroed_end.set(0);
            self.file_bytes.set(tail);
        }
        Ok(())
    }

    /// Store `parts` back to back at `offset` of `file`, bytes the file already has; `None`
    /// when the caller should write them with a syscall instead, `Some(Err(EIO))` when a
    /// store faulted (the bytes may be partly written: write them all again).
    pub fn write(&self, file: &File, offset: u64, parts: &[&[u8]]) -> Option<io::Result<()>> {
        if self.disabled.get() || !self.writable {
            return None;
        }
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        self.cover(file, offset.checked_add(len)?)?;
        let map = self.map.borrow();
        map.as_ref()?.write_at(usize::try_from(offset).ok()?, parts)
    }

    /// Run `f` over bytes `[offset, offset + len)` of `file` through the map; `None` when
    /// the caller should read with a syscall instead, `Some(Err(EIO))` on a media error.
    pub fn read<R>(
        &self,
        file: &File,
        offset: u64,
        len: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<io::Result<R>> {
        if self.disabled.get() {
            return None;
        }
        let skip = self.skip_reads.get();
        if skip > 0 {
            self.skip_reads.set(skip - 1);
            return None;
        }
        let end = offset.checked_add(len)?;
        self.cover(file, end)?;
        let reads = self.reads.get();
        self.reads.set(reads.wrapping_add(1));
        let map = self.map.borrow();
        let res = map.as_ref()?.with_bytes(
            usize::try_from(offset).ok()?,
            usize::try_from(len).ok()?,
            reads.is_multiple_of(TIMED_READ_ONE_IN),
            f,
        )?;
        Some(res.map(|(out, took)| {
            if took > SLOW_READ_TICKS {
                self.skip_reads.set(SKIP_READS_AFTER_SLOW);
            }
            out
        }))
    }

    /// A syscall read of this file waited on the device: its pages are not all cached, so
    /// the next [`SKIP_READS_AFTER_SLOW`] reads skip the map too (a mapped read of such a
    /// page would block the thread in a major fault instead of going to the ring).
    pub fn note_uncached_read(&self) {
        self.skip_reads.set(SKIP_READS_AFTER_SLOW);
    }

    /// Start loading bytes `[offset, offset + len)` into the CPU cache if the map covers
    /// them; never makes a map (a hint).
    pub fn prefetch(&self, offset: u64, len: u64) {
        let Some(end) = offset.checked_add(len) else {
            return;
        };
        if end > self.file_bytes.get() || self.skip_reads.get() > 0 {
            return;
        }
        if let (Ok(Some(map)), Ok(at), Ok(n)) = (
            self.map.try_borrow().as_deref().map(Option::as_ref),
            usize::try_from(offset),
            usize::try_from(len),
        ) {
            map.prefetch(at, n);
        }
    }

    /// Make the map cover `[0, end)` when the file does; `None` when it cannot.
    fn cover(&self, file: &File, end: u64) -> Option<()> {
        if end > self.file_bytes.get() {
            self.file_bytes.set(file.metadata().ok()?.len());
            if end > self.file_bytes.get() {
                return None;
            }
        }
        let mut slot = self.map.borrow_mut();
        if let Some(map) = slot.as_ref() {
            if end <= map.len() as u64 && !map.poisoned() {
                return Some(());
            }
        }
        *slot = None;
        let want = self
            .file_bytes
            .get()
            .max(MAP_BYTES_MIN)
            .checked_next_power_of_two()?;
        match Mapping::new(file, usize::try_from(want).ok()?, self.writable) {
            Ok(map) => *slot = Some(map),
            Err(e) => {
                tracing::warn!("data file I/O falls back to syscalls: cannot map it: {e}");
                self.disabled.set(true);
                return None;
            }
        }
        Some(())
    }
}
