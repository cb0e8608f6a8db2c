//! Connections of one shard: the accept loop and the reader that splits frames and
//! dispatches them; replies leave through the connection's [`Outbox`]. A bad frame closes
//! only its own connection.

use super::dispatch;
use super::intake::FrameClaim;
pub(super) use super::outbox::{write_loop, Outbox};
use super::reply::{Frames, Replies};
use super::shard::Shard;
use crate::protocol::{split_frame, DecodeError, HEADER_SIZE_BYTES};
use crate::runtime::{TcpListener, TcpStream};
use bytes::{Buf, Bytes, BytesMut};
use futures::future::{select, Either};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Read buffer size for ordinary traffic; large frames grow it up to the frame limit.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Accept until shutdown begins.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    let mut failures = AcceptFailures::default();
    loop {
        let accepted = {
            let accept = std::pin::pin!(listener.accept());
            let stop = std::pin::pin!(shard.shutdown_signal());
            match select(accept, stop).await {
                Either::Left((res, _)) => res,
                Either::Right(_) => break,
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                failures.succeeded();
                shard.counters().connections.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let s = shard.clone();
                crate::runtime::spawn(async move {
                    s.counters().stats.connection_opened();
                    serve_connection(s.clone(), stream, peer).await;
                    s.counters().stats.connection_closed();
                });
            }
            Err(e) => {
                let pause = failures.failed(shard.index, &e);
                crate::runtime::sleep(pause).await;
            }
        }
    }
}

/// First pause after a failed accept; each further failure in a row doubles it.
const ACCEPT_PAUSE_FIRST_MS: u64 = 10;
/// Longest pause between accepts while they keep failing (out of descriptors).
const ACCEPT_PAUSE_MAX_MS: u64 = 1000;
/// At most one `accept failed` line per this many seconds; the rest are counted.
const ACCEPT_LOG_INTERVAL_S: u64 = 10;

/// Failed accepts in a row: how long to pause and when to say so in the log.
#[derive(Debug, Default)]
struct AcceptFailures {
    in_a_row: u32,
    unlogged: u64,
    logged_at: Option<std::time::Instant>,
}

impl AcceptFailures {
    fn succeeded(&mut self) {
        self.in_a_row = 0;
    }

    /// Note a failure (logging it unless one was logged lately) and return the pause
    /// before the next accept: a listener out of descriptors fails at once, so accepting
    /// again without a pause would only spin.
    fn failed(&mut self, shard: usize, e: &std::io::Error) -> std::time::Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.unlogged += 1;
        let due = self
            .logged_at
            .is_none_or(|at| at.elapsed().as_secs() >= ACCEPT_LOG_INTERVAL_S);
        if due {
            if self.unlogged > 1 {
                tracing::warn!(
                    shard,
                    "accept failed: {e} ({} failures in the last {ACCEPT_LOG_INTERVAL_S} s)",
                    self.unlogged
                );
            } else {
                tracing::warn!(shard, "accept failed: {e}");
            }
            self.unlogged = 0;
            self.logged_at = Some(std::time::Instant::now());
        }
        let doublings = self.in_a_row.saturating_sub(1).min(16);
        let pause_ms = (ACCEPT_PAUSE_FIRST_MS << doublings).min(ACCEPT_PAUSE_MAX_MS);
        std::time::Duration::from_millis(pause_ms)
    }
}

/// One connection's receive side: its buffer, the frame it holds part of, and its share
/// of the node's budget for incomplete frames.
struct Reader {
    shard: Rc<Shard>,
    out: Rc<Outbox>,
    stream: Rc<TcpStream>,
    peer: SocketAddr,
    limit: u64,
    stall: Duration,
    // A READ or WRITE that finishes at once is served from the receive buffer in place;
    // other frames are cut out of it without a copy, each payload a `Bytes` sharing it.
    // Once every payload of a chunk is gone the space is reused.
    buf: BytesMut,
    want: usize,
    // Bytes the frame begun in `buf` still lacks (0 when `buf` is empty).
    frame_missing: usize,
    claim: FrameClaim,
}

/// Serve one client or peer connection until it closes or misbehaves.
async fn serve_connection(shard: Rc<Shard>, stream: TcpStream, peer: SocketAddr) {
    let stream = Rc::new(stream);
    let out = Rc::new(Outbox::default());
    crate::runtime::spawn(write_loop(
        shard.node.clone(),
        shard.index,
        stream.clone(),
        out.clone(),
    ));
    let options = &shard.node.config.options;
    let mut r = Reader {
        limit: options.frame_payload_bytes_max,
        stall: Duration::from_secs(options.frame_stall_timeout_s),
        claim: FrameClaim::new(shard.node.frame_budget.clone()),
        shard: shard.clone(),
        out: out.clone(),
        stream,
        peer,
        buf: BytesMut::with_capacity(READ_CHUNK_BYTES),
        want: READ_CHUNK_BYTES,
        frame_missing: 0,
    };
    let joined = super::peers::ConnPeer::default();
    let mut hinted = Vec::new();
    while r.fill().await {
        super::prefetch::hint_batch(&shard, &r.buf, r.limit, &mut hinted);
        if !r.serve_frames(&joined).await {
            break;
        }
    }
    super::peers::connection_closed(&shard, &joined);
    out.close();
}

impl Reader {
    /// Read more bytes into the buffer (claiming room for a large frame first); false
    /// when the connection is over.
    async fn fill(&mut self) -> bool {
        let (shard, peer, stall) = (&self.shard, self.peer, self.stall);
        // A frame larger than the ordinary buffer is held only with the node's leave.
        let frame_bytes = if self.buf.is_empty() {
            0
        } else {
            self.buf.len() + self.frame_missing
        };
        let claimed = if frame_bytes > READ_CHUNK_BYTES {
            frame_bytes
        } else {
            0
        };
        if !self.claim.set(claimed, stall).await {
            tracing::warn!(
                %peer,
                shard = shard.index,
                "closing connection: its frame of {frame_bytes} bytes found no room among \
                 the node's incomplete frames within {} s",
                stall.as_secs()
            );
            return false;
        }
        if self.buf.capacity() - self.buf.len() < self.want {
            self.buf.reserve(self.want);
        }
        let buf = std::mem::take(&mut self.buf);
        // Between frames a connection may idle for as long as it likes; a frame begun must
        // make progress.
        let (res, b) = if buf.is_empty() {
            self.stream.read(buf).await
        } else {
            match crate::runtime::timeout(stall, self.stream.read(buf)).await {
                Ok(read) => read,
                Err(_) => {
                    tracing::warn!(
                        %peer,
                        shard = shard.index,
                        "closing connection: a frame half sent made no progress for {} s",
                        stall.as_secs()
                    );
                    return false;
                }
            }
        };
        self.buf = b;
        self.want = READ_CHUNK_BYTES;
        match res {
            Ok(0) => false,
            Ok(n) => {
                super::state::add_own(&shard.counters().bytes_in, n as u64);
                true
            }
            Err(e) => {
                tracing::debug!(%peer, "read failed: {e}");
                false
            }
        }
    }

    /// Serve every whole frame in the buffer (and a streamed WRITE begun in it); false
    /// when the connection must close.
    async fn serve_frames(&mut self, joined: &super::peers::ConnPeer) -> bool {
        let (shard, out) = (self.shard.clone(), self.out.clone());
        loop {
            let value_limit = shard.node.config.options.value_bytes_max;
            match super::stream_in::detect(&self.buf, value_limit) {
                super::stream_in::Detect::Buffered => {}
                super::stream_in::Detect::TooLarge(value_bytes) => {
                    if let Ok(h) = crate::protocol::CmdHeader::decode(&self.buf) {
                        super::stream_in::log_too_large(self.peer, &h, value_bytes, value_limit);
                    }
                    reject_frame(&out, &self.buf);
                    return false;
                }
                super::stream_in::Detect::NeedMore(n) => {
                    self.frame_missing = n;
                    return true;
                }
                super::stream_in::Detect::Stream(incoming) => {
                    self.claim.set(0, self.stall).await;
                    out.wait_for_room().await;
                    let conn = super::stream_socket::Conn {
                        shard: &shard,
                        out: &out,
                        stream: &self.stream,
                        peer: self.peer,
                        stall: self.stall,
                    };
                    if !super::stream_in::receive(&conn, *incoming, &mut self.buf).await {
                        return false;
                    }
                    self.frame_missing = 0;
                    continue;
                }
            }
            let (header, frame_bytes) = match split_frame(&self.buf, self.limit) {
                Ok((frame, n)) => (frame.header, n),
                Err(DecodeError::Incomplete { needed }) => {
                    self.want = self.want.max(needed);
                    self.frame_missing = needed;
                    return true;
                }
                Err(e) => {
                    tracing::warn!(peer = %self.peer, shard = shard.index, "closing connection: {e}");
                    reject_frame(&out, &self.buf);
                    return false;
                }
            };
            out.wait_for_room().await;
            let body = self
                .buf
                .get(HEADER_SIZE_BYTES..frame_bytes)
                .unwrap_or_default();
            if dispatch::serve_now(&shard, &out, &header, body) {
                self.buf.advance(frame_bytes);
                continue;
            }
            let mut frame = self.buf.split_to(frame_bytes);
            let payload = frame.split_off(HEADER_SIZE_BYTES.min(frame.len())).freeze();
            if !dispatch_frame(&shard, &out, joined, header, payload) {
                return false;
            }
        }
    }
}

/// Answer a frame we refuse to read (too large): an error ack naming -E2BIG when the header
/// is intact, then the connection closes.
fn reject_frame(out: &Outbox, bytes: &[u8]) {
    if let Ok(header) =
        crate::protocol::CmdHeader::decode(bytes.get(..HEADER_SIZE_BYTES).unwrap_or(&[]))
    {
        let mut frames = Frames::new();
        frames.error(&header, crate::protocol::errno::E2BIG);
        out.push(frames);
    }
}

/// Hand one frame to its handler. Returns false when the connection must close.
fn dispatch_frame(
    shard: &Rc<Shard>,
    out: &Rc<Outbox>,
    joined: &super::peers::ConnPeer,
    header: crate::protocol::CmdHeader,
    payload: Bytes,
) -> bool {
    shard.counters().count_command(header.cmd);
    if header.is_reply() {
        // Replies to requests this node sent (forwarding, joins) are not used yet.
        return true;
    }
    if let Some((frames, keep_open)) =
        super::peers::intercept(shard, out, joined, &header, &payload)
    {
        out.push(frames);
        return keep_open;
    }
    if super::iterator::intercept(shard, out, &header, &payload)
        || super::server_send::intercept(shard, out, &header, &payload)
    {
        return true;
    }
    match super::forward::target(shard, &header) {
        super::forward::Target::Local => {}
        super::forward::Target::Peer(peer) => {
            super::forward::forward(shard, out, header, &payload, peer);
            return true;
        }
        super::forward::Target::Refuse(status) => {
            let mut frames = Frames::new();
            frames.error(&header, status);
            out.push(frames);
            return true;
        }
    }
    if header.cmd == crate::protocol::command::READ {
        // A READ of a large value streams its reply; any other is answered whole.
        super::stream_out::start(shard, out, header, payload);
        return true;
    }
    match dispatch::immediate(shard, &header, &payload) {
        dispatch::Immediate::Done(frames, keep_open) => {
            out.push(frames);
            keep_open
        }
        dispatch::Immediate::Async => {
            dispatch::start(shard, out, header, payload);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_accepts_pause_longer_and_longer_up_to_a_second() {
        let mut failures = AcceptFailures::default();
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<u64> = (0..10)
            .map(|_| failures.failed(0, &e).as_millis() as u64)
            .collect();
        assert_eq!(pauses[0], ACCEPT_PAUSE_FIRST_MS);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(pauses[9], ACCEPT_PAUSE_MAX_MS);
        assert_eq!(failures.unlogged, 9, "one line for ten failures in a row");
        failures.succeeded();
        assert_eq!(
            failures.failed(0, &e).as_millis() as u64,
            ACCEPT_PAUSE_FIRST_MS
        );
    }
}
