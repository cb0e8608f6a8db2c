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
//! blocking the shard). A map that cannot be made is not tried again.

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

/// The mapping of one data file and the state of the heuristics above.
#[derive(Debug)]
pub struct PageMap {
    map: RefCell<Option<Mapping>>,
    skip_reads: Cell<u32>,
    disabled: Cell<bool>,
    writable: bool,
    /// The file's length when last asked: bytes past it are never touched through the map
    /// (that would fault), and asking again costs a syscall.
    file_bytes: Cell<u64>,
}

impl PageMap {
    /// A map made on first use; `writable` for a file opened for writing.
    pub fn new(writable: bool) -> Self {
        PageMap {
            map: RefCell::new(None),
            skip_reads: Cell::new(0),
            disabled: Cell::new(false),
            writable,
            file_bytes: Cell::new(0),
        }
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
        let map = self.map.borrow();
        let res = map.as_ref()?.with_bytes(
            usize::try_from(offset).ok()?,
            usize::try_from(len).ok()?,
            f,
        )?;
        Some(res.map(|(out, took)| {
            if took > SLOW_READ_TICKS {
                self.skip_reads.set(SKIP_READS_AFTER_SLOW);
            }
            out
        }))
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
