//! A connection's outbox: the reply frames waiting for its socket (queued parts and frames
//! written in place), the counts that pause its reader (requests in flight, unwritten reply
//! bytes), and the writer task that sends them in batches (one vectored write per wake-up).

use super::reply::{Frames, InPlace};
use super::state::NodeShared;
use crate::runtime::TcpStream;
use bytes::{Bytes, BytesMut};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};

/// Requests one connection may have in flight before reading pauses.
const CONN_IN_FLIGHT_MAX: usize = 1024;
/// Reply bytes one connection may have waiting for its socket before reading pauses: a
/// client that sends requests and never reads the answers holds at most this much.
const CONN_UNWRITTEN_BYTES_MAX: usize = 64 << 20;

/// Frames waiting to be written to one connection.
#[derive(Debug, Default)]
pub struct Outbox {
    parts: RefCell<Vec<Bytes>>,
    /// Frames written in place ([`Outbox::serve_in_place`]) after the last of `parts`.
    in_place: RefCell<BytesMut>,
    writer: RefCell<Option<Waker>>,
    closed: Cell<bool>,
    in_flight: Cell<usize>,
    reader: RefCell<Option<Waker>>,
    /// Bytes pushed and not yet written to the socket (queued or in the current write).
    unwritten_bytes: Cell<usize>,
    /// Streaming requests waiting for `unwritten_bytes` to drop.
    room_waiters: RefCell<Vec<Waker>>,
    /// A reply too large to build whole is being sent piece by piece
    /// ([`Outbox::begin_stream`]): other frames wait in `held` until it ends.
    streaming: Cell<bool>,
    held: RefCell<Vec<Bytes>>,
    held_bytes: Cell<usize>,
    stream_waiters: RefCell<Vec<Waker>>,
    /// Tasks waiting for the requests in flight to drop ([`Outbox::wait_for_in_flight`]).
    in_flight_waiters: RefCell<Vec<Waker>>,
}

impl Outbox {
    /// Queue frames for the writer.
    pub fn push(&self, frames: Frames) {
        if frames.is_empty() || self.closed.get() {
            return;
        }
        let len: usize = frames.parts.iter().map(Bytes::len).sum();
        if self.streaming.get() {
            self.held.borrow_mut().extend(frames.parts);
            self.held_bytes
                .set(self.held_bytes.get().saturating_add(len));
            return;
        }
        self.queued(len);
        let mut parts = self.parts.borrow_mut();
        // Frames written in place so far go first: every frame leaves in the order made.
        if let Ok(mut in_place) = self.in_place.try_borrow_mut() {
            cut_in_place(&mut in_place, &mut parts);
        }
        parts.extend(frames.parts);
    }

    /// Let `serve` write its frames straight into this connection's reply buffer; they are
    /// queued when it returns true and forgotten when it returns false.
    pub fn serve_in_place(&self, serve: impl FnOnce(&mut InPlace<'_>) -> bool) -> bool {
        // Never nested (a request served in place queues nothing else); if it were, or a
        // streamed reply is under way, the request takes the ordinary path instead.
        if self.streaming.get() {
            return false;
        }
        let Ok(mut buf) = self.in_place.try_borrow_mut() else {
            return false;
        };
        let mark = buf.len();
        if !serve(&mut InPlace::new(&mut buf)) {
            buf.truncate(mark);
            return false;
        }
        if self.closed.get() {
            buf.truncate(mark);
            return true;
        }
        let len = buf.len() - mark;
        drop(buf);
        self.queued(len);
        true
    }

    fn queued(&self, len: usize) {
        self.unwritten_bytes
            .set(self.unwritten_bytes.get().saturating_add(len));
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves once fewer than `limit_bytes` wait to be written (or the connection is
    /// gone): how a streaming request keeps a slow reader from piling up its replies.
    pub async fn wait_for_write_room(&self, limit_bytes: usize) {
        std::future::poll_fn(|cx| {
            if self.unwritten_bytes.get() < limit_bytes || self.closed.get() {
                Poll::Ready(())
            } else {
                self.room_waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }

    fn written(&self, len: usize) {
        self.unwritten_bytes
            .set(self.unwritten_bytes.get().saturating_sub(len));
        for w in self.room_waiters.borrow_mut().drain(..) {
            w.wake();
        }
        if let Some(w) = self.reader.borrow_mut().take() {
            w.wake();
        }
    }

    /// Wait until no other streamed reply is under way, then start one: from now until
    /// [`Outbox::end_stream`] only [`Outbox::stream_part`] reaches the socket, so the
    /// reply's pieces stay one frame; frames of other requests wait and follow it.
    pub async fn begin_stream(&self) {
        std::future::poll_fn(|cx| {
            if !self.streaming.get() {
                Poll::Ready(())
            } else {
                self.stream_waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        let mut parts = self.parts.borrow_mut();
        if let Ok(mut in_place) = self.in_place.try_borrow_mut() {
            cut_in_place(&mut in_place, &mut parts);
        }
        self.streaming.set(true);
    }

    /// Queue the next bytes of the streamed reply.
    pub fn stream_part(&self, part: Bytes) {
        if self.closed.get() || part.is_empty() {
            return;
        }
        let len = part.len();
        self.parts.borrow_mut().push(part);
        self.queued(len);
    }

    /// The streamed reply is complete: the frames held meanwhile follow it.
    pub fn end_stream(&self) {
        if !self.streaming.replace(false) {
            return;
        }
        let held = std::mem::take(&mut *self.held.borrow_mut());
        let held_bytes = self.held_bytes.replace(0);
        if !self.closed.get() && !held.is_empty() {
            self.parts.borrow_mut().extend(held);
            self.queued(held_bytes);
        }
        for w in self.stream_waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// The streamed reply cannot be completed (its frame is already partly sent): close
    /// the connection, dropping what has not been written yet.
    pub fn abort_stream(&self) {
        self.closed.set(true);
        self.parts.borrow_mut().clear();
        self.held.borrow_mut().clear();
        self.held_bytes.set(0);
        self.end_stream();
        self.written(usize::MAX);
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    /// Frame parts queued and not yet written (streaming producers wait while it is high).
    pub fn queued_parts(&self) -> usize {
        let in_place = self
            .in_place
            .try_borrow()
            .map_or(0, |b| usize::from(!b.is_empty()));
        self.parts.borrow().len() + in_place
    }

    /// Every frame queued so far, taken out as (header, payload): what the writer would send.
    #[cfg(test)]
    pub(super) fn take_frames(&self) -> Vec<(crate::protocol::CmdHeader, Vec<u8>)> {
        use futures::FutureExt;
        let batch = self
            .next_batch()
            .now_or_never()
            .flatten()
            .unwrap_or_default();
        let bytes: Vec<u8> = batch.iter().flat_map(|b| b.iter().copied()).collect();
        let mut rest = bytes.as_slice();
        let mut out = Vec::new();
        while let Ok((frame, used)) = crate::protocol::split_frame(rest, u64::MAX) {
            out.push((frame.header, frame.payload.to_vec()));
            rest = rest.get(used..).unwrap_or_default();
        }
        out
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub(super) fn close(&self) {
        self.closed.set(true);
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    pub(super) fn request_started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
    }

    pub(super) fn request_finished(&self) {
        let left = self.in_flight.get().saturating_sub(1);
        self.in_flight.set(left);
        for w in self.in_flight_waiters.borrow_mut().drain(..) {
            w.wake();
        }
        if let Some(w) = self.reader.borrow_mut().take() {
            w.wake();
        }
        // A closed connection's writer waits for its last request before it lets the
        // socket go: nothing else would wake it (a closed outbox takes no more frames).
        if left == 0 && self.closed.get() {
            if let Some(w) = self.writer.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Resolves while the connection may take another request: fewer than
    /// [`CONN_IN_FLIGHT_MAX`] in flight and fewer than [`CONN_UNWRITTEN_BYTES_MAX`] reply
    /// bytes waiting (or it is closed).
    pub(super) async fn wait_for_room(&self) {
        std::future::poll_fn(|cx| {
            let waiting = self.unwritten_bytes.get() + self.held_bytes.get();
            let room =
                self.in_flight.get() < CONN_IN_FLIGHT_MAX && waiting < CONN_UNWRITTEN_BYTES_MAX;
            if room || self.closed.get() {
                Poll::Ready(())
            } else {
                *self.reader.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }

    /// Resolves once at most `count` requests are in flight on the connection (or it is
    /// closed): how a streamed reply lets the replies of requests already under way go
    /// before its frame.
    pub(super) async fn wait_for_in_flight(&self, count: usize) {
        std::future::poll_fn(|cx| {
            if self.in_flight.get() <= count || self.closed.get() {
                Poll::Ready(())
            } else {
                self.in_flight_waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }

    /// Next batch to write; `None` once closed and drained.
    async fn next_batch(&self) -> Option<Vec<Bytes>> {
        std::future::poll_fn(|cx| {
            let mut parts = self.parts.borrow_mut();
            if let Ok(mut in_place) = self.in_place.try_borrow_mut() {
                cut_in_place(&mut in_place, &mut parts);
            }
            if !parts.is_empty() {
                return Poll::Ready(Some(std::mem::take(&mut *parts)));
            }
            if self.closed.get() && self.in_flight.get() == 0 {
                return Poll::Ready(None);
            }
            *self.writer.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// Room a connection's reply buffer keeps past a batch; a larger rest (left by a batch of
/// big READs) is let go, so an idle connection does not hold megabytes.
const IN_PLACE_KEPT_BYTES_MAX: usize = 256 * 1024;

/// Move the frames written in place onto the end of `parts`, as one part.
fn cut_in_place(in_place: &mut BytesMut, parts: &mut Vec<Bytes>) {
    if !in_place.is_empty() {
        parts.push(in_place.split().freeze());
        if in_place.capacity() > IN_PLACE_KEPT_BYTES_MAX {
            *in_place = BytesMut::new();
        }
    }
}

/// Write `out`'s frames to `stream` until the outbox closes or a write fails; the bytes
/// written count towards shard `shard_index`'s counters.
pub(super) async fn write_loop(
    node: Arc<NodeShared>,
    shard_index: usize,
    stream: Rc<TcpStream>,
    out: Rc<Outbox>,
) {
    while let Some(batch) = out.next_batch().await {
        let len: usize = batch.iter().map(Bytes::len).sum();
        if let Err(e) = stream.write_all(batch).await {
            tracing::debug!(shard = shard_index, "write failed: {e}");
            out.closed.set(true);
            out.parts.borrow_mut().clear();
            if let Ok(mut in_place) = out.in_place.try_borrow_mut() {
                in_place.clear();
            }
            out.written(usize::MAX);
            let _ = stream.shutdown();
            return;
        }
        out.written(len);
        if let Some(counters) = node.counters.get(shard_index) {
            super::state::add_own(&counters.bytes_out, len as u64);
        }
    }
    let _ = stream.shutdown();
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
