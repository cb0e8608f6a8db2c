//! The rest of the keyed session API: exec routing (§1.10), the prepare/plain/commit and
//! CAS write helpers, bulk reads and range reads/removes.

use super::entry::{
    check, decode_exec, decode_lookup, decode_read, to_entries, Entry, ExecPacket, Key, LookupInfo,
    ReadData, Results,
};
use super::error::ClientError;
use super::result::{join_all, pending, AsyncResult, Completer};
use super::session::Session;
use super::wire::encode_exec;
use crate::key::RawId;
use crate::protocol::sph_flags;
use crate::protocol::{cmd_flags, command, io_flags, IoAttr, IO_ATTR_SIZE_BYTES};
use std::collections::BTreeMap;
use std::net::SocketAddr;

impl Session {
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

    /// Write `data` into the nodes' caches (the CACHE ioflag) for `lifetime_s` seconds
    /// (0: no lifetime); 2.26's `write_cache`. The value reaches disk after the cache's
    /// `sync_timeout` or when its lifetime ends, unless the session's ioflags hold
    /// CACHE_ONLY.
    pub fn write_cache(
        &self,
        key: &Key,
        data: &[u8],
        lifetime_s: u64,
    ) -> AsyncResult<Results<LookupInfo>> {
        let mut io = self.io_with(io_flags::CACHE, 0, 0);
        io.start = lifetime_s;
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

    /// DEL_RANGE over [`begin`, `end`]; the removed count comes back in `io.num`. The
    /// limit is sent as "no limit" (`num` = all ones), which eblob also reads `num` 0 as.
    pub fn remove_data_range(&self, begin: &RawId, end: &RawId) -> AsyncResult<Results<ReadData>> {
        self.range(command::DEL_RANGE, begin, end, 0, u64::MAX)
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
