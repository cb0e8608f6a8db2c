//! Values as files, streamed: `write_file` sends a file range as the data of one WRITE
//! frame per group, straight from the file to the socket; `read_file` and `read_to` hand
//! the READ reply's data to a file or any writer in bounded pieces. Neither holds the
//! value in memory, so the client's memory does not grow with the value (the node's own
//! largest accepted frame still applies to `write_file`; `write_data_chunked` splits a
//! value into PREPARE / PLAIN_WRITE / COMMIT frames instead).

use super::conn::{FileSpan, ReplySink};
use super::entry::{check, decode_lookup, decode_read, to_entries, Key, LookupInfo, ReadData};
use super::entry::{no_route, Entry, Results};
use super::error::ClientError;
use super::result::{join_all, AsyncResult};
use super::session::Session;
use crate::key::RawId;
use crate::protocol::{command, errno};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Makes the sink of one READ attempt (called again when a group fails and the next is
/// tried, so a file sink starts over).
pub type SinkFactory = Arc<dyn Fn() -> std::io::Result<ReplySink> + Send + Sync>;

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> ClientError {
    let status = e.raw_os_error().map_or(errno::EIO, |c| -c);
    ClientError::new(status, format!("{}: {what}: {e}: {status}", path.display()))
}

/// A sink factory writing to `writer`, which must not be rewound (stdout, a pipe).
pub fn writer_sink(writer: impl Write + Send + 'static) -> SinkFactory {
    let shared = Arc::new(Mutex::new(writer));
    Arc::new(move || {
        let w = shared.clone();
        Ok(Box::new(move |piece: &[u8]| {
            w.lock().unwrap_or_else(|p| p.into_inner()).write_all(piece)
        }) as ReplySink)
    })
}

/// A sink factory writing to `file` from its start; every attempt truncates it first.
pub fn file_sink(file: File) -> SinkFactory {
    let file = Arc::new(file);
    Arc::new(move || {
        let mut f = file.try_clone()?;
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        Ok(Box::new(move |piece: &[u8]| f.write_all(piece)) as ReplySink)
    })
}

impl Session {
    /// Write `size` bytes (0: to its end) of the file at `path`, from `local_offset`, to
    /// `key` at `remote_offset` in every session group: the binding's `write_file`. Each
    /// group gets one WRITE frame whose data goes from the file to the socket; the call
    /// returns once every frame is sent, the result completes with the acks.
    pub fn write_file(
        &self,
        key: &Key,
        path: &Path,
        remote_offset: u64,
        local_offset: u64,
        size: u64,
    ) -> AsyncResult<Results<LookupInfo>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => return AsyncResult::ready(Err(io_error("can not open", path, &e))),
        };
        let file_len = match file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return AsyncResult::ready(Err(io_error("can not stat", path, &e))),
        };
        let left = file_len.saturating_sub(local_offset);
        let len_bytes = if size == 0 { left } else { size.min(left) };
        let span = FileSpan {
            file: &file,
            offset_bytes: local_offset.min(file_len),
            len_bytes,
        };
        let id = self.id_of(key);
        let mut io = self.io_attr(id, remote_offset, 0);
        self.stamp_write(id, &mut io, len_bytes);
        let head = io.encode();
        let parts: Vec<_> = self
            .groups
            .iter()
            .map(|g| {
                let Some((conn, route)) = self.node.route(*g, &id) else {
                    return no_route(*g, &id, command::WRITE);
                };
                let header = self.keyed_header(*g, id, command::WRITE, route.backend_id, 0);
                let (group, addr) = (*g, conn.addr);
                self.node
                    .send_with(&conn, header, &head, Some(&span), None, self.timeout)
                    .map(move |r| {
                        Ok(to_entries(
                            r,
                            group,
                            &id,
                            command::WRITE,
                            addr,
                            decode_lookup,
                        ))
                    })
            })
            .collect();
        join_all(parts).map(|all| {
            check(
                all?.into_iter()
                    .flat_map(|r| r.unwrap_or_default())
                    .collect(),
            )
        })
    }

    /// Read `size` bytes (0: to the end) at `offset` of `key` into the file at `path`
    /// (created or truncated), trying the groups in order: the binding's `read_file`. The
    /// data goes from the socket to the file in bounded pieces; the entry carries the
    /// reply's io_attr (its `size` is the byte count) and no data.
    pub fn read_file(
        &self,
        key: &Key,
        path: &Path,
        offset: u64,
        size: u64,
    ) -> AsyncResult<Results<ReadData>> {
        match File::create(path) {
            Ok(f) => self.read_to(key, offset, size, file_sink(f)),
            Err(e) => AsyncResult::ready(Err(io_error("can not create", path, &e))),
        }
    }

    /// [`Session::read_data`] with the data going to the sinks `sink` makes.
    pub fn read_to(
        &self,
        key: &Key,
        offset: u64,
        size: u64,
        sink: SinkFactory,
    ) -> AsyncResult<Results<ReadData>> {
        self.read_from_groups(key, self.groups.clone(), offset, size, Some(sink))
    }

    /// [`Session::read_latest`] with the data going to the sinks `sink` makes.
    pub fn read_latest_to(
        &self,
        key: &Key,
        offset: u64,
        size: u64,
        sink: SinkFactory,
    ) -> AsyncResult<Results<ReadData>> {
        self.read_latest_with(key, offset, size, Some(sink))
    }

    /// One READ attempt in `group` whose reply data goes to a new sink.
    pub(crate) fn read_streamed(
        &self,
        group: u32,
        id: RawId,
        body: &[u8],
        make: &SinkFactory,
    ) -> AsyncResult<Results<ReadData>> {
        let Some((conn, route)) = self.node.route(group, &id) else {
            return no_route(group, &id, command::READ);
        };
        let sink = match make() {
            Ok(s) => s,
            Err(e) => {
                let status = e.raw_os_error().map_or(errno::EIO, |c| -c);
                let err = ClientError::new(status, format!("reply sink: {e}: {status}"));
                return AsyncResult::ready(Ok(vec![Entry {
                    address: Some(conn.addr),
                    group,
                    backend: route.backend_id,
                    status,
                    error: Some(err),
                    payload: None,
                }]));
            }
        };
        let header = self.keyed_header(group, id, command::READ, route.backend_id, 0);
        let addr = conn.addr;
        self.node
            .send_with(&conn, header, body, None, Some(sink), self.timeout)
            .map(move |r| Ok(to_entries(r, group, &id, command::READ, addr, decode_read)))
    }
}
