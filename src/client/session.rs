//! `Session`: the Elliptics session API over a `Node`. Holds the per-request settings
//! (groups, namespace, timeout, flags, timestamp, trace id), turns keys into ids, routes
//! each request to the owner in each group, and aggregates replies into per-group entries:
//! writes and removes go to all groups in parallel, reads and lookups try groups in order.
//! Checker: at least one entry must succeed, otherwise the last error is returned.

use super::entry::{
    check, decode_lookup, decode_read, decode_unit, to_entries, Decode, Key, LookupInfo, ReadData,
    Results,
};
use super::files::SinkFactory;
use super::node::Node;
use super::result::{join_all, pending, AsyncResult};
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, errno, DnetTime, IoAttr, IO_ATTR_SIZE_BYTES};
use std::sync::Arc;
use std::time::Duration;

/// A handle with request settings; cheap to clone.
#[derive(Debug, Clone)]
pub struct Session {
    pub(crate) node: Node,
    pub(crate) groups: Vec<u32>,
    pub(crate) namespace: Vec<u8>,
    pub(crate) timeout: Duration,
    pub(crate) cflags: u64,
    pub(crate) ioflags: u32,
    pub(crate) user_flags: u64,
    pub(crate) timestamp: DnetTime,
    pub(crate) trace_id: u64,
}

impl Session {
    /// A session with the Python defaults: no groups, node wait timeout, no flags, empty
    /// timestamp (filled with the current time on write).
    pub fn new(node: &Node) -> Session {
        Session {
            timeout: Duration::from_secs(node.config().wait_timeout_s),
            node: node.clone(),
            groups: Vec::new(),
            namespace: Vec::new(),
            cflags: 0,
            ioflags: 0,
            user_flags: 0,
            timestamp: DnetTime::EMPTY,
            trace_id: 0,
        }
    }

    pub fn set_groups(&mut self, groups: &[u32]) {
        self.groups = groups.to_vec();
    }
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }
    pub fn set_namespace(&mut self, namespace: &str) {
        self.namespace = namespace.as_bytes().to_vec();
    }
    /// Transaction timeout; 0 resets it to the node default, as Elliptics does.
    pub fn set_timeout(&mut self, timeout_s: u64) {
        let s = if timeout_s == 0 {
            self.node.config().wait_timeout_s
        } else {
            timeout_s
        };
        self.timeout = Duration::from_secs(s);
    }
    pub fn timeout_s(&self) -> u64 {
        self.timeout.as_secs()
    }
    pub fn set_cflags(&mut self, cflags: u64) {
        self.cflags = cflags;
    }
    pub fn set_ioflags(&mut self, ioflags: u32) {
        self.ioflags = ioflags;
    }
    pub fn set_user_flags(&mut self, user_flags: u64) {
        self.user_flags = user_flags;
    }
    pub fn set_timestamp(&mut self, timestamp: DnetTime) {
        self.timestamp = timestamp;
    }
    pub fn set_trace_id(&mut self, trace_id: u64) {
        self.trace_id = trace_id;
    }
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The ring id of `key` under this session's namespace.
    pub fn id_of(&self, key: &Key) -> RawId {
        match key {
            Key::Str(s) => RawId::from_namespaced_key(&self.namespace, s),
            Key::Id(id) => *id,
        }
    }

    /// The header of a keyed command to `route`'s backend.
    pub(crate) fn keyed_header(
        &self,
        group: u32,
        id: RawId,
        cmd: i32,
        backend_id: i32,
        extra_flags: u64,
    ) -> crate::protocol::CmdHeader {
        crate::protocol::CmdHeader {
            id,
            group_id: group,
            cmd,
            // dnet_ioclient leaves backend_id 0 on LOOKUP (the bindings on the index
            // commands too) and fills it from the routes otherwise.
            backend_id: if matches!(
                cmd,
                command::LOOKUP
                    | command::INDEXES_UPDATE
                    | command::INDEXES_INTERNAL
                    | command::INDEXES_FIND
            ) {
                0
            } else {
                backend_id
            },
            trace_id: self.trace_id,
            flags: cmd_flags::NEED_ACK | self.cflags | extra_flags,
            ..Default::default()
        }
    }

    /// Send one keyed command to the owner of `id` in `group`.
    pub(crate) fn send_keyed<T: Send + 'static>(
        &self,
        group: u32,
        id: RawId,
        cmd: i32,
        extra_flags: u64,
        payload: Vec<u8>,
        decode: Decode<T>,
    ) -> AsyncResult<Results<T>> {
        let Some((conn, route)) = self.node.route(group, &id) else {
            return super::entry::no_route(group, &id, cmd);
        };
        let header = self.keyed_header(group, id, cmd, route.backend_id, extra_flags);
        let addr = conn.addr;
        self.node
            .send(&conn, header, &payload, Some(self.timeout))
            .map(move |r| Ok(to_entries(r, group, &id, cmd, addr, decode)))
    }

    /// Send to every session group in parallel and gather the entries in group order.
    pub(crate) fn send_all_groups<T: Send + 'static>(
        &self,
        make: impl Fn(u32) -> AsyncResult<Results<T>>,
    ) -> AsyncResult<Results<T>> {
        let parts: Vec<_> = self.groups.iter().map(|g| make(*g)).collect();
        join_all(parts).map(|all| {
            let entries: Results<T> = all?
                .into_iter()
                .flat_map(|r| r.unwrap_or_default())
                .collect();
            check(entries)
        })
    }

    /// Try `groups` one after another until an attempt has a successful entry.
    pub(crate) fn send_in_order<T: Send + 'static>(
        groups: Vec<u32>,
        make: Arc<dyn Fn(u32) -> AsyncResult<Results<T>> + Send + Sync>,
    ) -> AsyncResult<Results<T>> {
        let (c, r) = pending();
        fn step<T: Send + 'static>(
            mut rest: std::vec::IntoIter<u32>,
            mut acc: Results<T>,
            make: Arc<dyn Fn(u32) -> AsyncResult<Results<T>> + Send + Sync>,
            done: super::result::Completer<Results<T>>,
        ) {
            let Some(group) = rest.next() else {
                done.complete(check(acc));
                return;
            };
            make(group).on_complete(move |res| {
                let entries = res.unwrap_or_default();
                let ok = entries.iter().any(|e| e.status == 0);
                acc.extend(entries);
                if ok {
                    done.complete(Ok(acc));
                } else {
                    step(rest, acc, make, done);
                }
            });
        }
        step(groups.into_iter(), Vec::new(), make, c);
        r
    }

    pub(crate) fn io_attr(&self, id: RawId, offset: u64, size: u64) -> IoAttr {
        IoAttr {
            parent: id,
            id,
            offset,
            size,
            flags: self.ioflags,
            user_flags: self.user_flags,
            ..IoAttr::default()
        }
    }

    pub(crate) fn write_timestamp(&self) -> DnetTime {
        if self.timestamp.is_empty() {
            DnetTime::now()
        } else {
            self.timestamp
        }
    }

    /// Fill the io_attr of a WRITE of `size_bytes` to `id`: ids, size and timestamp.
    pub(crate) fn stamp_write(&self, id: RawId, io: &mut IoAttr, size_bytes: u64) {
        if io.flags & crate::protocol::io_flags::COMPARE_AND_SWAP == 0 {
            io.parent = id;
        }
        io.id = id;
        io.size = size_bytes;
        io.timestamp = self.write_timestamp();
    }

    /// WRITE with explicit io_attr fields (used by write_data and the prepare/commit family).
    pub(crate) fn write_io(
        &self,
        key: &Key,
        data: &[u8],
        mut io: IoAttr,
    ) -> AsyncResult<Results<LookupInfo>> {
        let id = self.id_of(key);
        self.stamp_write(id, &mut io, data.len() as u64);
        let mut body = Vec::with_capacity(IO_ATTR_SIZE_BYTES + data.len());
        body.extend_from_slice(&io.encode());
        body.extend_from_slice(data);
        let body = Arc::new(body);
        self.send_all_groups(move |g| {
            self.send_keyed(g, id, command::WRITE, 0, body.to_vec(), decode_lookup)
        })
    }

    /// Write `data` at `offset` to every session group in parallel.
    pub fn write_data(
        &self,
        key: &Key,
        data: &[u8],
        offset: u64,
    ) -> AsyncResult<Results<LookupInfo>> {
        let io = self.io_attr(self.id_of(key), offset, 0);
        self.write_io(key, data, io)
    }

    /// Read `size` bytes (0 = to the end) at `offset`, trying the groups in order. After a
    /// full read, groups that answered -ENOENT/-EBADFD/-EILSEQ are rewritten (read recovery).
    pub fn read_data(&self, key: &Key, offset: u64, size: u64) -> AsyncResult<Results<ReadData>> {
        self.read_from_groups(key, self.groups.clone(), offset, size, None)
    }

    /// READ from `groups` in order. With `sink`, each attempt's reply data goes to a sink
    /// it makes (the entries then carry the io_attr and no data) and nothing is recovered.
    pub(crate) fn read_from_groups(
        &self,
        key: &Key,
        groups: Vec<u32>,
        offset: u64,
        size: u64,
        sink: Option<SinkFactory>,
    ) -> AsyncResult<Results<ReadData>> {
        let id = self.id_of(key);
        let body = self.io_attr(id, offset, size).encode().to_vec();
        let me = self.clone();
        let streamed = sink.is_some();
        let result = Self::send_in_order(
            groups,
            Arc::new(move |g| match &sink {
                None => me.send_keyed(g, id, command::READ, 0, body.clone(), decode_read),
                Some(make) => me.read_streamed(g, id, &body, make),
            }),
        );
        let me = self.clone();
        result.map(move |r| {
            if let Ok(entries) = &r {
                if offset == 0 && !streamed {
                    me.recover(id, entries);
                }
            }
            r
        })
    }

    /// Rewrite a fully read object into the groups that lost it.
    fn recover(&self, id: RawId, entries: &Results<ReadData>) {
        let Some(good) = entries.iter().find_map(|e| e.payload.as_ref()) else {
            return;
        };
        if good.io.offset != 0 || good.io.size != good.io.total_size {
            return;
        }
        let lost: Vec<u32> = entries
            .iter()
            .filter(|e| matches!(e.status, errno::ENOENT | errno::EBADFD | errno::EILSEQ))
            .map(|e| e.group)
            .collect();
        if lost.is_empty() {
            return;
        }
        let mut s = self.clone();
        s.set_groups(&lost);
        s.set_timestamp(good.io.timestamp);
        s.set_user_flags(good.io.user_flags);
        s.ioflags = 0;
        let io = s.io_attr(id, 0, 0);
        s.write_io(&Key::Id(id), &good.data, io).on_complete(|r| {
            if let Err(e) = r {
                tracing::debug!(error = %e, "read recovery write failed");
            }
        });
    }

    /// LOOKUP, trying the groups in order.
    pub fn lookup(&self, key: &Key) -> AsyncResult<Results<LookupInfo>> {
        let id = self.id_of(key);
        let me = self.clone();
        Self::send_in_order(
            self.groups.clone(),
            Arc::new(move |g| me.send_keyed(g, id, command::LOOKUP, 0, Vec::new(), decode_lookup)),
        )
    }

    /// LOOKUP in every group, then read from the group with the newest mtime first.
    pub fn read_latest(&self, key: &Key, offset: u64, size: u64) -> AsyncResult<Results<ReadData>> {
        self.read_latest_with(key, offset, size, None)
    }

    /// [`Session::read_latest`], the data going to sinks made by `sink` when given.
    pub(crate) fn read_latest_with(
        &self,
        key: &Key,
        offset: u64,
        size: u64,
        sink: Option<SinkFactory>,
    ) -> AsyncResult<Results<ReadData>> {
        let id = self.id_of(key);
        let me = self.clone();
        let (c, r) = pending();
        let key = key.clone();
        let parts: Vec<_> = self
            .groups
            .iter()
            .map(|g| self.send_keyed(*g, id, command::LOOKUP, 0, Vec::new(), decode_lookup))
            .collect();
        join_all(parts).on_complete(move |all| {
            let entries: Results<LookupInfo> = all
                .unwrap_or_default()
                .into_iter()
                .flat_map(|r| r.unwrap_or_default())
                .collect();
            let mut found: Vec<(DnetTime, u32)> = entries
                .iter()
                .filter_map(|e| e.payload.as_ref().map(|p| (p.mtime, e.group)))
                .collect();
            if found.is_empty() {
                c.complete(check(entries).map(|_| Vec::new()));
                return;
            }
            found.sort_by_key(|f| std::cmp::Reverse(f.0));
            let mut order: Vec<u32> = found.into_iter().map(|(_, g)| g).collect();
            order.extend(
                entries
                    .iter()
                    .filter(|e| e.status == errno::ENOENT)
                    .map(|e| e.group),
            );
            me.read_from_groups(&key, order, offset, size, sink)
                .on_complete(move |r| c.complete(r));
        });
        r
    }

    /// Remove the key from every session group in parallel.
    pub fn remove(&self, key: &Key) -> AsyncResult<Results<()>> {
        let id = self.id_of(key);
        let body = self.io_attr(id, 0, 0).encode().to_vec();
        self.send_all_groups(move |g| {
            self.send_keyed(g, id, command::DEL, 0, body.clone(), decode_unit)
        })
    }
}
