//! The worker SDK's view of the engine's byte stream: frames taken in place from one
//! growing buffer.

use super::WorkerError;
use crate::srw::frame::{self, Frame};
use std::io::Read;
use std::os::unix::net::UnixStream;

/// Bytes from the engine: `buf[start..end]` is unread, the rest is room. Taking a frame
/// moves no bytes; the unread tail moves to the front once, before a read.
#[derive(Default)]
pub(super) struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Bytes asked for per socket read (the buffer doubles when a frame is larger).
const READ_CHUNK_BYTES: usize = 64 * 1024;

impl Input {
    pub(super) fn next_frame(&mut self) -> Result<Option<Frame>, WorkerError> {
        let rest = self.buf.get(self.start..self.end).unwrap_or_default();
        let Some((f, used)) = frame::decode(rest)? else {
            return Ok(None);
        };
        self.start += used;
        Ok(Some(f))
    }

    /// Read more bytes; false at end of stream.
    pub(super) fn fill(&mut self, reader: &mut UnixStream) -> Result<bool, WorkerError> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() - self.end < READ_CHUNK_BYTES / 2 {
            let size = (self.buf.len() * 2).max(READ_CHUNK_BYTES);
            self.buf.resize(size, 0);
        }
        let n = reader.read(self.buf.get_mut(self.end..).unwrap_or_default())?;
        self.end += n;
        Ok(n > 0)
    }
}
