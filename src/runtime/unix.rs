//! Unix stream sockets on the ring: a listener bound to a filesystem path and a stream with
//! owned-buffer reads and whole-buffer writes. Used for the node's worker sockets.
//!
//! Same ownership rules as `net.rs`: every in-flight operation holds an `Rc` of the socket,
//! so the fd closes only after the kernel is done with it, and buffers live in the op slot
//! until the completion arrives even when the future is dropped.
#![allow(unsafe_code)]

use super::op::Op;
use super::reactor::cqe_result;
use io_uring::{opcode, types};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A listening unix socket whose accepts run on this thread's ring. The path is removed
/// when the listener is dropped.
#[derive(Debug)]
pub struct UnixListener {
    socket: Rc<net::UnixListener>,
    path: PathBuf,
}

impl UnixListener {
    /// Remove a stale file at `path`, bind and listen.
    pub fn bind(path: &Path) -> io::Result<UnixListener> {
        let _ = std::fs::remove_file(path);
        let socket = net::UnixListener::bind(path)?;
        Ok(UnixListener {
            socket: Rc::new(socket),
            path: path.to_path_buf(),
        })
    }

    /// The path the listener is bound to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accept the next connection.
    pub async fn accept(&self) -> io::Result<UnixStream> {
        let entry = opcode::Accept::new(
            types::Fd(self.socket.as_raw_fd()),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
        .flags(libc::SOCK_CLOEXEC)
        .build();
        // SAFETY: the entry holds no pointers into memory; the op keeps the listening socket
        // alive until its completion.
        let op = unsafe { Op::submit(entry, Rc::clone(&self.socket)) }.map_err(|(e, _)| e)?;
        let (result, _) = op.await;
        let fd = cqe_result(result)?;
        // SAFETY: the kernel created this fd for our accept and handed it to us alone.
        let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(UnixStream {
            socket: Rc::new(net::UnixStream::from(owned)),
        })
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A connected unix stream whose reads and writes run on this thread's ring. One read and
/// one write may be in flight at the same time (share it via `Rc`).
#[derive(Debug)]
pub struct UnixStream {
    socket: Rc<net::UnixStream>,
}

impl UnixStream {
    /// Read into the spare capacity after `buf.len()`, extend `buf.len()` by the bytes read
    /// and return their count; 0 means end of stream. The buffer comes back in every case.
    pub async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        super::net::recv_into(&self.socket, buf, usize::MAX).await
    }

    /// Send every byte of `buf`, looping on short writes.
    pub async fn write_all(&self, buf: Vec<u8>) -> io::Result<()> {
        let mut buf = buf;
        let mut offset = 0usize;
        while offset < buf.len() {
            let rest = buf.len() - offset;
            let len = u32::try_from(rest).unwrap_or(u32::MAX);
            // SAFETY: `offset < len()`, so the pointer stays inside the allocation.
            let ptr = unsafe { buf.as_ptr().add(offset) };
            let entry = opcode::Send::new(types::Fd(self.socket.as_raw_fd()), ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build();
            // SAFETY: the entry points into `buf`'s heap allocation, owned by the op.
            let op =
                unsafe { Op::submit(entry, (buf, Rc::clone(&self.socket))) }.map_err(|(e, _)| e)?;
            let (result, (back, _)) = op.await;
            buf = back;
            match cqe_result(result) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => offset += n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Shut down both directions; pending reads then see end of stream.
    pub fn shutdown(&self) -> io::Result<()> {
        self.socket.shutdown(std::net::Shutdown::Both)
    }
}
