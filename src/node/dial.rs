//! Dialling another node: TCP connect plus the client side of the REVERSE_LOOKUP handshake
//! (version check), and the frame reader the node's outgoing links (forward and join) read
//! with.

use crate::protocol::{
    check_reverse_lookup_reply, reverse_lookup_request, split_frame, CmdHeader, DecodeError, Errno,
};
use crate::runtime::TcpStream;
use bytes::Bytes;
use std::net::SocketAddr;
use std::rc::Rc;

/// Read buffer of a peer link.
const LINK_READ_CHUNK_BYTES: usize = 64 * 1024;

/// Connect to `addr` and run the client side of the REVERSE_LOOKUP handshake; returns the
/// stream, a reader holding any bytes after the reply, and the reply payload. A failed
/// connect or write keeps its cause (ECONNREFUSED, EHOSTUNREACH, ...); a link that closes
/// before replying is ECONNRESET.
pub async fn dial_with_reply(
    addr: SocketAddr,
    indexes_shard_count: i32,
    limit: u64,
) -> Result<(Rc<TcpStream>, FrameReader, Bytes), Errno> {
    let io_errno = |e: std::io::Error| Errno::from_io(&e, Errno::ECONNRESET);
    let stream = TcpStream::connect(addr).await.map_err(io_errno)?;
    let _ = stream.set_nodelay(true);
    let stream = Rc::new(stream);
    let header = reverse_lookup_request(indexes_shard_count);
    stream
        .write_all(vec![Bytes::copy_from_slice(&header.encode())])
        .await
        .map_err(io_errno)?;
    let mut reader = FrameReader::default();
    let (reply, payload) = reader
        .next(&stream, limit)
        .await
        .map_err(|_| Errno::EPROTO)?
        .ok_or(Errno::ECONNRESET)?;
    check_reverse_lookup_reply(&reply, indexes_shard_count)
        .map_err(|e| Errno::from_status(e.status()))?;
    Ok((stream, reader, payload))
}

pub(super) async fn dial(
    addr: SocketAddr,
    indexes_shard_count: i32,
    limit: u64,
) -> Result<(Rc<TcpStream>, FrameReader), Errno> {
    let (stream, reader, _) = dial_with_reply(addr, indexes_shard_count, limit).await?;
    Ok((stream, reader))
}

/// Splits a byte stream from a peer into frames. Frames are cut from `buf[start..]`; the
/// consumed front is dropped only when more bytes must be read, so a read full of small
/// frames costs one move, not one per frame.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    /// The next whole frame; `None` at a clean end of stream.
    pub async fn next(
        &mut self,
        stream: &TcpStream,
        limit: u64,
    ) -> Result<Option<(CmdHeader, Bytes)>, DecodeError> {
        loop {
            let rest = self.buf.get(self.start..).unwrap_or(&[]);
            let want = match split_frame(rest, limit) {
                Ok((frame, used)) => {
                    let header = frame.header;
                    let payload = Bytes::copy_from_slice(frame.payload);
                    self.start += used;
                    return Ok(Some((header, payload)));
                }
                Err(DecodeError::Incomplete { needed }) => needed.max(LINK_READ_CHUNK_BYTES),
                Err(e) => return Err(e),
            };
            self.buf.drain(..self.start);
            self.start = 0;
            if self.buf.capacity() - self.buf.len() < want {
                self.buf.reserve(want);
            }
            let (res, b) = stream.read(std::mem::take(&mut self.buf)).await;
            self.buf = b;
            match res {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
    }
}
