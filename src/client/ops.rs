//! The rest of the session API: exec routing (§1.10), the prepare/plain/commit and CAS
//! write helpers, bulk and range reads, and the per-node service commands (MONITOR_STAT,
//! BACKEND_STATUS, BACKEND_CONTROL, STATUS).
//!
//! ```text
//! dnet_monitor_stat_request (44): 0 categories u64  8 reserved_int i32  12 reserved[4] u64
//! dnet_backend_control (72+):     0 backend_id u32  4 command u32  8 reserved[13]
//!                                60 defrag_level u32  64 delay u32  68 ids_count u32  72 ids
//! BACKEND_STATUS reply:           0 count u32, then count entries of equal size (192 on 2.26):
//!                                 0 backend_id u32  4 state i32  8 defrag_state u32
//!                                12 last_start {tsec u64, tnsec u64}  28 last_start_err i32
//!                                32 read_only u8   40 delay u32
//! ```

use super::conn::Reply;
use super::error::ClientError;
use super::result::{join_all, pending, AsyncResult, Completer};
use super::session::{
    check, decode_exec, decode_lookup, decode_read, to_entries, Decode, Entry, ExecPacket, Key,
    LookupInfo, NodeStatus, ReadData, Results, Session,
};
use super::wire::{encode_exec, sph_flags};
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, command, io_flags, DecodeError, DnetTime, IoAttr, Reader, IO_ATTR_SIZE_BYTES,
};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;

/// Largest decompressed MONITOR_STAT document accepted.
pub const MONITOR_JSON_BYTES_MAX: u64 = 64 << 20;

/// One backend's state from BACKEND_STATUS / BACKEND_CONTROL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendStatus {
    pub backend_id: u32,
    /// UNINITIALIZED -1, DISABLED 0, ENABLED 1, ACTIVATING 2, DEACTIVATING 3.
    pub state: i32,
    pub defrag_state: u32,
    pub last_start: DnetTime,
    pub last_start_err: i32,
    pub read_only: bool,
    pub delay_ms: u32,
}

/// BACKEND_CONTROL commands.
pub mod backend_command {
    pub const ENABLE: u32 = 0;
    pub const DISABLE: u32 = 1;
    pub const START_DEFRAG: u32 = 2;
    pub const SET_IDS: u32 = 3;
    pub const READ_ONLY: u32 = 4;
    pub const WRITEABLE: u32 = 5;
    pub const CTL: u32 = 6;
    pub const STOP_DEFRAG: u32 = 7;
}

fn decode_backend_status(r: &Reply) -> Result<Vec<BackendStatus>, DecodeError> {
    let mut rd = Reader::new(&r.payload, "dnet_backend_status_list");
    let count = usize::try_from(rd.u32()?).unwrap_or(usize::MAX);
    if count == 0 {
        return Ok(Vec::new());
    }
    let each = rd.remaining() / count;
    if each < 48 || each.checked_mul(count) != Some(rd.remaining()) {
        return Err(DecodeError::InvalidValue {
            field: "dnet_backend_status_list.backends_count",
            value: i64::try_from(count).unwrap_or(-1),
        });
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut e = Reader::new(rd.take(each)?, "dnet_backend_status");
        let backend_id = e.u32()?;
        let state = e.i32()?;
        let defrag_state = e.u32()?;
        let last_start = DnetTime {
            tsec: e.u64()?,
            tnsec: e.u64()?,
        };
        let last_start_err = e.i32()?;
        let read_only = e.u8()? != 0;
        e.take(7)?;
        let delay_ms = e.u32()?;
        out.push(BackendStatus {
            backend_id,
            state,
            defrag_state,
            last_start,
            last_start_err,
            read_only,
            delay_ms,
        });
    }
    Ok(out)
}

fn decode_monitor(r: &Reply) -> Result<String, DecodeError> {
    let mut out = String::new();
    flate2::read::ZlibDecoder::new(r.payload.as_slice())
        .take(MONITOR_JSON_BYTES_MAX)
        .read_to_string(&mut out)
        .map_err(|_| DecodeError::InvalidValue {
            field: "monitor_stat zlib body",
            value: 0,
        })?;
    Ok(out)
}

fn decode_node_status(r: &Reply) -> Result<NodeStatus, DecodeError> {
    NodeStatus::decode(&r.payload)
}

impl Session {
    /// Send one command straight to the node at `addr` (DIRECT|NOLOCK|NEED_ACK).
    fn send_to_node<T: Send + 'static>(
        &self,
        addr: SocketAddr,
        cmd: i32,
        backend_id: i32,
        payload: Vec<u8>,
        decode: Decode<T>,
    ) -> AsyncResult<Results<T>> {
        let Some(conn) = self.node.conn(&addr) else {
            let e = ClientError::no_route(0, &RawId::ZERO, cmd);
            return AsyncResult::ready(Err(e));
        };
        let header = crate::protocol::CmdHeader {
            cmd,
            backend_id,
            trace_id: self.trace_id,
            flags: cmd_flags::NEED_ACK | cmd_flags::DIRECT | cmd_flags::NOLOCK | self.cflags,
            ..Default::default()
        };
        self.node
            .send(&conn, header, &payload, Some(self.timeout))
            .map(move |r| check(to_entries(r, 0, &RawId::ZERO, cmd, addr, decode)))
    }

    /// EXEC `event` with `data`. No key: one request per node (its first backend in the
    /// session groups). A key: one request per session group, to the key's owner. The
    /// caller blocks until the worker finishes (SRC_BLOCK). Entries: data replies and acks.
    pub fn exec(
        &self,
        key: Option<&Key>,
        event: &str,
        data: &[u8],
        src_key: i32,
    ) -> AsyncResult<Results<ExecPacket>> {
        self.exec_unchecked(key, event, data, src_key)
            .map(|r| check(r?))
    }

    /// [`Session::exec`] without the checker: every entry, failed ones included.
    pub fn exec_unchecked(
        &self,
        key: Option<&Key>,
        event: &str,
        data: &[u8],
        src_key: i32,
    ) -> AsyncResult<Results<ExecPacket>> {
        let mut parts = Vec::new();
        match key {
            None => {
                for (conn, group, backend, first_id) in self.node.broadcast_targets(&self.groups) {
                    let body = encode_exec(
                        &first_id,
                        sph_flags::SRC_BLOCK,
                        src_key,
                        &conn.addr,
                        event,
                        data,
                    );
                    let header = crate::protocol::CmdHeader {
                        id: first_id,
                        group_id: group,
                        cmd: command::EXEC,
                        backend_id: backend,
                        trace_id: self.trace_id,
                        flags: cmd_flags::NEED_ACK | self.cflags,
                        ..Default::default()
                    };
                    let addr = conn.addr;
                    parts.push(
                        self.node
                            .send(&conn, header, &body, Some(self.timeout))
                            .map(move |r| {
                                Ok(to_entries(
                                    r,
                                    group,
                                    &first_id,
                                    command::EXEC,
                                    addr,
                                    decode_exec,
                                ))
                            }),
                    );
                }
            }
            Some(key) => {
                let id = self.id_of(key);
                for group in &self.groups {
                    let addr = self.node.route(*group, &id).map(|(c, _)| c.addr);
                    let addr = addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                    let body = encode_exec(&id, sph_flags::SRC_BLOCK, src_key, &addr, event, data);
                    parts.push(self.send_keyed(*group, id, command::EXEC, 0, body, decode_exec));
                }
            }
        }
        join_all(parts).map(|all| {
            Ok(all?
                .into_iter()
                .flat_map(|r| r.unwrap_or_default())
                .collect())
        })
    }

    /// PREPARE|PLAIN_WRITE: reserve `reserve_bytes` and write `data` at `offset`.
    pub fn write_prepare(
        &self,
        key: &Key,
        data: &[u8],
        offset: u64,
        reserve_bytes: u64,
    ) -> AsyncResult<Results<LookupInfo>> {
        let io = self.io_with(
            io_flags::PREPARE | io_flags::PLAIN_WRITE,
            offset,
            reserve_bytes,
        );
        self.write_io(key, data, io)
    }

    /// PLAIN_WRITE into a prepared record.
    pub fn write_plain(
        &self,
        key: &Key,
        data: &[u8],
        offset: u64,
    ) -> AsyncResult<Results<LookupInfo>> {
        let io = self.io_with(io_flags::PLAIN_WRITE, offset, offset + data.len() as u64);
        self.write_io(key, data, io)
    }

    /// COMMIT|PLAIN_WRITE: write `data` at `offset` and commit `commit_bytes` in total.
    pub fn write_commit(
        &self,
        key: &Key,
        data: &[u8],
        offset: u64,
        commit_bytes: u64,
    ) -> AsyncResult<Results<LookupInfo>> {
        let io = self.io_with(
            io_flags::COMMIT | io_flags::PLAIN_WRITE,
            offset,
            commit_bytes,
        );
        self.write_io(key, data, io)
    }

    /// Write only if sha512 of the stored data equals `old_csum` (a missing key passes).
    pub fn write_cas(
        &self,
        key: &Key,
        data: &[u8],
        old_csum: &RawId,
    ) -> AsyncResult<Results<LookupInfo>> {
        let mut io = self.io_with(io_flags::COMPARE_AND_SWAP, 0, 0);
        io.parent = *old_csum;
        self.write_io(key, data, io)
    }

    fn io_with(&self, flags: u32, offset: u64, num: u64) -> IoAttr {
        IoAttr {
            offset,
            num,
            flags: self.ioflags | flags,
            user_flags: self.user_flags,
            ..IoAttr::default()
        }
    }

    /// Read many keys: each group in order gets the keys not found so far, one BULK_READ
    /// per owning backend. Missing keys produce no entry.
    pub fn bulk_read(&self, keys: &[Key]) -> AsyncResult<Results<ReadData>> {
        let ids: Vec<RawId> = keys.iter().map(|k| self.id_of(k)).collect();
        let (c, r) = pending();
        bulk_step(
            self.clone(),
            self.groups.clone().into_iter(),
            ids,
            Vec::new(),
            c,
        );
        r
    }

    fn bulk_group(&self, group: u32, ids: &[RawId]) -> AsyncResult<Results<ReadData>> {
        let mut by_owner: BTreeMap<(SocketAddr, i32), Vec<RawId>> = BTreeMap::new();
        let mut parts = Vec::new();
        for id in ids {
            match self.node.route(group, id) {
                Some((conn, route)) => by_owner
                    .entry((conn.addr, route.backend_id))
                    .or_default()
                    .push(*id),
                None => parts.push(AsyncResult::ready(Ok(vec![no_route_entry(
                    group,
                    id,
                    command::BULK_READ,
                )]))),
            }
        }
        for (_, owned) in by_owner {
            let Some(first) = owned.first().copied() else {
                continue;
            };
            let head = IoAttr {
                size: (owned.len() * IO_ATTR_SIZE_BYTES) as u64,
                flags: self.ioflags,
                ..IoAttr::default()
            };
            let mut body = head.encode().to_vec();
            for id in &owned {
                body.extend_from_slice(
                    &IoAttr {
                        parent: *id,
                        id: *id,
                        flags: self.ioflags,
                        ..IoAttr::default()
                    }
                    .encode(),
                );
            }
            parts.push(self.send_keyed(group, first, command::BULK_READ, 0, body, decode_read));
        }
        join_all(parts).map(|all| {
            Ok(all?
                .into_iter()
                .flat_map(|r| r.unwrap_or_default())
                .collect())
        })
    }

    /// READ_RANGE over [`begin`, `end`] in the first session group, LIMIT `start`, `num`,
    /// sent to every backend of that group. The last entry of each backend carries the
    /// processed count in `io.num`.
    pub fn read_data_range(
        &self,
        begin: &RawId,
        end: &RawId,
        start: u64,
        num: u64,
    ) -> AsyncResult<Results<ReadData>> {
        self.range(command::READ_RANGE, begin, end, start, num)
    }

    /// DEL_RANGE over [`begin`, `end`]; the removed count comes back in `io.num`.
    pub fn remove_data_range(&self, begin: &RawId, end: &RawId) -> AsyncResult<Results<ReadData>> {
        self.range(command::DEL_RANGE, begin, end, 0, 0)
    }

    fn range(
        &self,
        cmd: i32,
        begin: &RawId,
        end: &RawId,
        start: u64,
        num: u64,
    ) -> AsyncResult<Results<ReadData>> {
        let Some(group) = self.groups.first().copied() else {
            return AsyncResult::ready(Err(ClientError::no_route(0, begin, cmd)));
        };
        let mut backends: Vec<(SocketAddr, i32)> = self
            .node
            .routes()
            .into_iter()
            .filter(|r| r.0 == group)
            .map(|r| (r.2, r.3))
            .collect();
        backends.sort();
        backends.dedup();
        let io = IoAttr {
            parent: *end,
            id: *begin,
            start,
            num,
            flags: self.ioflags,
            ..IoAttr::default()
        };
        let body = io.encode().to_vec();
        let mut parts = Vec::new();
        for (addr, backend) in backends {
            let Some(conn) = self.node.conn(&addr) else {
                continue;
            };
            let header = crate::protocol::CmdHeader {
                id: *begin,
                group_id: group,
                cmd,
                backend_id: backend,
                trace_id: self.trace_id,
                flags: cmd_flags::NEED_ACK
                    | cmd_flags::DIRECT
                    | cmd_flags::DIRECT_BACKEND
                    | self.cflags,
                ..Default::default()
            };
            let id = *begin;
            parts.push(
                self.node
                    .send(&conn, header, &body, Some(self.timeout))
                    .map(move |r| Ok(to_entries(r, group, &id, cmd, addr, decode_read))),
            );
        }
        join_all(parts).map(|all| {
            check(
                all?.into_iter()
                    .flat_map(|r| r.unwrap_or_default())
                    .collect(),
            )
        })
    }

    /// MONITOR_STAT from every connected node: decompressed JSON per node.
    pub fn monitor_stat(&self, categories: u64) -> AsyncResult<Results<String>> {
        let mut body = vec![0u8; 44];
        body[..8].copy_from_slice(&categories.to_le_bytes());
        let parts: Vec<_> = self
            .node
            .connections()
            .into_iter()
            .map(|a| {
                self.send_to_node(
                    a,
                    command::MONITOR_STAT,
                    0,
                    body.clone(),
                    decode_monitor as Decode<String>,
                )
                .map(|r| Ok(r.unwrap_or_default()))
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

    /// BACKEND_STATUS of the node at `addr`.
    pub fn backend_status(&self, addr: SocketAddr) -> AsyncResult<Results<Vec<BackendStatus>>> {
        self.send_to_node(
            addr,
            command::BACKEND_STATUS,
            0,
            Vec::new(),
            decode_backend_status,
        )
    }

    /// BACKEND_CONTROL `command` (see [`backend_command`]) on one backend of `addr`.
    pub fn backend_control(
        &self,
        addr: SocketAddr,
        backend_id: u32,
        command_code: u32,
        defrag_level: u32,
        delay_ms: u32,
        ids: &[RawId],
    ) -> AsyncResult<Results<Vec<BackendStatus>>> {
        let mut body = vec![0u8; 72];
        body[0..4].copy_from_slice(&backend_id.to_le_bytes());
        body[4..8].copy_from_slice(&command_code.to_le_bytes());
        body[60..64].copy_from_slice(&defrag_level.to_le_bytes());
        body[64..68].copy_from_slice(&delay_ms.to_le_bytes());
        body[68..72].copy_from_slice(&(ids.len() as u32).to_le_bytes());
        for id in ids {
            body.extend_from_slice(&id.0);
        }
        let backend = i32::try_from(backend_id).unwrap_or(-1);
        self.send_to_node(
            addr,
            command::BACKEND_CONTROL,
            backend,
            body,
            decode_backend_status,
        )
    }

    /// STATUS on `addr`: set (or with [`NodeStatus::QUERY`] only read) the node status.
    pub fn node_status(
        &self,
        addr: SocketAddr,
        status: NodeStatus,
    ) -> AsyncResult<Results<NodeStatus>> {
        self.send_to_node(
            addr,
            command::STATUS,
            0,
            status.encode().to_vec(),
            decode_node_status,
        )
    }

    /// The lookup reply for `key` in one group (helper for tools such as `-L`).
    pub fn lookup_group(&self, key: &Key, group: u32) -> AsyncResult<Results<LookupInfo>> {
        self.send_keyed(
            group,
            self.id_of(key),
            command::LOOKUP,
            0,
            Vec::new(),
            decode_lookup,
        )
    }
}

fn no_route_entry<T>(group: u32, id: &RawId, cmd: i32) -> Entry<T> {
    let e = ClientError::no_route(group, id, cmd);
    Entry {
        address: None,
        group,
        backend: -1,
        status: e.status,
        error: Some(e),
        payload: None,
    }
}

fn bulk_step(
    s: Session,
    mut groups: std::vec::IntoIter<u32>,
    left: Vec<RawId>,
    mut acc: Results<ReadData>,
    done: Completer<Results<ReadData>>,
) {
    let Some(group) = groups.next().filter(|_| !left.is_empty()) else {
        let ok = acc.iter().any(|e| e.status == 0 && e.payload.is_some());
        let found: Results<ReadData> = acc
            .iter()
            .filter(|e| e.payload.is_some())
            .cloned()
            .collect();
        done.complete(if ok {
            Ok(found)
        } else {
            check(std::mem::take(&mut acc))
        });
        return;
    };
    s.bulk_group(group, &left).on_complete(move |r| {
        let entries = r.unwrap_or_default();
        let got: Vec<RawId> = entries
            .iter()
            .filter_map(|e| e.payload.as_ref().map(|p| p.io.id))
            .collect();
        let left: Vec<RawId> = left.into_iter().filter(|id| !got.contains(id)).collect();
        acc.extend(entries);
        bulk_step(s, groups, left, acc, done);
    });
}
