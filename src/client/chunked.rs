//! Values in chunks, as the original bindings do them: `write_data_chunked` (the binding's
//! `write_data(key, data, offset, chunk_size)`) reserves the whole value with a
//! PREPARE|PLAIN_WRITE of the first chunk (`io.num` = `offset` + total size), sends the
//! middle chunks as PLAIN_WRITE (`io.num` = end of the chunk) and the last one as
//! COMMIT|PLAIN_WRITE (`io.num` = `offset` + total size); every chunk lands at `offset` +
//! its place in the value. Each step goes only to the groups where the previous one
//! succeeded. A value no larger than one chunk, or `chunk_size` 0, is one plain WRITE.
//! `read_data_chunked` reads a value with READs of `chunk_size` bytes at growing offsets,
//! all from the group that answered the first one. Every frame holds at most one chunk.

use super::entry::{check, Key, LookupInfo, Results};
use super::error::ClientError;
use super::session::Session;
use crate::protocol::errno;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where the chunks come from: memory, or a file range read into one reused buffer.
enum Source<'a> {
    Bytes(&'a [u8]),
    File {
        file: &'a File,
        offset_bytes: u64,
        buf: Vec<u8>,
    },
}

impl Source<'_> {
    fn chunk(&mut self, at: u64, len: u64) -> Result<&[u8], ClientError> {
        match self {
            Source::Bytes(b) => {
                let start = usize::try_from(at).unwrap_or(usize::MAX);
                let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
                b.get(start..end).ok_or_else(|| {
                    ClientError::new(
                        errno::EINVAL,
                        format!("chunk out of range: {}", errno::EINVAL),
                    )
                })
            }
            Source::File {
                file,
                offset_bytes,
                buf,
            } => {
                buf.resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
                file.read_exact_at(buf, *offset_bytes + at).map_err(|e| {
                    let status = e.raw_os_error().map_or(errno::EIO, |c| -c);
                    ClientError::new(status, format!("reading the file: {e}: {status}"))
                })?;
                Ok(buf)
            }
        }
    }
}

impl Session {
    /// The binding's `write_data(key, data, offset, chunk_size)`: `data` at `offset` in
    /// frames of at most `chunk_size` data bytes (see the module text). Blocks until the
    /// last chunk is acknowledged; its entries are the result.
    pub fn write_data_chunked(
        &self,
        key: &Key,
        data: &[u8],
        offset: u64,
        chunk_size: u64,
    ) -> Result<Results<LookupInfo>, ClientError> {
        let total = data.len() as u64;
        self.write_chunks(key, Source::Bytes(data), total, offset, chunk_size)
    }

    /// `size` bytes (0: to its end) of the file at `path`, from `local_offset`, written to
    /// `key` at `remote_offset` as [`Session::write_data_chunked`] does, reading one chunk
    /// at a time into one buffer.
    pub fn write_file_chunked(
        &self,
        key: &Key,
        path: &Path,
        remote_offset: u64,
        local_offset: u64,
        size: u64,
        chunk_size: u64,
    ) -> Result<Results<LookupInfo>, ClientError> {
        let open_err = |e: std::io::Error| {
            let status = e.raw_os_error().map_or(errno::EIO, |c| -c);
            ClientError::new(status, format!("{}: {e}: {status}", path.display()))
        };
        let file = File::open(path).map_err(open_err)?;
        let left = file
            .metadata()
            .map_err(open_err)?
            .len()
            .saturating_sub(local_offset);
        let total = if size == 0 { left } else { size.min(left) };
        let source = Source::File {
            file: &file,
            offset_bytes: local_offset,
            buf: Vec::new(),
        };
        self.write_chunks(key, source, total, remote_offset, chunk_size)
    }

    fn write_chunks(
        &self,
        key: &Key,
        mut source: Source<'_>,
        total: u64,
        offset: u64,
        chunk_size: u64,
    ) -> Result<Results<LookupInfo>, ClientError> {
        if chunk_size == 0 || total <= chunk_size {
            let data = source.chunk(0, total)?.to_vec();
            return self.write_data(key, &data, offset).wait();
        }
        let end = offset + total;
        let mut s = self.clone();
        let first = source.chunk(0, chunk_size)?;
        let mut entries = s.write_prepare(key, first, offset, end).wait()?;
        let mut done = chunk_size;
        loop {
            let ok: Vec<u32> = entries
                .iter()
                .filter(|e| e.status == 0)
                .map(|e| e.group)
                .collect();
            s.set_groups(&ok);
            if done + chunk_size >= total {
                let last = source.chunk(done, total - done)?;
                return s.write_commit(key, last, offset + done, end).wait();
            }
            let piece = source.chunk(done, chunk_size)?;
            entries = s.write_plain(key, piece, offset + done).wait()?;
            done += chunk_size;
        }
    }

    /// Read `size` bytes (0: to the end of the value) at `offset` of `key` into `out` with
    /// READs of at most `chunk_size` bytes (0: one READ); the groups are tried in order for
    /// the first chunk and the rest come from the group that answered it. Returns the byte
    /// count written.
    pub fn read_data_chunked(
        &self,
        key: &Key,
        offset: u64,
        size: u64,
        chunk_size: u64,
        out: &mut dyn Write,
    ) -> Result<u64, ClientError> {
        let write_err = |e: std::io::Error| {
            let status = e.raw_os_error().map_or(errno::EIO, |c| -c);
            ClientError::new(status, format!("writing the data: {e}: {status}"))
        };
        let first_len = if chunk_size == 0 {
            size
        } else if size == 0 {
            chunk_size
        } else {
            size.min(chunk_size)
        };
        let entries = check(self.read_data(key, offset, first_len).wait()?)?;
        let Some((group, first)) = entries
            .into_iter()
            .find_map(|e| e.payload.map(|p| (e.group, p)))
        else {
            return Ok(0);
        };
        out.write_all(&first.data).map_err(write_err)?;
        let end = if size == 0 {
            first.io.total_size
        } else {
            (offset + size).min(first.io.total_size)
        };
        let mut at = offset + first.data.len() as u64;
        let mut s = self.clone();
        s.set_groups(&[group]);
        while at < end && !first.data.is_empty() {
            let want = chunk_size.min(end - at);
            let got = s.read_data(key, at, want).wait()?;
            let Some(piece) = got.into_iter().find_map(|e| e.payload) else {
                break;
            };
            if piece.data.is_empty() {
                break;
            }
            out.write_all(&piece.data).map_err(write_err)?;
            at += piece.data.len() as u64;
        }
        Ok(at - offset)
    }
}
