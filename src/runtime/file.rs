//! [`UringFile`]: the blob log's [`IoFile`] backend on this thread's ring (positional reads,
//! vectored positional writes and fdatasync).
//!
//! The file is kept as `Rc<File>` and every in-flight operation holds a clone, so dropping
//! a `UringFile` with I/O still in the kernel never closes the fd under it.
#![allow(unsafe_code)]

use super::op::Op;
use super::reactor::cqe_result;
use crate::io::IoFile;
use bytes::Bytes;
use io_uring::{opcode, types};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

/// At most this many iovecs go into one write (the kernel's UIO_MAXIOV).
const IOVECS_PER_WRITE_MAX: usize = 1024;

/// A file driven by this thread's io_uring.
#[derive(Debug)]
pub struct UringFile {
    file: Rc<File>,
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
        }
    }

    fn as_std(&self) -> &File {
        &self.file
    }

    async fn read_exact_at(&self, mut buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        let mut done = 0usize;
        while done < buf.len() {
            let want = u32::try_from(buf.len() - done).unwrap_or(u32::MAX);
            let Some(pos) = offset.checked_add(done as u64) else {
                let err = io::Error::new(io::ErrorKind::InvalidInput, "offset overflows u64");
                return (Err(err), buf);
            };
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

    async fn write_all_at(&self, bufs: Vec<Bytes>, offset: u64) -> io::Result<()> {
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
            let entry = opcode::Writev::new(
                types::Fd(self.file.as_raw_fd()),
                state.iovecs.as_ptr(),
                state.iovecs.len() as u32,
            )
            .offset(pos)
            .build();
            // SAFETY: the iovec array and the bytes it describes are heap memory owned by
            // `state`, which the op owns until its CQE.
            let op = unsafe { Op::submit(entry, state) }.map_err(|(e, _)| e)?;
            let (result, back) = op.await;
            state = back;
            let mut written = match cqe_result(result) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(e),
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
