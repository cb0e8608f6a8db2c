//! [`UringFile`]: the blob log's [`IoFile`] backend on this thread's ring (positional and
//! vectored reads, vectored positional writes and fdatasync).
//!
//! The file is kept as `Rc<File>` and every in-flight operation holds a clone, so dropping
//! a `UringFile` with I/O still in the kernel never closes the fd under it.
//!
//! Page-cache fast path: a read first tries `preadv2(RWF_NOWAIT)` on the calling thread and
//! goes through the ring only for what is not cached. A small write first tries
//! `pwritev2(RWF_NOWAIT)`; on a file system without non-blocking buffered writes (ext4
//! answers `EOPNOTSUPP`) io_uring would hand every write to a kernel worker thread (a
//! thread wake and two context switches per write), so writes of at most
//! [`INLINE_WRITE_BYTES_MAX`] bytes are then copied into the page cache inline with a plain
//! `pwritev`. Larger writes and fdatasync always go through the ring.
//!
//! A small vectored read whose bytes are not cached goes to the device with `O_DIRECT`
//! ([`super::direct`]), not through the page cache.
#![allow(unsafe_code)]

use super::direct::Direct;
use super::op::Op;
use super::reactor::cqe_result;
use crate::io::{vectored, IoFile};
use bytes::Bytes;
use io_uring::{opcode, types};
use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

/// At most this many iovecs go into one write (the kernel's UIO_MAXIOV).
const IOVECS_PER_WRITE_MAX: usize = 1024;
/// Buffers a write may have for its first inline attempt to use a stack iovec array.
const INLINE_IOVECS: usize = 4;
/// Writes up to this size are copied into the page cache on the calling thread when the
/// file system cannot take them without blocking through the ring.
pub const INLINE_WRITE_BYTES_MAX: usize = 256 * 1024;

/// What the file system said about `RWF_NOWAIT` for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoWait {
    /// Not tried yet, or it worked.
    Supported,
    /// `EOPNOTSUPP`: the file system has no non-blocking path for this direction.
    Unsupported,
}

/// A file driven by this thread's io_uring.
#[derive(Debug)]
pub struct UringFile {
    file: Rc<File>,
    read_nowait: Cell<NoWait>,
    write_nowait: Cell<NoWait>,
    direct: Direct,
    /// Reads that found bytes not cached and went to the ring.
    reads_waited: Cell<u64>,
}

#[path = "file_inline.rs"]
mod inline;
use inline::{copy_into, Inline};

/// Buffers of one vectored read; the iovecs point into the spare capacity of `bufs`.
struct ReadvState {
    bufs: Vec<Vec<u8>>,
    iovecs: Vec<libc::iovec>,
    _file: Rc<File>,
}

/// Buffers of one vectored write; the iovecs point into `bufs`.
struct WriteState {
    bufs: Vec<Bytes>,
    iovecs: Vec<libc::iovec>,
    _file: Rc<File>,
}

impl IoFile for UringFile {
    fn from_std(file: File) -> Self {
        UringFile {
            file: Rc::new(file),
            read_nowait: Cell::new(NoWait::Supported),
            write_nowait: Cell::new(NoWait::Supported),
            direct: Direct::new(),
            reads_waited: Cell::new(0),
        }
    }

    fn reads_waited(&self) -> u64 {
        self.reads_waited.get()
    }

    fn as_std(&self) -> &File {
        &self.file
    }

    fn mappable(&self) -> bool {
        true
    }

    async fn read_exact_at(&self, mut buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        let mut done = 0usize;
        while done < buf.len() {
            let want = u32::try_from(buf.len() - done).unwrap_or(u32::MAX);
            let Some(pos) = offset.checked_add(done as u64) else {
                let err = io::Error::new(io::ErrorKind::InvalidInput, "offset overflows u64");
                return (Err(err), buf);
            };
            match self.read_inline(buf.get_mut(done..).unwrap_or_default(), pos) {
                Inline::Done(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), buf),
                Inline::Done(n) => {
                    done += n;
                    continue;
                }
                Inline::Failed(e) => return (Err(e), buf),
                Inline::WouldBlock => {}
            }
            self.reads_waited.set(self.reads_waited.get() + 1);
            // SAFETY: `done < len`, so the pointer stays inside the initialised buffer.
            let ptr = unsafe { buf.as_mut_ptr().add(done) };
            let entry = opcode::Read::new(types::Fd(self.file.as_raw_fd()), ptr, want)
                .offset(pos)
                .build();
            // SAFETY: the entry points into `buf`'s heap allocation, owned by the op.
            let op = match unsafe { Op::submit(entry, (buf, Rc::clone(&self.file))) } {
                Ok(op) => op,
                Err((e, (b, _))) => return (Err(e), b),
            };
            let (result, (back, _)) = op.await;
            buf = back;
            match cqe_result(result) {
                Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), buf),
                Ok(n) => done += n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    async fn read_vectored_at(
        &self,
        bufs: Vec<Vec<u8>>,
        offset: u64,
    ) -> (io::Result<()>, Vec<Vec<u8>>) {
        let total = vectored::spare_total(&bufs);
        let mut state = ReadvState {
            iovecs: Vec::with_capacity(bufs.len()),
            bufs,
            _file: Rc::clone(&self.file),
        };
        let mut done = 0usize;
        while done < total {
            let Some(pos) = offset.checked_add(done as u64) else {
                let err = io::Error::new(io::ErrorKind::InvalidInput, "offset overflows u64");
                return (Err(err), state.bufs);
            };
            vectored::spare_iovecs(&mut state.bufs, done, &mut state.iovecs);
            if self.read_nowait.get() == NoWait::Supported
                && self.direct.wanted(&self.file, pos, total - done)
            {
                self.reads_waited.set(self.reads_waited.get() + 1);
                match self.direct.read(&self.file, pos, total - done).await {
                    Some(Ok(got)) => {
                        copy_into(&state.iovecs, got.bytes());
                        done = total;
                        continue;
                    }
                    Some(Err(e)) => return (Err(e), state.bufs),
                    None => {}
                }
            }
            match self.readv_inline(&state.iovecs, pos) {
                Inline::Done(0) => {
                    return (Err(io::ErrorKind::UnexpectedEof.into()), state.bufs);
                }
                Inline::Done(n) => {
                    done += n;
                    continue;
                }
                Inline::Failed(e) => return (Err(e), state.bufs),
                Inline::WouldBlock => {}
            }
            self.reads_waited.set(self.reads_waited.get() + 1);
            let count = u32::try_from(state.iovecs.len().min(IOVECS_PER_WRITE_MAX)).unwrap_or(1);
            let entry = opcode::Readv::new(
                types::Fd(self.file.as_raw_fd()),
                state.iovecs.as_ptr(),
                count,
            )
            .offset(pos)
            .build();
            // SAFETY: the iovec array and the spare capacity it describes are heap memory
            // owned by `state`, which the op owns until its CQE.
            let op = match unsafe { Op::submit(entry, state) } {
                Ok(op) => op,
                Err((e, back)) => return (Err(e), back.bufs),
            };
            let (result, back) = op.await;
            state = back;
            match cqe_result(result) {
                Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), state.bufs),
                Ok(n) => done += n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), state.bufs),
            }
        }
        // SAFETY: `done == total`: the reads above wrote every spare byte.
        unsafe { vectored::mark_filled(&mut state.bufs) };
        (Ok(()), state.bufs)
    }

    async fn write_all_at(&self, bufs: Vec<Bytes>, offset: u64) -> io::Result<()> {
        // The common case, a few buffers written whole by one inline call, needs no heap
        // iovec array. Anything else (short, would block) starts over below: rewriting
        // bytes already written at the same offsets is harmless.
        if bufs.len() <= INLINE_IOVECS {
            let mut iovecs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; INLINE_IOVECS];
            let mut total = 0usize;
            for (v, b) in iovecs.iter_mut().zip(&bufs) {
                v.iov_base = b.as_ptr() as *mut libc::c_void;
                v.iov_len = b.len();
                total += b.len();
            }
            let used = iovecs.get(..bufs.len()).unwrap_or(&[]);
            match self.write_inline(used, offset) {
                Inline::Done(n) if n == total => return Ok(()),
                Inline::Failed(e) => return Err(e),
                _ => {}
            }
        }
        let mut state = WriteState {
            bufs,
            iovecs: Vec::new(),
            _file: Rc::clone(&self.file),
        };
        let (mut index, mut skip, mut pos) = (0usize, 0usize, offset);
        loop {
            state.iovecs.clear();
            for (i, b) in state.bufs.iter().enumerate().skip(index) {
                let rest = b
                    .get(if i == index { skip } else { 0 }..)
                    .unwrap_or_default();
                if !rest.is_empty() {
                    state.iovecs.push(libc::iovec {
                        iov_base: rest.as_ptr() as *mut libc::c_void,
                        iov_len: rest.len(),
                    });
                }
                if state.iovecs.len() == IOVECS_PER_WRITE_MAX {
                    break;
                }
            }
            if state.iovecs.is_empty() {
                return Ok(());
            }
            let inline = match self.write_inline(&state.iovecs, pos) {
                Inline::Done(0) => return Err(io::ErrorKind::WriteZero.into()),
                Inline::Done(n) => Some(n),
                Inline::Failed(e) => return Err(e),
                Inline::WouldBlock => None,
            };
            let mut written = match inline {
                Some(n) => n,
                None => {
                    let entry = opcode::Writev::new(
                        types::Fd(self.file.as_raw_fd()),
                        state.iovecs.as_ptr(),
                        state.iovecs.len() as u32,
                    )
                    .offset(pos)
                    .build();
                    // SAFETY: the iovec array and the bytes it describes are heap memory
                    // owned by `state`, which the op owns until its CQE.
                    let op = unsafe { Op::submit(entry, state) }.map_err(|(e, _)| e)?;
                    let (result, back) = op.await;
                    state = back;
                    match cqe_result(result) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => n as usize,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                        Err(e) => return Err(e),
                    }
                }
            };
            pos = pos
                .checked_add(written as u64)
                .ok_or(io::ErrorKind::InvalidInput)?;
            while written > 0 {
                let Some(b) = state.bufs.get(index) else {
                    break;
                };
                let left = b.len() - skip;
                if written >= left {
                    written -= left;
                    index += 1;
                    skip = 0;
                } else {
                    skip += written;
                    written = 0;
                }
            }
        }
    }

    async fn sync_data(&self) -> io::Result<()> {
        let entry = opcode::Fsync::new(types::Fd(self.file.as_raw_fd()))
            .flags(types::FsyncFlags::DATASYNC)
            .build();
        // SAFETY: the entry holds no pointers; the op keeps the file open.
        let op = unsafe { Op::submit(entry, Rc::clone(&self.file)) }.map_err(|(e, _)| e)?;
        let (result, _) = op.await;
        cqe_result(result).map(drop)
    }
}
