//! What operations return: keys, per-group entries (address, group, backend, status,
//! decoded payload), the reply decoders, and the default `at_least_one` checker.

use super::conn::{Replies, Reply};
use super::error::ClientError;
use crate::key::RawId;
use crate::protocol::{errno, DecodeError, IoAttr, IO_ATTR_SIZE_BYTES};
use std::net::SocketAddr;

/// A key: a string hashed with the session namespace, or a raw ring id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Str(Vec<u8>),
    Id(RawId),
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::Str(s.as_bytes().to_vec())
    }
}

impl From<RawId> for Key {
    fn from(id: RawId) -> Key {
        Key::Id(id)
    }
}

/// One reply frame (or local failure) from one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    /// The node that answered (`None` when nothing was sent: no route).
    pub address: Option<SocketAddr>,
    pub group: u32,
    pub backend: i32,
    /// 0 or a negative errno.
    pub status: i32,
    /// The failure, when `status != 0`.
    pub error: Option<ClientError>,
    /// The decoded body, when the frame had one and `status == 0`.
    pub payload: Option<T>,
}

/// Data returned by READ: the echoed io_attr (offset, size, total_size, timestamp,
/// user_flags, record_flags) and the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadData {
    pub io: IoAttr,
    pub data: Vec<u8>,
}

pub use super::wire::{ExecPacket, LookupInfo, NodeStatus};

/// The entries of one operation.
pub type Results<T> = Vec<Entry<T>>;
pub(crate) type Decode<T> = fn(&Reply) -> Result<T, DecodeError>;

pub(crate) fn decode_lookup(r: &Reply) -> Result<LookupInfo, DecodeError> {
    super::wire::read_lookup(&r.payload)
}

pub(crate) fn decode_read(r: &Reply) -> Result<ReadData, DecodeError> {
    let io = IoAttr::decode(&r.payload)?;
    let data = r.payload.get(IO_ATTR_SIZE_BYTES..).unwrap_or(&[]);
    Ok(ReadData {
        io,
        data: data.to_vec(),
    })
}

pub(crate) fn decode_unit(_: &Reply) -> Result<(), DecodeError> {
    Ok(())
}

pub(crate) fn decode_exec(r: &Reply) -> Result<ExecPacket, DecodeError> {
    super::wire::read_exec(&r.payload)
}

/// Turn a transaction's frames into entries.
pub(crate) fn to_entries<T>(
    outcome: Result<Replies, ClientError>,
    group: u32,
    id: &RawId,
    cmd: i32,
    addr: SocketAddr,
    decode: Decode<T>,
) -> Results<T> {
    let replies = match outcome {
        Ok(r) => r,
        Err(e) => {
            return vec![Entry {
                address: Some(addr),
                group,
                backend: -1,
                status: e.status,
                error: Some(e),
                payload: None,
            }];
        }
    };
    replies
        .iter()
        .map(|reply| {
            let h = &reply.header;
            let mut entry = Entry {
                address: Some(addr),
                group: h.group_id,
                backend: h.backend_id,
                status: h.status,
                error: None,
                payload: None,
            };
            if h.status != 0 {
                entry.error = Some(ClientError::command(h.status, group, id, cmd));
            } else if !reply.payload.is_empty() {
                match decode(reply) {
                    Ok(v) => entry.payload = Some(v),
                    Err(e) => {
                        entry.status = errno::EPROTO;
                        entry.error = Some(ClientError::protocol(e));
                    }
                }
            }
            entry
        })
        .collect()
}

/// The default checker: at least one entry with status 0.
pub fn check<T>(entries: Results<T>) -> Result<Results<T>, ClientError> {
    if entries.iter().any(|e| e.status == 0) {
        return Ok(entries);
    }
    let last = entries.iter().rev().find_map(|e| e.error.clone());
    Err(last.unwrap_or_else(|| ClientError::insufficient(0, None)))
}

/// The entry of a command that found no node to go to.
pub(crate) fn no_route<T: Send + 'static>(
    group: u32,
    id: &RawId,
    cmd: i32,
) -> super::result::AsyncResult<Results<T>> {
    let e = ClientError::no_route(group, id, cmd);
    super::result::AsyncResult::ready(Ok(vec![Entry {
        address: None,
        group,
        backend: -1,
        status: e.status,
        error: Some(e),
        payload: None,
    }]))
}
