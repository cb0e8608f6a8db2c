//! [`Direct`]: reads of bytes that are not in the page cache, done with `O_DIRECT` through
//! the ring.
//!
//! A buffered read of a record that is not cached makes the kernel allocate page-cache
//! pages, insert them, read them and copy out of them: for a random 4 KiB read of a data
//! set larger than RAM that is CPU spent on pages nobody reads again, and their eviction
//! later. Once a `preadv2(RWF_NOWAIT)` has said the bytes are not cached, an `O_DIRECT`
//! read of the [`DIRECT_ALIGN_BYTES`]-aligned blocks that cover them moves them from the
//! device straight into an aligned buffer, and the wanted bytes are copied out of it.
//!
//! Whether the bytes are cached is asked with `cachestat(2)` (Linux 6.5), which reads
//! nothing: a `preadv2(RWF_NOWAIT)` that misses starts readahead of the missing pages
//! before it answers `EAGAIN`, so asking with it and then reading directly would read
//! every cold record twice. A kernel without `cachestat` keeps every read buffered.
//!
//! The direct descriptor is a second open of the same file (through `/proc/self/fd`), made
//! on the first such read. The kernel keeps the two coherent: a direct read first writes
//! back dirty cached pages of its range. A file system without `O_DIRECT` (tmpfs), or a
//! read it refuses (`EINVAL`), turns the direct path off for the file; a short read (the
//! end of the file) answers `None` for that read. Either way the caller reads buffered.
#![allow(unsafe_code)]

use super::op::Op;
use super::reactor::cqe_result;
use crate::io::aligned::{AlignedBuf, DIRECT_ALIGN_BYTES};
use io_uring::{opcode, types};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::rc::Rc;

/// Reads larger than this stay buffered (readahead serves large reads well, and the
/// aligned copy would cost memory for nothing).
pub const DIRECT_READ_BYTES_MAX: usize = 256 * 1024;

/// `cachestat(2)`'s number, the same on every architecture (new system calls share one
/// table); the `libc` crate does not name it for every target yet.
const SYS_CACHESTAT: libc::c_long = 451;

/// `struct cachestat_range` of `cachestat(2)`.
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// `struct cachestat` of `cachestat(2)`: page counts over the range.
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// Whether every page of `[pos, pos + len)` of `file` is in the page cache; `None` when
/// the kernel cannot tell (no `cachestat`).
fn all_cached(file: &File, pos: u64, len: usize) -> Option<bool> {
    let page = DIRECT_ALIGN_BYTES;
    let end = pos.checked_add(len as u64)?;
    let pages = end.div_ceil(page) - pos / page;
    let range = CachestatRange {
        off: pos / page * page,
        len: pages * page,
    };
    let mut stat = Cachestat::default();
    let fd = libc::c_uint::try_from(file.as_raw_fd()).ok()?;
    // SAFETY: `range` and `stat` are live, properly laid out `#[repr(C)]` values the call
    // reads and writes only for its duration; flags must be 0.
    let ret = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd,
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    (ret == 0).then_some(stat.nr_cache >= pages)
}

#[derive(Debug)]
enum State {
    Untried,
    Open(Rc<File>),
    Unavailable,
}

/// The direct-read side of one file (see the module header).
#[derive(Debug)]
pub struct Direct {
    state: RefCell<State>,
}

/// The bytes of one direct read: `len` of them from `skip` into `buf`.
#[derive(Debug)]
pub struct DirectBytes {
    buf: AlignedBuf,
    skip: usize,
    len: usize,
}

impl DirectBytes {
    pub fn bytes(&self) -> &[u8] {
        self.buf
            .as_slice()
            .get(self.skip..self.skip + self.len)
            .unwrap_or_default()
    }
}

impl Direct {
    pub fn new() -> Direct {
        Direct {
            state: RefCell::new(State::Untried),
        }
    }

    /// Whether `[pos, pos + len)` of `file` should be read with [`Direct::read`]: the
    /// direct path is usable and some of those bytes are not cached.
    pub fn wanted(&self, file: &File, pos: u64, len: usize) -> bool {
        if len == 0 || len > DIRECT_READ_BYTES_MAX {
            return false;
        }
        if let State::Unavailable = *self.state.borrow() {
            return false;
        }
        match all_cached(file, pos, len) {
            Some(cached) => !cached,
            None => {
                tracing::debug!("reads of data files stay buffered: no cachestat");
                *self.state.borrow_mut() = State::Unavailable;
                false
            }
        }
    }

    /// The direct descriptor of `file`, opened on first use.
    fn descriptor(&self, file: &File) -> Option<Rc<File>> {
        let mut state = self.state.borrow_mut();
        if let State::Untried = *state {
            let path = format!("/proc/self/fd/{}", file.as_raw_fd());
            *state = match OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
            {
                Ok(f) => State::Open(Rc::new(f)),
                Err(e) => {
                    tracing::debug!("reads of a data file stay buffered: no O_DIRECT open: {e}");
                    State::Unavailable
                }
            };
        }
        match &*state {
            State::Open(f) => Some(Rc::clone(f)),
            _ => None,
        }
    }

    /// `len` bytes of `file` at `pos`, read with `O_DIRECT` through the ring; `None` when
    /// they must be read buffered instead (see the module header).
    pub async fn read(&self, file: &File, pos: u64, len: usize) -> Option<io::Result<DirectBytes>> {
        if len == 0 || len > DIRECT_READ_BYTES_MAX {
            return None;
        }
        let fd = self.descriptor(file)?;
        let start = pos / DIRECT_ALIGN_BYTES * DIRECT_ALIGN_BYTES;
        let skip = usize::try_from(pos - start).ok()?;
        let mut buf = AlignedBuf::for_read(skip.checked_add(len)?)?;
        let want = u32::try_from(buf.len()).ok()?;
        let entry = opcode::Read::new(types::Fd(fd.as_raw_fd()), buf.as_mut_ptr(), want)
            .offset(start)
            .build();
        // SAFETY: the entry points into `buf`'s heap allocation, which the op owns (moving
        // the `AlignedBuf` does not move it) together with the descriptor until its CQE.
        let op = match unsafe { Op::submit(entry, (buf, fd)) } {
            Ok(op) => op,
            Err((e, _)) => return Some(Err(e)),
        };
        let (result, (buf, _)) = op.await;
        match cqe_result(result) {
            Ok(n) if n as usize >= skip + len => Some(Ok(DirectBytes { buf, skip, len })),
            Ok(_) => None,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::debug!("reads of a data file stay buffered: O_DIRECT read refused");
                *self.state.borrow_mut() = State::Unavailable;
                None
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(e) => Some(Err(e)),
        }
    }
}
