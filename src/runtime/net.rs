//! TCP on the ring: a listener with multishot accept and a stream with owned-buffer reads and
//! vectored writes.
//!
//! Sockets are kept as `Rc<std::net::…>`: every in-flight operation holds a clone, so the fd
//! is closed only after the kernel is done with all of its operations, even when the user
//! drops the stream first. A stream can be shared (via `Rc`) by a reader task and a writer
//! task: one read and one write may be in flight at the same time.
#![allow(unsafe_code)]

use super::op::{MultiOp, Op};
use super::reactor::cqe_result;
use super::socket::{close_orphan_fd, new_socket, set_int_opt, syscall, RawAddr};
use bytes::Bytes;
use io_uring::{opcode, types};
use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::{self, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::Poll;

/// At most this many iovecs go into one send (the kernel's UIO_MAXIOV).
const IOVECS_PER_SEND_MAX: usize = 1024;

/// A listening TCP socket whose accepts run on this thread's ring.
#[derive(Debug)]
pub struct TcpListener {
    socket: Rc<net::TcpListener>,
    /// The armed multishot accept, re-armed whenever the kernel ends it.
    accepts: RefCell<Option<MultiOp<Rc<net::TcpListener>>>>,
}

impl TcpListener {
    /// Bind with `SO_REUSEADDR` and `SO_REUSEPORT` (so every shard can own a listener on the
    /// same port) and listen with `backlog`.
    pub fn bind_reuseport(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
        let raw = RawAddr::new(addr);
        let fd = new_socket(raw.family())?;
        set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        let (ptr, len) = raw.as_ptr();
        // SAFETY: `ptr`/`len` describe the live sockaddr inside `raw`.
        syscall(unsafe { libc::bind(fd.as_raw_fd(), ptr, len) })?;
        let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
        // SAFETY: listen(2) on a socket we own.
        syscall(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
        Ok(TcpListener {
            socket: Rc::new(net::TcpListener::from(fd)),
            accepts: RefCell::new(None),
        })
    }

    /// The bound address (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Accept the next connection. Uses one multishot accept that stays armed between
    /// calls; accepted fds that arrive after the listener is dropped are closed. Meant for
    /// one accepting task per listener.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            let fd = poll_fn(|cx| {
                let mut armed = self.accepts.borrow_mut();
                loop {
                    if armed.is_none() {
                        let entry = opcode::AcceptMulti::new(types::Fd(self.socket.as_raw_fd()))
                            .flags(libc::SOCK_CLOEXEC)
                            .build();
                        // SAFETY: the entry holds no pointers; the op keeps the listening
                        // socket alive until the multishot ends.
                        let op = unsafe {
                            MultiOp::submit(entry, Rc::clone(&self.socket), close_orphan_fd)
                        };
                        *armed = Some(op?);
                    }
                    let Some(op) = armed.as_mut() else { continue };
                    match op.poll_next(cx) {
                        Poll::Ready(Some(result)) => {
                            if result < 0 && op.is_finished() {
                                *armed = None;
                            }
                            return Poll::Ready(cqe_result(result).map(|fd| fd as RawFd));
                        }
                        Poll::Ready(None) => *armed = None,
                        Poll::Pending => return Poll::Pending,
                    }
                }
            })
            .await?;
            // SAFETY: the kernel created `fd` for this accept and handed it to us alone.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            let stream = net::TcpStream::from(owned);
            // A peer that already went away is not an error of the listener: skip it.
            if let Ok(peer) = stream.peer_addr() {
                return Ok((
                    TcpStream {
                        socket: Rc::new(stream),
                        send_scratch: RefCell::new(None),
                    },
                    peer,
                ));
            }
        }
    }
}

/// A connected TCP stream whose reads and writes run on this thread's ring.
#[derive(Debug)]
pub struct TcpStream {
    socket: Rc<net::TcpStream>,
    /// The iovec array and msghdr of the last finished send, reused by the next one.
    send_scratch: RefCell<Option<SendScratch>>,
}

/// Heap parts of a send that outlive it for reuse. The pointers left in them are stale and
/// are always overwritten before the next send.
struct SendScratch {
    iovecs: Vec<libc::iovec>,
    msg: Box<libc::msghdr>,
}

impl std::fmt::Debug for SendScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendScratch")
            .field("iovecs_capacity", &self.iovecs.capacity())
            .finish()
    }
}

impl SendScratch {
    fn new() -> Self {
        SendScratch {
            iovecs: Vec::new(),
            // SAFETY: msghdr is a plain C struct for which all-zero bytes are valid.
            msg: Box::new(unsafe { std::mem::zeroed() }),
        }
    }
}

/// Buffers of one vectored send; every pointer in `msg` points into this struct's heap.
struct SendState {
    bufs: Vec<Bytes>,
    scratch: SendScratch,
    _socket: Rc<net::TcpStream>,
}

/// A send's length field: one send moves at most `u32::MAX` bytes (the rest follows as a
/// short write).
fn one_len(iov: &libc::iovec) -> u32 {
    u32::try_from(iov.iov_len).unwrap_or(u32::MAX)
}

impl TcpStream {
    /// Connect to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let raw = RawAddr::new(addr);
        let socket = Rc::new(net::TcpStream::from(new_socket(raw.family())?));
        let (ptr, len) = raw.as_ptr();
        let entry = opcode::Connect::new(types::Fd(socket.as_raw_fd()), ptr, len).build();
        // SAFETY: the entry points at the boxed address, owned by the op with the socket.
        let op = unsafe { Op::submit(entry, (raw, Rc::clone(&socket))) }.map_err(|(e, _)| e)?;
        let (result, _) = op.await;
        cqe_result(result)?;
        Ok(TcpStream {
            socket,
            send_scratch: RefCell::new(None),
        })
    }

    /// Read into the spare capacity after `buf.len()`, extend `buf.len()` by the bytes read
    /// and return their count; 0 means end of stream. A buffer without spare capacity is
    /// an `InvalidInput` error. The buffer comes back in every case.
    pub async fn read<B: RecvBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        recv_into(&self.socket, buf, usize::MAX).await
    }

    /// As [`TcpStream::read`], reading at most `max_bytes` (at least 1) in this call: a
    /// long transfer read in bounded slices keeps each ring turn's copying short, so the
    /// other connections of the thread get their turns between the slices.
    pub async fn read_at_most<B: RecvBuf>(
        &self,
        buf: B,
        max_bytes: usize,
    ) -> (io::Result<usize>, B) {
        recv_into(&self.socket, buf, max_bytes.max(1)).await
    }

    /// Wait until bytes are waiting to be read (true), or the stream is at its end (false),
    /// without taking any (a one-byte receive with `MSG_PEEK`): how a reader that must not
    /// hold a shared slot while its peer is silent waits before it takes one.
    pub async fn readable(&self) -> io::Result<bool> {
        let buf = Vec::<u8>::with_capacity(1);
        let (res, _) = recv_flags(&self.socket, buf, 1, libc::MSG_PEEK).await;
        res.map(|n| n > 0)
    }

    /// Send every byte of `bufs` in order, with vectored sends, looping on short writes.
    pub async fn write_all(&self, bufs: Vec<Bytes>) -> io::Result<()> {
        let scratch = self.send_scratch.borrow_mut().take();
        let mut state = SendState {
            bufs,
            scratch: scratch.unwrap_or_else(SendScratch::new),
            _socket: Rc::clone(&self.socket),
        };
        let (mut index, mut offset) = (0usize, 0usize);
        let result = loop {
            let iovecs = &mut state.scratch.iovecs;
            iovecs.clear();
            for (i, b) in state.bufs.iter().enumerate().skip(index) {
                let skip = if i == index { offset } else { 0 };
                let rest = b.get(skip..).unwrap_or_default();
                if !rest.is_empty() {
                    iovecs.push(libc::iovec {
                        iov_base: rest.as_ptr() as *mut libc::c_void,
                        iov_len: rest.len(),
                    });
                }
                if iovecs.len() == IOVECS_PER_SEND_MAX {
                    break;
                }
            }
            if iovecs.is_empty() {
                break Ok(());
            }
            let fd = types::Fd(self.socket.as_raw_fd());
            let entry = match iovecs.as_slice() {
                // One buffer (the usual batch: replies written in place): a plain send,
                // which spares the kernel copying a msghdr and an iovec array in.
                [one] => opcode::Send::new(fd, one.iov_base.cast_const().cast(), one_len(one))
                    .flags(libc::MSG_NOSIGNAL)
                    .build(),
                _ => {
                    state.scratch.msg.msg_iov = iovecs.as_mut_ptr();
                    state.scratch.msg.msg_iovlen = iovecs.len() as _;
                    let msg_ptr: *const libc::msghdr = &*state.scratch.msg;
                    opcode::SendMsg::new(fd, msg_ptr)
                        .flags(libc::MSG_NOSIGNAL as u32)
                        .build()
                }
            };
            // SAFETY: the msghdr, its iovec array and the bytes they describe (or the one
            // buffer of a plain send) are all heap memory owned by `state`, which the op
            // owns until its CQE.
            let op = match unsafe { Op::submit(entry, state) } {
                Ok(op) => op,
                Err((e, back)) => {
                    state = back;
                    break Err(e);
                }
            };
            let (result, back) = op.await;
            state = back;
            let mut sent = match cqe_result(result) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => break Err(e),
            };
            while sent > 0 {
                let Some(b) = state.bufs.get(index) else {
                    break;
                };
                let left = b.len() - offset;
                if sent >= left {
                    sent -= left;
                    index += 1;
                    offset = 0;
                } else {
                    offset += sent;
                    sent = 0;
                }
            }
        };
        // Keep the iovec array and msghdr for the next send; the bytes go now.
        let mut scratch = state.scratch;
        scratch.iovecs.clear();
        *self.send_scratch.borrow_mut() = Some(scratch);
        result
    }

    /// Enable or disable `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.socket.set_nodelay(on)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Shut down both directions; pending reads then see end of stream.
    pub fn shutdown(&self) -> io::Result<()> {
        self.socket.shutdown(net::Shutdown::Both)
    }
}

/// A growable byte buffer a receive fills after its current length: `Vec<u8>`, or
/// `BytesMut` when the caller hands out frames of it without copying.
pub trait RecvBuf: 'static {
    fn filled_len(&self) -> usize;
    fn capacity_bytes(&self) -> usize;
    fn base_ptr(&mut self) -> *mut u8;
    /// Set the length to `len`.
    ///
    /// # Safety
    /// `len <= capacity_bytes()` and every byte below `len` is initialised.
    unsafe fn set_filled_len(&mut self, len: usize);
}

/// `RecvBuf` for growable buffers with the `Vec`-like methods of the same names.
macro_rules! recv_buf {
    ($t:ty) => {
        impl RecvBuf for $t {
            fn filled_len(&self) -> usize {
                self.len()
            }
            fn capacity_bytes(&self) -> usize {
                self.capacity()
            }
            fn base_ptr(&mut self) -> *mut u8 {
                self.as_mut_ptr()
            }
            unsafe fn set_filled_len(&mut self, len: usize) {
                // SAFETY: the caller's contract is `set_len`'s.
                unsafe { self.set_len(len) }
            }
        }
    };
}

recv_buf!(Vec<u8>);
recv_buf!(bytes::BytesMut);

/// One `Recv` of at most `max_bytes` into the spare capacity of `buf` on any stream socket
/// (TCP or unix), keeping
/// the socket alive until the kernel is done with it. See [`TcpStream::read`]. The heap
/// memory of either buffer type stays put while the buffer value moves into the op.
pub(super) async fn recv_into<S: AsRawFd + 'static, B: RecvBuf>(
    socket: &Rc<S>,
    buf: B,
    max_bytes: usize,
) -> (io::Result<usize>, B) {
    recv_flags(socket, buf, max_bytes, 0).await
}

/// [`recv_into`] with `recv(2)` flags.
async fn recv_flags<S: AsRawFd + 'static, B: RecvBuf>(
    socket: &Rc<S>,
    mut buf: B,
    max_bytes: usize,
    flags: i32,
) -> (io::Result<usize>, B) {
    let filled = buf.filled_len();
    let spare = u32::try_from((buf.capacity_bytes() - filled).min(max_bytes)).unwrap_or(u32::MAX);
    if spare == 0 {
        let err = io::Error::new(
            io::ErrorKind::InvalidInput,
            "read buffer has no spare capacity",
        );
        return (Err(err), buf);
    }
    // SAFETY: `filled <= capacity`, so the pointer stays inside the allocation.
    let ptr = unsafe { buf.base_ptr().add(filled) };
    let entry = opcode::Recv::new(types::Fd(socket.as_raw_fd()), ptr, spare)
        .flags(flags)
        .build();
    // SAFETY: the entry points into `buf`'s heap allocation, owned by the op.
    let op = match unsafe { Op::submit(entry, (buf, Rc::clone(socket))) } {
        Ok(op) => op,
        Err((e, (buf, _))) => return (Err(e), buf),
    };
    let (result, (mut buf, _)) = op.await;
    match cqe_result(result) {
        Ok(n) => {
            let n = (n as usize).min(buf.capacity_bytes() - filled);
            // SAFETY: the kernel initialised `n` bytes after `filled`, within capacity.
            unsafe { buf.set_filled_len(filled + n) };
            (Ok(n), buf)
        }
        Err(e) => (Err(e), buf),
    }
}
