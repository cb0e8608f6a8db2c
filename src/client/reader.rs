//! The reading side of a connection: cut frames off the socket and hand them to their
//! transactions. A reply whose transaction owns a sink is not buffered: its `dnet_io_attr`
//! is kept, and the data after it goes to the sink in pieces of at most
//! `SINK_PIECE_BYTES`, so a reply of any size costs the same memory. A reply without a sink
//! is buffered only up to the client's limit; a larger one is read past and its
//! transaction fails with -E2BIG, the connection stays usable.

use super::conn::{CloseHandler, Conn, PushHandler, Reply, ReplySink};
use super::error::ClientError;
use crate::limits::FRAME_PAYLOAD_BYTES_MAX_DEFAULT;
use crate::protocol::{errno, CmdHeader, HEADER_SIZE_BYTES, IO_ATTR_SIZE_BYTES};
use std::io::{BufReader, Read};
use std::net::TcpStream;
use std::sync::Arc;

/// The largest piece of reply data handed to a sink at once.
pub const SINK_PIECE_BYTES: usize = 2 << 20;

fn reset(e: &std::io::Error) -> ClientError {
    ClientError::new(
        errno::ECONNRESET,
        format!("read from peer: {e}: {}", errno::ECONNRESET),
    )
}

fn read_head(r: &mut impl Read) -> Result<CmdHeader, ClientError> {
    let mut head = [0u8; HEADER_SIZE_BYTES];
    r.read_exact(&mut head).map_err(|e| reset(&e))?;
    CmdHeader::decode(&head).map_err(ClientError::protocol)
}

fn read_payload(r: &mut impl Read, header: &CmdHeader) -> Result<Vec<u8>, ClientError> {
    let len = usize::try_from(header.size).map_err(|_| {
        ClientError::new(errno::E2BIG, format!("frame of {} bytes: -7", header.size))
    })?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).map_err(|e| reset(&e))?;
    Ok(payload)
}

/// Read one whole frame from `r`, checking the announced size (at most the node's default
/// frame limit) before allocating. Used where no transaction exists yet (the handshake).
pub(crate) fn read_frame(r: &mut impl Read) -> Result<Reply, ClientError> {
    let header = read_head(r)?;
    if header.size > FRAME_PAYLOAD_BYTES_MAX_DEFAULT {
        return Err(ClientError::protocol(
            crate::protocol::DecodeError::TooLarge {
                field: "dnet_cmd.size",
                len: header.size,
                max: FRAME_PAYLOAD_BYTES_MAX_DEFAULT,
            },
        ));
    }
    let payload = read_payload(r, &header)?;
    Ok(Reply { header, payload })
}

/// Read and pass on `len` bytes in pieces. A failing `sink` is remembered and the rest is
/// read past so the stream stays in step; only a socket error is returned as `Err`.
fn pump(
    r: &mut impl Read,
    mut len: u64,
    buf: &mut Vec<u8>,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<Option<std::io::Error>, ClientError> {
    if buf.is_empty() {
        buf.resize(SINK_PIECE_BYTES, 0);
    }
    let mut failed = None;
    while len > 0 {
        let want = usize::try_from(len).unwrap_or(usize::MAX).min(buf.len());
        let piece = buf.get_mut(..want).unwrap_or_default();
        r.read_exact(piece).map_err(|e| reset(&e))?;
        if failed.is_none() {
            if let Err(e) = sink(piece) {
                failed = Some(e);
            }
        }
        len -= want as u64;
    }
    Ok(failed)
}

/// A successful reply for a transaction with a sink: keep the io_attr, stream the rest.
fn stream_reply(
    conn: &Conn,
    r: &mut impl Read,
    header: CmdHeader,
    buf: &mut Vec<u8>,
    mut sink: ReplySink,
) -> Result<Reply, ClientError> {
    let head_len = header.size.min(IO_ATTR_SIZE_BYTES as u64);
    let head = read_payload(
        r,
        &CmdHeader {
            size: head_len,
            ..header
        },
    )?;
    let failed = pump(r, header.size - head_len, buf, &mut sink)?;
    if let Some(e) = failed {
        let status = e.raw_os_error().map_or(errno::EIO, |c| -c);
        conn.fail_trans(
            header.trans,
            ClientError::new(status, format!("writing the reply data: {e}: {status}")),
        );
    }
    conn.return_sink(header.trans, sink);
    Ok(Reply {
        header,
        payload: head,
    })
}

/// Read one frame and deliver it; `Err` ends the connection.
fn next_frame(
    conn: &Arc<Conn>,
    r: &mut impl Read,
    buffered_max: u64,
    buf: &mut Vec<u8>,
    on_push: &PushHandler,
) -> Result<(), ClientError> {
    let header = read_head(r)?;
    if !header.is_reply() {
        if header.size > FRAME_PAYLOAD_BYTES_MAX_DEFAULT {
            return Err(ClientError::new(
                errno::E2BIG,
                format!("push frame of {} bytes: -7", header.size),
            ));
        }
        let payload = read_payload(r, &header)?;
        on_push(conn, &header, &payload);
        return Ok(());
    }
    if header.status == 0 && header.size > IO_ATTR_SIZE_BYTES as u64 {
        if let Some(sink) = conn.take_sink(header.trans) {
            let reply = stream_reply(conn, r, header, buf, sink)?;
            conn.on_reply(reply);
            return Ok(());
        }
    }
    if header.size > buffered_max {
        pump(r, header.size, buf, |_| Ok(()))?;
        conn.fail_trans(
            header.trans,
            ClientError::new(
                errno::E2BIG,
                format!(
                    "a reply of {} bytes is larger than the client buffers ({buffered_max}); \
                     read it into a file or in chunks: -7",
                    header.size
                ),
            ),
        );
        conn.on_reply(Reply {
            header,
            payload: Vec::new(),
        });
        return Ok(());
    }
    let payload = read_payload(r, &header)?;
    conn.on_reply(Reply { header, payload });
    Ok(())
}

pub(super) fn reader_loop(
    conn: Arc<Conn>,
    stream: TcpStream,
    buffered_max: u64,
    on_push: PushHandler,
    on_close: CloseHandler,
) {
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut buf = Vec::new();
    loop {
        if let Err(e) = next_frame(&conn, &mut reader, buffered_max, &mut buf, &on_push) {
            tracing::debug!(addr = %conn.addr, error = %e, "connection closed");
            break;
        }
    }
    conn.mark_dead();
    conn.shutdown();
    conn.fail_all(errno::ECONNRESET);
    on_close(&conn);
}
