//! Reply and acknowledgement frames under the 2.26 rules (`dnet_send_reply`,
//! `dnet_send_ack`). They build frames into a sink ([`Replies`]); they send nothing.
//!
//! - a data reply copies the request header, sets `size`, sets REPLY, clears NEED_ACK, and
//!   sets MORE when the request still wanted an ack or more replies follow;
//! - an ack is sent only while the request has NEED_ACK: `size` 0, `status` = the error,
//!   NEED_ACK and MORE cleared, REPLY set; it is the final frame of the transaction;
//! - any error forces NEED_ACK back on, so every failure reaches the client as an ack.
//!
//! Frames up to 4 KiB are cut out of one 64 KiB buffer per thread (`Bytes` sharing it), so
//! a reply costs no allocation of its own; a chunk is reused once every frame cut from it
//! is dropped, and a frame held long (a slow client's queue) keeps its chunk alive. The
//! READs and WRITEs a connection serves at once write straight into its own reply buffer
//! ([`InPlace`]) instead: the replies of a receive leave as one part.

use crate::protocol::{cmd_flags, CmdHeader, HEADER_SIZE_BYTES};
use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

/// Parts most transactions need (a reply head and its data); more spill to the heap.
pub const INLINE_PARTS: usize = 2;

/// Where reply frames are written: [`Frames`] (parts queued for the socket) or
/// [`InPlace`] (bytes appended to a connection's reply buffer). The 2.26 frame rules live
/// in the provided methods; a sink only stores encoded frames.
pub trait Replies {
    /// Append one frame of `len` bytes, written by `fill`.
    fn put_frame(&mut self, len: usize, fill: impl FnOnce(&mut BytesMut));

    /// Append the bytes of a frame's tail (owned: no copy where the sink can keep them).
    fn put_tail(&mut self, tail: Bytes);

    /// How much has been written so far, for [`Replies::truncate`].
    fn mark(&self) -> usize;

    /// Forget everything written after `mark`.
    fn truncate(&mut self, mark: usize);

    /// Append a data reply to `request`; `more` marks that further replies follow.
    fn reply(&mut self, request: &CmdHeader, payload: &[&[u8]], more: bool) {
        let header = reply_header(request, payload_len(payload), more);
        self.put_frame(HEADER_SIZE_BYTES + payload_len_usize(payload), |buf| {
            buf.put_slice(&header.encode());
            for part in payload {
                buf.put_slice(part);
            }
        });
    }

    /// Append a data reply whose large tail is an owned buffer (no copy of `tail` into
    /// [`Frames`]).
    fn reply_with_tail(&mut self, request: &CmdHeader, head: &[u8], tail: Bytes, more: bool) {
        let len = head.len() as u64 + tail.len() as u64;
        let header = reply_header(request, len, more);
        self.put_frame(HEADER_SIZE_BYTES + head.len(), |buf| {
            buf.put_slice(&header.encode());
            buf.put_slice(head);
        });
        if !tail.is_empty() {
            self.put_tail(tail);
        }
    }

    /// Append the final ack with `status`, if the request still asks for one.
    fn ack(&mut self, request: &CmdHeader, status: i32) {
        if let Some(header) = ack_header(request, status) {
            self.put_frame(HEADER_SIZE_BYTES, |buf| buf.put_slice(&header.encode()));
        }
    }

    /// Append an error: NEED_ACK is forced on, so the error always reaches the client.
    fn error(&mut self, request: &CmdHeader, status: i32) {
        let mut forced = *request;
        forced.flags |= cmd_flags::NEED_ACK;
        self.ack(&forced, status);
    }
}

/// Encoded frames ready for the socket, in order.
#[derive(Debug, Default)]
pub struct Frames {
    pub parts: SmallVec<[Bytes; INLINE_PARTS]>,
}

impl Frames {
    pub fn new() -> Self {
        Self {
            parts: SmallVec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Append a frame that was encoded elsewhere.
    pub fn push_raw(&mut self, frame: Bytes) {
        self.parts.push(frame);
    }
}

impl Replies for Frames {
    fn put_frame(&mut self, len: usize, fill: impl FnOnce(&mut BytesMut)) {
        self.parts.push(encode(len, fill));
    }

    fn put_tail(&mut self, tail: Bytes) {
        self.parts.push(tail);
    }

    fn mark(&self) -> usize {
        self.parts.len()
    }

    fn truncate(&mut self, mark: usize) {
        self.parts.truncate(mark);
    }
}

/// Room reserved at a time in a connection's reply buffer.
const IN_PLACE_CHUNK_BYTES: usize = 16 * 1024;

/// Frames appended to one connection's reply buffer: the replies of one receive go out as
/// one part of the next send, with no reference count of their own.
#[derive(Debug)]
pub struct InPlace<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> InPlace<'a> {
    pub fn new(buf: &'a mut BytesMut) -> Self {
        Self { buf }
    }
}

impl Replies for InPlace<'_> {
    fn put_frame(&mut self, len: usize, fill: impl FnOnce(&mut BytesMut)) {
        if self.buf.capacity() - self.buf.len() < len {
            self.buf.reserve(len.max(IN_PLACE_CHUNK_BYTES));
        }
        fill(self.buf);
    }

    fn put_tail(&mut self, tail: Bytes) {
        self.buf.extend_from_slice(&tail);
    }

    fn mark(&self) -> usize {
        self.buf.len()
    }

    fn truncate(&mut self, mark: usize) {
        self.buf.truncate(mark);
    }
}

/// Frames up to this size are cut out of the thread's shared reply buffer.
const SHARED_FRAME_BYTES_MAX: usize = 4096;
/// Size of each chunk of the thread's reply buffer.
const REPLY_CHUNK_BYTES: usize = 64 * 1024;

thread_local! {
    /// Small frames of this thread (reply heads, acks) are cut out of one buffer, so a
    /// reply costs no allocation of its own: a chunk serves hundreds of them and is reused
    /// once every frame cut from it has been sent and dropped.
    static REPLY_BUF: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// A frame of `len` bytes written by `fill`.
fn encode(len: usize, fill: impl FnOnce(&mut BytesMut)) -> Bytes {
    if len > SHARED_FRAME_BYTES_MAX {
        let mut buf = BytesMut::with_capacity(len);
        fill(&mut buf);
        return buf.freeze();
    }
    REPLY_BUF.with(|shared| {
        let mut buf = shared.borrow_mut();
        if buf.capacity() - buf.len() < len {
            buf.reserve(REPLY_CHUNK_BYTES);
        }
        fill(&mut buf);
        buf.split().freeze()
    })
}

fn payload_len(payload: &[&[u8]]) -> u64 {
    payload.iter().map(|p| p.len() as u64).sum()
}

fn payload_len_usize(payload: &[&[u8]]) -> usize {
    payload.iter().map(|p| p.len()).sum()
}

/// The status of a request whose payload does not decode: -EINVAL, with the decoder's
/// reason logged (the reply carries only the status).
pub fn bad_payload(what: &str, cause: impl std::fmt::Display) -> i32 {
    tracing::debug!("bad {what} in a request: {cause}");
    crate::protocol::errno::EINVAL
}

/// The header of a data reply to `request` carrying `size` payload bytes.
pub fn reply_header(request: &CmdHeader, size: u64, more: bool) -> CmdHeader {
    let mut h = *request;
    h.size = size;
    h.status = 0;
    let wanted_ack = h.flags & cmd_flags::NEED_ACK != 0;
    h.flags &= !(cmd_flags::NEED_ACK | cmd_flags::MORE);
    h.flags |= cmd_flags::REPLY;
    if wanted_ack || more {
        h.flags |= cmd_flags::MORE;
    }
    h
}

/// The header of the final ack, or `None` when the request did not ask for one.
pub fn ack_header(request: &CmdHeader, status: i32) -> Option<CmdHeader> {
    if request.flags & cmd_flags::NEED_ACK == 0 {
        return None;
    }
    let mut h = *request;
    h.size = 0;
    h.status = status;
    h.flags &= !(cmd_flags::NEED_ACK | cmd_flags::MORE);
    h.flags |= cmd_flags::REPLY;
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(flags: u64) -> CmdHeader {
        CmdHeader {
            cmd: 5,
            trans: 3,
            flags,
            group_id: 1,
            ..CmdHeader::default()
        }
    }

    #[test]
    fn data_reply_without_ack_is_final() {
        let h = reply_header(&request(0), 10, false);
        assert_eq!(h.flags, cmd_flags::REPLY);
        assert_eq!(h.trans, 3);
        assert_eq!(h.size, 10);
    }

    #[test]
    fn data_reply_to_an_acked_request_carries_more() {
        let h = reply_header(&request(cmd_flags::NEED_ACK | cmd_flags::NOLOCK), 1, false);
        assert_eq!(
            h.flags,
            cmd_flags::REPLY | cmd_flags::MORE | cmd_flags::NOLOCK
        );
    }

    #[test]
    fn ack_is_sent_only_when_asked_and_errors_force_it() {
        let mut f = Frames::new();
        f.ack(&request(0), 0);
        assert!(f.is_empty());
        f.error(&request(0), crate::protocol::errno::ENOENT);
        assert_eq!(f.parts.len(), 1);
        let h = CmdHeader::decode(&f.parts[0]).unwrap();
        assert_eq!(
            (h.status, h.size, h.flags),
            (crate::protocol::errno::ENOENT, 0, cmd_flags::REPLY)
        );
    }

    #[test]
    fn replies_cut_from_the_shared_buffer_keep_their_bytes_across_chunks_and_reuse() {
        let mut kept = Vec::new();
        for round in 0..3u32 {
            let mut dropped = Vec::new();
            for i in 0..1000u32 {
                let body = format!("reply {round} {i}").repeat(1 + (i as usize % 7));
                let mut f = Frames::new();
                f.reply(&request(0), &[body.as_bytes()], false);
                let part = f.parts[0].clone();
                if i % 2 == 0 {
                    kept.push((body, part));
                } else {
                    dropped.push(part);
                }
            }
            drop(dropped);
        }
        for (body, part) in &kept {
            assert_eq!(&part[HEADER_SIZE_BYTES..], body.as_bytes());
            let header = CmdHeader::decode(&part[..HEADER_SIZE_BYTES]).unwrap();
            assert_eq!(header.size, body.len() as u64);
        }
        let mut big = Frames::new();
        let body = vec![9u8; SHARED_FRAME_BYTES_MAX * 2];
        big.reply(&request(0), &[&body], false);
        assert_eq!(&big.parts[0][HEADER_SIZE_BYTES..], &body[..]);
    }
}
