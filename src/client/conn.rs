//! One connection to one node: a blocking `TcpStream`, a reader thread (`reader.rs`) that
//! cuts frames and completes pending transactions, writes under a per-connection `Mutex`,
//! and the map of pending transactions with their deadlines. A request's payload may be
//! streamed from a file after its head (one frame, never held in memory), and a
//! transaction may own a sink that receives its reply data in bounded pieces instead of a
//! buffer. Owns nothing about routing: the node decides where requests go and what to do
//! when a connection dies.

use super::error::ClientError;
use super::reader::reader_loop;
use super::result::{pending, AsyncResult, Completer};
use crate::key::RawId;
use crate::protocol::{cmd_flags, errno, CmdHeader, HEADER_SIZE_BYTES};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One reply frame of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub header: CmdHeader,
    pub payload: Vec<u8>,
}

/// All frames of a completed transaction, in arrival order (the last one is final).
pub type Replies = Vec<Reply>;

/// Receives the data of a transaction's reply frames (the bytes after the `dnet_io_attr`
/// of each successful frame), in order and in bounded pieces.
pub type ReplySink = Box<dyn FnMut(&[u8]) -> std::io::Result<()> + Send>;

/// How far away the deadline of a transaction whose request is still being streamed is:
/// the timeout starts once the last byte has been handed to the socket.
const STREAMING_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// A byte range of an open file sent as the tail of a request payload.
pub(crate) struct FileSpan<'a> {
    pub file: &'a File,
    pub offset_bytes: u64,
    pub len_bytes: u64,
}

struct Pending {
    replies: Replies,
    completer: Completer<Replies>,
    deadline: Instant,
    cmd: i32,
    group: u32,
    id: RawId,
    sink: Option<ReplySink>,
    /// A failure found while reading the replies (the sink failed, a reply was larger
    /// than the client buffers); the transaction completes with it.
    error: Option<ClientError>,
}

/// Called for every frame that is not a reply (UPDATE_IDS and other pushes).
pub type PushHandler = Arc<dyn Fn(&Arc<Conn>, &CmdHeader, &[u8]) + Send + Sync>;
/// Called once when the connection dies.
pub type CloseHandler = Arc<dyn Fn(&Arc<Conn>) + Send + Sync>;

/// A live connection.
pub struct Conn {
    /// The address this connection was dialled at (one of the node's advertised addresses).
    pub addr: SocketAddr,
    writer: Mutex<TcpStream>,
    pending: Mutex<HashMap<u64, Pending>>,
    alive: AtomicBool,
    /// Consecutive checks that found timed-out transactions.
    pub(crate) stall_checks: AtomicU32,
    /// Trans of the BACKEND_STATUS ping in flight, 0 when none.
    pub(crate) ping_trans: Mutex<u64>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conn {
    /// Wrap a handshaken stream and start its reader thread.
    pub(crate) fn start(
        addr: SocketAddr,
        stream: TcpStream,
        reply_buffered_bytes_max: u64,
        on_push: PushHandler,
        on_close: CloseHandler,
    ) -> Result<Arc<Conn>, ClientError> {
        let io_err = |e: std::io::Error| {
            ClientError::new(
                errno::ECONNRESET,
                format!("{addr}: {e}: {}", errno::ECONNRESET),
            )
        };
        stream.set_read_timeout(None).map_err(io_err)?;
        let _ = stream.set_nodelay(true);
        let read_half = stream.try_clone().map_err(io_err)?;
        let conn = Arc::new(Conn {
            addr,
            writer: Mutex::new(stream),
            pending: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            stall_checks: AtomicU32::new(0),
            ping_trans: Mutex::new(0),
        });
        let reader_conn = conn.clone();
        std::thread::Builder::new()
            .name(format!("ell-read-{addr}"))
            .spawn(move || {
                reader_loop(
                    reader_conn,
                    read_half,
                    reply_buffered_bytes_max,
                    on_push,
                    on_close,
                );
            })
            .map_err(io_err)?;
        Ok(conn)
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Send a request and register its transaction. The header's `trans` must be unique on
    /// this node. The result completes with all reply frames, with -110 at `timeout`, or
    /// with the reset error when the connection dies.
    pub(crate) fn send(
        self: &Arc<Conn>,
        header: CmdHeader,
        payload: &[u8],
        timeout: Duration,
    ) -> AsyncResult<Replies> {
        self.send_with(header, payload, None, None, timeout)
    }

    /// [`Conn::send`] with an optional file range streamed after `head` (`header.size`
    /// must count both) and an optional sink for the reply data. While the request is
    /// being written its transaction cannot time out; a peer that stops reading for
    /// `timeout` fails the write and resets the connection.
    pub(crate) fn send_with(
        self: &Arc<Conn>,
        header: CmdHeader,
        head: &[u8],
        tail: Option<&FileSpan<'_>>,
        sink: Option<ReplySink>,
        timeout: Duration,
    ) -> AsyncResult<Replies> {
        let (completer, result) = pending();
        if !self.is_alive() {
            completer.complete(Err(ClientError::command(
                errno::ECONNRESET,
                header.group_id,
                &header.id,
                header.cmd,
            )));
            return result;
        }
        let deadline = Instant::now() + tail.map_or(timeout, |_| STREAMING_DEADLINE);
        lock(&self.pending).insert(
            header.trans,
            Pending {
                replies: Vec::new(),
                completer,
                deadline,
                cmd: header.cmd,
                group: header.group_id,
                id: header.id,
                sink,
                error: None,
            },
        );
        let sent = match tail {
            None => self.write_frame(&header, head),
            Some(span) => self.write_streamed(&header, head, span, timeout),
        };
        if let Err(e) = sent {
            // The peer may have refused the frame (-E2BIG) before closing: stop sending
            // but keep reading, so its answer, or the close, completes the transaction.
            tracing::debug!(addr = %self.addr, error = %e, "write failed, closing connection");
            let _ = lock(&self.writer).shutdown(Shutdown::Write);
        }
        if tail.is_some() {
            if let Some(p) = lock(&self.pending).get_mut(&header.trans) {
                p.deadline = Instant::now() + timeout;
            }
        }
        result
    }

    /// Write the frame head, then `span` of its file straight from the file to the socket
    /// with `sendfile`, under the writer lock.
    fn write_streamed(
        &self,
        header: &CmdHeader,
        head: &[u8],
        span: &FileSpan<'_>,
        timeout: Duration,
    ) -> std::io::Result<()> {
        let mut w = lock(&self.writer);
        w.set_write_timeout(Some(timeout.max(Duration::from_secs(1))))?;
        let outcome = (|| {
            let mut buf = Vec::with_capacity(HEADER_SIZE_BYTES + head.len());
            header.encode_into(&mut buf);
            buf.extend_from_slice(head);
            w.write_all(&buf)?;
            send_file_span(&w, span)?;
            Ok(())
        })();
        let _ = w.set_write_timeout(None);
        outcome
    }

    /// Send a frame that expects no transaction (a reply or a push).
    pub(crate) fn write_frame(&self, header: &CmdHeader, payload: &[u8]) -> std::io::Result<()> {
        let mut w = lock(&self.writer);
        let mut buf = Vec::with_capacity(HEADER_SIZE_BYTES + payload.len().min(1 << 16));
        header.encode_into(&mut buf);
        if payload.len() <= 1 << 16 {
            buf.extend_from_slice(payload);
            w.write_all(&buf)
        } else {
            w.write_all(&buf)?;
            w.write_all(payload)
        }
    }

    /// Complete every transaction whose deadline has passed with -ETIMEDOUT. Returns the
    /// trans numbers that expired.
    pub(crate) fn expire(&self, now: Instant) -> Vec<u64> {
        let expired: Vec<(u64, Pending)> = {
            let mut map = lock(&self.pending);
            let keys: Vec<u64> = map
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(t, _)| *t)
                .collect();
            keys.into_iter()
                .filter_map(|t| map.remove(&t).map(|p| (t, p)))
                .collect()
        };
        let mut out = Vec::with_capacity(expired.len());
        for (trans, p) in expired {
            out.push(trans);
            p.completer.complete(Err(ClientError::command(
                errno::ETIMEDOUT,
                p.group,
                &p.id,
                p.cmd,
            )));
        }
        out
    }

    /// Close the socket; the reader thread then fails all pending transactions.
    pub(crate) fn shutdown(&self) {
        let w = lock(&self.writer);
        let _ = w.shutdown(Shutdown::Both);
    }

    pub(super) fn fail_all(&self, status: i32) {
        let drained: Vec<Pending> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        for p in drained {
            p.completer
                .complete(Err(ClientError::command(status, p.group, &p.id, p.cmd)));
        }
    }

    pub(super) fn on_reply(&self, reply: Reply) {
        // Any answer proves the link alive: the stall count starts over.
        self.stall_checks.store(0, Ordering::Relaxed);
        let trans = reply.header.trans;
        let mut map = lock(&self.pending);
        let Some(entry) = map.get_mut(&trans) else {
            tracing::debug!(addr = %self.addr, trans, "reply for unknown transaction dropped");
            return;
        };
        let more = reply.header.flags & cmd_flags::MORE != 0;
        entry.replies.push(reply);
        if more {
            return;
        }
        if let Some(done) = map.remove(&trans) {
            drop(map);
            match done.error {
                Some(e) => done.completer.complete(Err(e)),
                None => done.completer.complete(Ok(done.replies)),
            }
        }
    }

    /// Take the reply sink of `trans`, if the transaction has one.
    pub(super) fn take_sink(&self, trans: u64) -> Option<ReplySink> {
        lock(&self.pending).get_mut(&trans)?.sink.take()
    }

    /// Give the sink back after a frame (more frames may follow).
    pub(super) fn return_sink(&self, trans: u64, sink: ReplySink) {
        if let Some(p) = lock(&self.pending).get_mut(&trans) {
            p.sink = Some(sink);
        }
    }

    /// Record a failure of `trans` found while reading its replies; the first one wins and
    /// the transaction completes with it when its last frame arrives.
    pub(super) fn fail_trans(&self, trans: u64, error: ClientError) {
        if let Some(p) = lock(&self.pending).get_mut(&trans) {
            p.error.get_or_insert(error);
        }
    }

    pub(super) fn mark_dead(&self) {
        self.alive.store(false, Ordering::Release);
    }
}

/// The most one `sendfile` call is asked to move.
const SENDFILE_CALL_BYTES_MAX: u64 = 16 << 20;

/// Send `span` of its file to `sock` with `sendfile` (the kernel moves the pages; nothing
/// passes through user memory). A file shorter than the span is an error.
fn send_file_span(sock: &TcpStream, span: &FileSpan<'_>) -> std::io::Result<()> {
    let mut offset = span.offset_bytes;
    let end = span.offset_bytes + span.len_bytes;
    while offset < end {
        let want = usize::try_from((end - offset).min(SENDFILE_CALL_BYTES_MAX)).unwrap_or(0);
        match rustix::fs::sendfile(sock, span.file, Some(&mut offset), want) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "the file ended after {} of {} bytes",
                        offset - span.offset_bytes,
                        span.len_bytes
                    ),
                ))
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the peer stopped reading",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
