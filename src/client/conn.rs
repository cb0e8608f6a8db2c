//! One connection to one node: a blocking `TcpStream`, a reader thread that cuts frames and
//! completes pending transactions, writes under a per-connection `Mutex`, and the map of
//! pending transactions with their deadlines. Owns nothing about routing: the node decides
//! where requests go and what to do when a connection dies.

use super::error::ClientError;
use super::result::{pending, AsyncResult, Completer};
use crate::key::RawId;
use crate::limits::FRAME_PAYLOAD_BYTES_MAX_DEFAULT;
use crate::protocol::{cmd_flags, errno, split_frame, CmdHeader, DecodeError, HEADER_SIZE_BYTES};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
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

struct Pending {
    replies: Replies,
    completer: Completer<Replies>,
    deadline: Instant,
    cmd: i32,
    group: u32,
    id: RawId,
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

/// Read one whole frame from `r`, checking the announced size before allocating.
pub(crate) fn read_frame(r: &mut impl Read) -> Result<Reply, ClientError> {
    let mut head = [0u8; HEADER_SIZE_BYTES];
    r.read_exact(&mut head)
        .map_err(|e| ClientError::new(errno::ECONNRESET, format!("read from peer: {e}: -104")))?;
    let payload_len = match split_frame(&head, FRAME_PAYLOAD_BYTES_MAX_DEFAULT) {
        Ok((_, _)) => 0,
        Err(DecodeError::Incomplete { needed }) => needed,
        Err(e) => return Err(ClientError::protocol(e)),
    };
    let header = CmdHeader::decode(&head).map_err(ClientError::protocol)?;
    let mut payload = vec![0u8; payload_len];
    r.read_exact(&mut payload)
        .map_err(|e| ClientError::new(errno::ECONNRESET, format!("read from peer: {e}: -104")))?;
    Ok(Reply { header, payload })
}

impl Conn {
    /// Wrap a handshaken stream and start its reader thread.
    pub(crate) fn start(
        addr: SocketAddr,
        stream: TcpStream,
        on_push: PushHandler,
        on_close: CloseHandler,
    ) -> Result<Arc<Conn>, ClientError> {
        let io_err =
            |e: std::io::Error| ClientError::new(errno::ECONNRESET, format!("{addr}: {e}: -104"));
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
            .spawn(move || reader_loop(reader_conn, read_half, on_push, on_close))
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
        lock(&self.pending).insert(
            header.trans,
            Pending {
                replies: Vec::new(),
                completer,
                deadline: Instant::now() + timeout,
                cmd: header.cmd,
                group: header.group_id,
                id: header.id,
            },
        );
        if let Err(e) = self.write_frame(&header, payload) {
            tracing::debug!(addr = %self.addr, error = %e, "write failed, resetting connection");
            self.shutdown();
        }
        result
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

    fn fail_all(&self, status: i32) {
        let drained: Vec<Pending> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        for p in drained {
            p.completer
                .complete(Err(ClientError::command(status, p.group, &p.id, p.cmd)));
        }
    }

    fn on_reply(&self, reply: Reply) {
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
            done.completer.complete(Ok(done.replies));
        }
    }
}

fn reader_loop(conn: Arc<Conn>, stream: TcpStream, on_push: PushHandler, on_close: CloseHandler) {
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    loop {
        match read_frame(&mut reader) {
            Ok(frame) if frame.header.is_reply() => conn.on_reply(frame),
            Ok(frame) => on_push(&conn, &frame.header, &frame.payload),
            Err(e) => {
                tracing::debug!(addr = %conn.addr, error = %e, "connection closed");
                break;
            }
        }
    }
    conn.alive.store(false, Ordering::Release);
    conn.shutdown();
    conn.fail_all(errno::ECONNRESET);
    on_close(&conn);
}
