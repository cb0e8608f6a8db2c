//! The inline fast path of [`super::UringFile`]: one non-blocking attempt on the calling
//! thread (`preadv2` / `pwritev2` with `RWF_NOWAIT`, or a plain `pwritev` of a small
//! write where the file system has no non-blocking buffered writes) before the ring.
#![allow(unsafe_code)]

use super::{NoWait, UringFile, INLINE_WRITE_BYTES_MAX, IOVECS_PER_WRITE_MAX};
use std::io;
use std::os::fd::AsRawFd;

/// The outcome of one inline attempt.
pub(super) enum Inline {
    /// This many bytes moved.
    Done(usize),
    /// The data is not at hand without blocking: use the ring.
    WouldBlock,
    Failed(io::Error),
}

fn inline_result(ret: isize) -> Inline {
    if ret >= 0 {
        return Inline::Done(ret.unsigned_abs());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN | libc::EINTR) => Inline::WouldBlock,
        _ => Inline::Failed(err),
    }
}

impl UringFile {
    /// One `preadv2(RWF_NOWAIT)` into `buf`; only page-cache hits complete.
    pub(super) fn read_inline(&self, buf: &mut [u8], pos: u64) -> Inline {
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        self.readv_inline(std::slice::from_ref(&iov), pos)
    }

    /// One `preadv2(RWF_NOWAIT)` into `iovecs`, which must describe writable memory that
    /// stays live for the call; only page-cache hits complete.
    pub(super) fn readv_inline(&self, iovecs: &[libc::iovec], pos: u64) -> Inline {
        if self.read_nowait.get() == NoWait::Unsupported || iovecs.is_empty() {
            return Inline::WouldBlock;
        }
        let (Ok(pos), Ok(count)) = (
            libc::off_t::try_from(pos),
            libc::c_int::try_from(iovecs.len().min(IOVECS_PER_WRITE_MAX)),
        ) else {
            return Inline::WouldBlock;
        };
        // SAFETY: every iovec describes live memory the caller lends exclusively for the
        // call; RWF_NOWAIT makes the call return instead of waiting on I/O.
        let ret = unsafe {
            libc::preadv2(
                self.file.as_raw_fd(),
                iovecs.as_ptr(),
                count,
                pos,
                libc::RWF_NOWAIT,
            )
        };
        match inline_result(ret) {
            Inline::Failed(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                self.read_nowait.set(NoWait::Unsupported);
                Inline::WouldBlock
            }
            other => other,
        }
    }

    /// One inline write of `iovecs` at `pos`: `pwritev2(RWF_NOWAIT)` where the file system
    /// supports it, else a plain `pwritev` of a small write (see the module header).
    pub(super) fn write_inline(&self, iovecs: &[libc::iovec], pos: u64) -> Inline {
        let total: usize = iovecs.iter().map(|v| v.iov_len).sum();
        let (Ok(pos), Ok(count)) = (
            libc::off_t::try_from(pos),
            libc::c_int::try_from(iovecs.len()),
        ) else {
            return Inline::WouldBlock;
        };
        if total > INLINE_WRITE_BYTES_MAX || count == 0 {
            return Inline::WouldBlock;
        }
        let fd = self.file.as_raw_fd();
        if self.write_nowait.get() == NoWait::Supported {
            // SAFETY: every iovec points into a live `Bytes` owned by the caller for the
            // duration of the call; RWF_NOWAIT makes the call return instead of blocking.
            let ret = unsafe { libc::pwritev2(fd, iovecs.as_ptr(), count, pos, libc::RWF_NOWAIT) };
            match inline_result(ret) {
                Inline::Failed(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    self.write_nowait.set(NoWait::Unsupported);
                }
                other => return other,
            }
        }
        // SAFETY: as above; a plain buffered write of at most INLINE_WRITE_BYTES_MAX bytes.
        let ret = unsafe { libc::pwritev(fd, iovecs.as_ptr(), count, pos) };
        inline_result(ret)
    }
}

/// Copy `bytes` into the memory `iovecs` describe, in order, as far as both go.
pub(super) fn copy_into(iovecs: &[libc::iovec], mut bytes: &[u8]) {
    for v in iovecs {
        let n = v.iov_len.min(bytes.len());
        let (head, rest) = bytes.split_at(n);
        // SAFETY: each iovec describes writable spare capacity of a buffer the caller owns
        // and lends for the call (see `vectored::spare_iovecs`); `n <= iov_len`, and the
        // source is a distinct allocation.
        unsafe { std::ptr::copy_nonoverlapping(head.as_ptr(), v.iov_base.cast::<u8>(), n) };
        bytes = rest;
    }
}
