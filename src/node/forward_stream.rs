//! Streamed WRITEs for a key another node owns: the value is relayed to the owner as it
//! arrives, over a connection of its own, and the owner's replies are relayed back.
//!
//! A large WRITE cannot go through the shard's shared link to a peer ([`super::forward`]):
//! that link takes whole frames, and one frame of gigabytes would hold every other
//! request on it for as long as the value takes. So each such WRITE dials the owner
//! (the usual REVERSE_LOOKUP handshake), sends the frame's header and io_attr, then the
//! value a piece at a time, reading the next piece from the client while the last one is
//! written ([`RELAY_PIECES`] held at once, drawn on the node's budget for pieces), and
//! waits up to `wait_timeout` for the owner's replies, which go back under the client's
//! trans. The owner streams the value into its blob as it comes ([`super::stream_in`]).
//!
//! A client that stops mid-value closes its connection here, and the owner's connection
//! with it: the owner sees a value cut off and keeps nothing of it. An owner that cannot be
//! reached, or that goes away mid-value, is answered to the client with its error
//! (-ECONNREFUSED, -ECONNRESET, ...) and the rest of the value is read and dropped, so the
//! client's connection stays usable.

use super::dial::{dial, FrameReader};
use super::stream_socket::{drain, next_piece, reply_error, Conn};
use crate::limits::STREAM_PIECE_BYTES;
use crate::protocol::{cmd_flags, errno, CmdHeader};
use crate::runtime::TcpStream;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// Pieces a relayed value holds at once: the one being written to the owner and the one
/// being read from the client.
const RELAY_PIECES: usize = 2;

/// Relay the streamed WRITE whose frame head (`head`: header and io_attr) has been read and
/// whose `value_bytes` follow in `buf` and the socket, to `peer`. False when the client's
/// connection must close.
pub(super) async fn relay(
    c: &Conn<'_>,
    header: &CmdHeader,
    head: Bytes,
    value_bytes: u64,
    buf: &mut BytesMut,
    peer: SocketAddr,
) -> bool {
    let options = &c.shard.node.config.options;
    let wait = Duration::from_secs(options.wait_timeout_s.max(1));
    let limit = options.frame_payload_bytes_max;
    let dialled = crate::runtime::timeout(wait, dial(peer, options.indexes_shard_count, limit));
    let (link, mut reader) = match dialled.await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return refuse(c, header, i32::from(e), buf, value_bytes).await,
        Err(_) => return refuse(c, header, errno::ETIMEDOUT, buf, value_bytes).await,
    };
    if link.write_all(vec![head]).await.is_err() {
        return refuse(c, header, errno::ECONNRESET, buf, value_bytes).await;
    }
    match pump(c, &link, buf, value_bytes).await {
        Relayed::All => {}
        Relayed::LinkLost(left) => {
            // The owner may have said why before it went away.
            let status = relay_replies(c, header, &link, &mut reader, wait, limit).await;
            if status != 0 {
                reply_error(c.out, header, status);
            }
            return drain(c, buf, left).await;
        }
        Relayed::ClientLost => return false,
    }
    let status = relay_replies(c, header, &link, &mut reader, wait, limit).await;
    if status != 0 {
        reply_error(c.out, header, status);
    }
    let _ = link.shutdown();
    true
}

/// Answer the client `status` and read and drop its value; false when it is lost.
async fn refuse(
    c: &Conn<'_>,
    header: &CmdHeader,
    status: i32,
    buf: &mut BytesMut,
    left: u64,
) -> bool {
    tracing::warn!(
        peer = %c.peer,
        id = %header.id.short_hex(),
        status,
        "a streamed WRITE could not be relayed to the key's owner"
    );
    reply_error(c.out, header, status);
    drain(c, buf, left).await
}

/// How the value's bytes went.
enum Relayed {
    /// Every byte went to the owner.
    All,
    /// The owner's connection failed; this many bytes of the value are still unread.
    LinkLost(u64),
    /// The client's connection closed or stalled.
    ClientLost,
}

/// Move `value_bytes` from `buf` and the client's socket to `link`, writing one piece
/// while the next is read.
async fn pump(c: &Conn<'_>, link: &TcpStream, buf: &mut BytesMut, value_bytes: u64) -> Relayed {
    let piece_bytes = usize::try_from(STREAM_PIECE_BYTES).unwrap_or(usize::MAX);
    let mut claim = super::intake::FrameClaim::new(c.shard.node.stream_budget.clone());
    if !claim.set(RELAY_PIECES * piece_bytes, c.stall).await {
        tracing::warn!(
            peer = %c.peer,
            "closing connection: its relayed value found no room among the node's pieces \
             for {} s",
            c.stall.as_secs()
        );
        return Relayed::ClientLost;
    }
    let mut left = value_bytes;
    let mut last: Option<Bytes> = None;
    loop {
        let unread = left;
        let read = async {
            if unread == 0 {
                return Some(None);
            }
            next_piece(c, buf, unread, None).await.map(Some)
        };
        let write = async {
            match last.take() {
                Some(piece) => link.write_all(vec![piece]).await.is_ok(),
                None => true,
            }
        };
        let (read, written) = futures::join!(read, write);
        if !written {
            // The piece just read was not sent either.
            let held = match &read {
                Some(Some(piece)) => piece.len() as u64,
                _ => 0,
            };
            return match read {
                None => Relayed::ClientLost,
                Some(_) => Relayed::LinkLost(left - held),
            };
        }
        match read {
            None => return Relayed::ClientLost,
            Some(None) => return Relayed::All,
            Some(Some(piece)) => {
                left -= piece.len() as u64;
                last = Some(piece);
            }
        }
    }
}

/// Relay the owner's replies to the client under its trans until the final one; 0 once
/// it is relayed, else the status to answer (the owner went away or stayed silent).
async fn relay_replies(
    c: &Conn<'_>,
    header: &CmdHeader,
    link: &Rc<TcpStream>,
    reader: &mut FrameReader,
    wait: Duration,
    limit: u64,
) -> i32 {
    loop {
        let next = crate::runtime::timeout(wait, reader.next(link, limit)).await;
        let (mut reply, payload) = match next {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None) | Err(_)) => return errno::ECONNRESET,
            Err(_) => return errno::ETIMEDOUT,
        };
        if !reply.is_reply() {
            continue;
        }
        let last = reply.flags & cmd_flags::MORE == 0;
        reply.trans = header.trans;
        let mut frame = reply.encode().to_vec();
        frame.extend_from_slice(&payload);
        let mut frames = super::reply::Frames::new();
        frames.push_raw(frame.into());
        c.out.push(frames);
        if last {
            return 0;
        }
    }
}
