//! Streamed READs on the connection's shard: a READ that could not be answered at once is
//! started on the owning shard ([`super::io_stream::read_start`]); when it asks for more
//! than [`crate::limits::STREAM_READ_THRESHOLD_BYTES`] the reply goes out as one frame
//! sent in pieces, each verified by the owning shard before it is queued, with at most
//! [`STREAM_WINDOW_BYTES`] waiting for the socket. While it is sent the connection's other
//! replies wait behind it ([`Outbox::begin_stream`]), so before its frame starts it lets
//! the other requests in flight on the connection be answered (for at most
//! [`OTHERS_FIRST_WAIT_MS`]).
//!
//! A chunk that fails its checksum before the first byte leaves is answered -EILSEQ like
//! any READ; one that fails later cannot be (the header announced every byte): the error
//! is logged with the key and the connection closes, so the client sees a short frame,
//! never wrong bytes.

use super::cross;
use super::io_stream::{self, ReadStart};
use super::outbox::Outbox;
use super::shard::Shard;
use crate::protocol::{command, errno, CmdHeader};
use crate::routing::shard_of;
use bytes::Bytes;
use std::rc::Rc;

/// Reply bytes a streamed READ keeps queued for the socket before it reads more.
const STREAM_WINDOW_BYTES: usize = 4 << 20;
/// Longest a streamed reply waits, before its frame starts, for the other requests in
/// flight on its connection (small READs pipelined behind it, mostly) to be answered: their
/// replies could not leave until its last byte once it has started.
const OTHERS_FIRST_WAIT_MS: u64 = 50;

/// Start a READ that [`super::dispatch::serve_now`] could not answer at once.
pub(super) fn start(shard: &Rc<Shard>, out: &Rc<Outbox>, header: CmdHeader, payload: Bytes) {
    out.request_started();
    shard.request_started();
    let (shard, out) = (shard.clone(), out.clone());
    let request = async move {
        let started = shard.counters().timed(command::READ);
        let owner = shard_of(&header.id, shard.node.shard_count);
        let begun = cross::call(&shard, owner, move |s| {
            // The owner's task logs under the request's ids too.
            crate::log::in_request(
                header.trace_id,
                header.trans,
                io_stream::read_start(s, header, payload),
            )
        })
        .await;
        match begun {
            Ok(ReadStart::Done(frames)) => out.push(frames),
            Ok(ReadStart::Stream {
                head,
                first,
                ticket,
            }) => send(&shard, &out, owner, header, head, first, ticket).await,
            Err(e) => out.push(e.answer(&header)),
        }
        if let Some(at) = started {
            shard.counters().stats.record_latency(command::READ, at);
        }
        out.request_finished();
        shard.request_finished();
    };
    let scoped = crate::log::in_request(header.trace_id, header.trans, request);
    crate::runtime::spawn(scoped);
}

/// Ends the outbox's streamed reply however the sending ends.
struct Streaming<'a>(&'a Outbox);

impl Drop for Streaming<'_> {
    fn drop(&mut self) {
        self.0.end_stream();
    }
}

/// Send the streamed reply: its head and first piece, then each further piece.
async fn send(
    shard: &Rc<Shard>,
    out: &Rc<Outbox>,
    owner: usize,
    header: CmdHeader,
    head: Bytes,
    first: Bytes,
    ticket: u64,
) {
    // This request is one of those in flight; the others' replies go first if they come
    // soon.
    let others_first = std::time::Duration::from_millis(OTHERS_FIRST_WAIT_MS);
    let _ = crate::runtime::timeout(others_first, out.wait_for_in_flight(1)).await;
    out.begin_stream().await;
    let streaming = Streaming(out);
    out.stream_part(head);
    out.stream_part(first);
    loop {
        out.wait_for_write_room(STREAM_WINDOW_BYTES).await;
        if out.is_closed() {
            break;
        }
        let piece = cross::call(shard, owner, move |s| {
            io_stream::read_piece(s, header, ticket)
        })
        .await
        .unwrap_or_else(|e| Err(e.errno()));
        match piece {
            Ok(Some(piece)) => out.stream_part(piece),
            Ok(None) => return,
            Err(status) => {
                let level_error = status == errno::EILSEQ || status == errno::EIO;
                if level_error {
                    tracing::error!(
                        id = %header.id.short_hex(),
                        status,
                        "closing connection: a streamed READ failed after its header was sent"
                    );
                } else {
                    tracing::warn!(
                        id = %header.id.short_hex(),
                        status,
                        "closing connection: a streamed READ failed after its header was sent"
                    );
                }
                drop(streaming);
                out.abort_stream();
                return;
            }
        }
    }
    // The client went away: the owning shard's stream is given up.
    let _ = cross::call(shard, owner, move |s| async move {
        io_stream::abort(&s, &header, ticket);
    })
    .await;
}
