//! The socket side of a streamed value, shared by the streamed WRITE that lands here
//! ([`super::stream_in`]) and the one relayed to the key's owner
//! ([`super::forward_stream`]): the connection a stream reads from, its pieces read a
//! slice at a time under the shard's slice gate ([`super::stream_gate`]), the rest of a
//! refused value read and dropped, and the error reply. Both streamers sit above this
//! module, so neither imports the other's internals.

use super::outbox::Outbox;
use super::reply::{Frames, Replies};
use super::shard::Shard;
use crate::blob::footer::FooterHasher;
use crate::limits::{STREAM_PIECE_BYTES, STREAM_SLICE_BYTES};
use crate::protocol::CmdHeader;
use crate::runtime::TcpStream;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// The connection a stream reads from.
pub(super) struct Conn<'a> {
    pub shard: &'a Rc<Shard>,
    pub out: &'a Rc<Outbox>,
    pub stream: &'a TcpStream,
    pub peer: SocketAddr,
    pub stall: Duration,
}

/// Answer `header` with `status` (a negative errno) on the connection.
pub(super) fn reply_error(out: &Outbox, header: &CmdHeader, status: i32) {
    let mut frames = Frames::new();
    frames.error(header, status);
    out.push(frames);
}

/// The next piece of at most `left` bytes: what `buf` holds first, else read from the
/// socket, [`STREAM_SLICE_BYTES`] at most per read, until the piece is full (never past
/// it: what follows the value is the next frame's), each slice given to `hasher` as it
/// arrives. `None` when the connection closed or stalled.
pub(super) async fn next_piece(
    c: &Conn<'_>,
    buf: &mut BytesMut,
    left: u64,
    mut hasher: Option<&mut FooterHasher>,
) -> Option<Bytes> {
    let want = usize::try_from(left.min(STREAM_PIECE_BYTES)).unwrap_or(usize::MAX);
    if !buf.is_empty() {
        let take = want.min(buf.len());
        let piece = buf.split_to(take).freeze();
        if let Some(h) = hasher {
            h.update(&piece);
        }
        return Some(piece);
    }
    let mut piece = BytesMut::with_capacity(want);
    while piece.len() < want {
        // A slice per read: the socket holds megabytes of a fast sender, and copying them
        // in one go would hold every other connection of this shard for that long.
        let slice = (want - piece.len()).min(STREAM_SLICE_BYTES);
        let read = crate::runtime::timeout(c.stall, async {
            // The shard's slot is taken only once bytes are there to copy: a silent client
            // holds none (an error or the end shows in the read that follows).
            let _ = c.stream.readable().await;
            let _permit = super::stream_gate::slice_permit().await;
            c.stream.read_at_most(piece, slice).await
        })
        .await;
        let (res, p) = match read {
            Ok(read) => read,
            Err(_) => {
                tracing::warn!(
                    peer = %c.peer,
                    shard = c.shard.index,
                    "closing connection: a streamed value made no progress for {} s",
                    c.stall.as_secs()
                );
                return None;
            }
        };
        piece = p;
        match res {
            Ok(0) => return None,
            Ok(n) => {
                super::state::add_own(&c.shard.counters().bytes_in, n as u64);
                if let Some(h) = hasher.as_deref_mut() {
                    // This slice only, while its bytes are still in the CPU's cache.
                    h.update(piece.get(piece.len() - n..).unwrap_or_default());
                }
            }
            Err(e) => {
                tracing::debug!(peer = %c.peer, "read failed mid-value: {e}");
                return None;
            }
        }
    }
    Some(piece.freeze())
}

/// Read and drop the `left` bytes of a refused value; false when the connection is lost.
pub(super) async fn drain(c: &Conn<'_>, buf: &mut BytesMut, mut left: u64) -> bool {
    while left > 0 {
        let Some(piece) = next_piece(c, buf, left, None).await else {
            return false;
        };
        left -= piece.len() as u64;
    }
    true
}
