//! `Node`: the client's view of the cluster. Owns the connections (one per node), the
//! per-node trans counter (starting at 1; the handshake uses 0), the route table built from
//! the nodes' id containers and UPDATE_IDS pushes, the checker thread (timeouts, stall ping,
//! reset) and the reconnect thread (failed remotes and route lists every check_timeout).

use super::conn::{CloseHandler, Conn, FileSpan, PushHandler, Replies, ReplySink};
use super::error::ClientError;
use super::handshake::{dial, parse_remote};
use super::result::AsyncResult;
use super::routes::{apply_update, Route, RouteTable};
use super::wire::{AddrList, BackendIds};
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, errno, AddrContainer, CmdHeader, IdContainer};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Default for [`ClientConfig::reply_buffered_bytes_max`]: the largest node frame.
pub const REPLY_BUFFERED_BYTES_MAX_DEFAULT: u64 = crate::limits::FRAME_PAYLOAD_BYTES_MAX_CEILING;

/// Client settings (the Python `Config` defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Default transaction timeout.
    pub wait_timeout_s: u64,
    /// Reconnect and route-list refresh period.
    pub check_timeout_s: u64,
    /// Consecutive checks with timed-out transactions before the BACKEND_STATUS ping.
    pub stall_count: u32,
    /// Sent in the handshake; dnet_ioclient sends 10.
    pub indexes_shard_count: i32,
    /// Skip ROUTE_LIST after connecting (DNET_CFG_NO_ROUTE_LIST).
    pub no_route_list: bool,
    /// The largest reply payload the client buffers in memory; a larger reply fails its
    /// request with -E2BIG (values of any size stream through `read_file`/`read_to`).
    pub reply_buffered_bytes_max: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            wait_timeout_s: 5,
            check_timeout_s: 20,
            stall_count: 3,
            indexes_shard_count: 10,
            no_route_list: false,
            reply_buffered_bytes_max: REPLY_BUFFERED_BYTES_MAX_DEFAULT,
        }
    }
}

#[derive(Default)]
pub(super) struct Net {
    pub(super) conns: HashMap<SocketAddr, Arc<Conn>>,
    backends: HashMap<SocketAddr, Vec<BackendIds>>,
    routes: RouteTable,
    /// Every address we want a connection to; the reconnect thread dials the missing ones.
    pub(super) wanted: BTreeSet<SocketAddr>,
    /// Index of the dialled address inside the first node's address list.
    dial_index: usize,
}

pub(crate) struct NodeInner {
    pub(crate) config: ClientConfig,
    trans: AtomicU64,
    net: Mutex<Net>,
    pub(super) stop: AtomicBool,
    /// The `indexes_shard_count` the nodes announced (0 until one did).
    indexes_shards: AtomicI32,
}

/// A client node: share it by cloning; sessions are made from it.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for conn in self.lock().conns.values() {
            conn.shutdown();
        }
    }
}

impl NodeInner {
    pub(super) fn lock(&self) -> MutexGuard<'_, Net> {
        self.net.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Node {
    /// A node with no connections; its checker and reconnect threads start now.
    pub fn new(config: ClientConfig) -> Node {
        let inner = Arc::new(NodeInner {
            config,
            trans: AtomicU64::new(1),
            net: Mutex::new(Net::default()),
            stop: AtomicBool::new(false),
            indexes_shards: AtomicI32::new(0),
        });
        let weak = Arc::downgrade(&inner);
        let _ = std::thread::Builder::new()
            .name("ell-check".into())
            .spawn(move || super::checker::checker_loop(weak));
        let weak = Arc::downgrade(&inner);
        let _ = std::thread::Builder::new()
            .name("ell-reconnect".into())
            .spawn(move || super::checker::reconnect_loop(weak));
        Node { inner }
    }

    /// The settings this node was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The index shard count the secondary-index calls use: the one the nodes announced in
    /// the handshake (as the original client adopts it), else our configured one.
    pub fn indexes_shard_count(&self) -> u32 {
        let announced = self.inner.indexes_shards.load(Ordering::Relaxed);
        let count = if announced > 0 {
            announced
        } else {
            self.inner.config.indexes_shard_count
        };
        u32::try_from(count).unwrap_or(1).max(1)
    }

    /// Connect to each "host:port:family" remote, then follow its route list. Fails only
    /// when no remote of this call could be connected; failed ones are retried every
    /// check_timeout.
    pub fn add_remotes(&self, remotes: &[&str]) -> Result<(), ClientError> {
        let mut last_err = None;
        let mut connected = 0usize;
        for text in remotes {
            let addr = match parse_remote(text) {
                Ok(a) => a,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            self.inner.lock().wanted.insert(addr);
            match self.connect(addr) {
                Ok(()) => connected += 1,
                Err(e) => last_err = Some(e),
            }
        }
        if connected == 0 {
            return Err(last_err.unwrap_or_else(|| ClientError::from_status(errno::ENXIO)));
        }
        if !self.inner.config.no_route_list {
            self.refresh_route_lists();
        }
        Ok(())
    }

    /// Handshake with `addr` unless already connected, and add its backends to the routes.
    pub(super) fn connect(&self, addr: SocketAddr) -> Result<(), ClientError> {
        if self
            .inner
            .lock()
            .conns
            .get(&addr)
            .is_some_and(|c| c.is_alive())
        {
            return Ok(());
        }
        let timeout = Duration::from_secs(self.inner.config.wait_timeout_s.max(1));
        let hs = dial(addr, timeout, self.inner.config.indexes_shard_count)?;
        let weak = Arc::downgrade(&self.inner);
        let on_push: PushHandler = Arc::new(move |conn, header, payload| {
            if let Some(inner) = weak.upgrade() {
                handle_push(&inner, conn, header, payload);
            }
        });
        let weak = Arc::downgrade(&self.inner);
        let on_close: CloseHandler = Arc::new(move |conn| {
            if let Some(inner) = weak.upgrade() {
                forget(&inner, conn);
            }
        });
        if hs.indexes_shard_count > 0 {
            self.inner
                .indexes_shards
                .store(hs.indexes_shard_count, Ordering::Relaxed);
        }
        let conn = Conn::start(
            addr,
            hs.stream,
            self.inner.config.reply_buffered_bytes_max,
            on_push,
            on_close,
        )?;
        let mut net = self.inner.lock();
        if net.conns.is_empty() {
            net.dial_index = hs.addrs.addrs.iter().position(|a| *a == addr).unwrap_or(0);
        }
        net.conns.insert(addr, conn);
        net.backends.insert(addr, hs.backends);
        net.routes = RouteTable::build(&net.backends);
        net.wanted.insert(addr);
        tracing::debug!(%addr, "connected");
        Ok(())
    }

    /// Ask every connected node for its route list and connect to the nodes it names; then
    /// ask each newly connected node in turn, until a round names no node new to us.
    pub(super) fn refresh_route_lists(&self) {
        let mut ask: Vec<Arc<Conn>> = self.inner.lock().conns.values().cloned().collect();
        let mut asked: HashSet<SocketAddr> = HashSet::new();
        while !ask.is_empty() {
            asked.extend(ask.iter().map(|c| c.addr));
            let named = self.route_lists_of(&ask);
            ask = Vec::new();
            for addr in named {
                if asked.contains(&addr) {
                    continue;
                }
                self.inner.lock().wanted.insert(addr);
                match self.connect(addr) {
                    Ok(()) => {
                        if let Some(c) = self.conn(&addr) {
                            asked.insert(addr);
                            ask.push(c);
                        }
                    }
                    Err(e) => tracing::debug!(%addr, error = %e, "route-list node not reachable"),
                }
            }
        }
    }

    /// The dial address of every node the route lists of `conns` name (asked in parallel).
    fn route_lists_of(&self, conns: &[Arc<Conn>]) -> Vec<SocketAddr> {
        let lists: Vec<AsyncResult<Replies>> = conns
            .iter()
            .map(|c| {
                let header = CmdHeader {
                    cmd: command::ROUTE_LIST,
                    flags: cmd_flags::NEED_ACK | cmd_flags::DIRECT | cmd_flags::NOLOCK,
                    ..CmdHeader::default()
                };
                self.send(c, header, &[], None)
            })
            .collect();
        let mut found = Vec::new();
        for replies in lists.into_iter().filter_map(|r| r.wait().ok()) {
            for reply in replies
                .iter()
                .filter(|r| r.header.status == 0 && !r.payload.is_empty())
            {
                let decoded = AddrContainer::decode(&reply.payload);
                let Ok(list) = decoded.and_then(|c| AddrList::from_container(&c)) else {
                    continue;
                };
                let per_node = list.node_addr_num.max(1);
                let index = self.inner.lock().dial_index.min(per_node - 1);
                found.extend(
                    list.addrs
                        .chunks(per_node)
                        .filter_map(|node| node.get(index).copied()),
                );
            }
        }
        found
    }

    /// Next transaction number.
    pub(crate) fn next_trans(&self) -> u64 {
        self.inner.trans.fetch_add(1, Ordering::Relaxed)
    }

    /// Send `header` (its trans is assigned here) on `conn` and collect the replies.
    pub(crate) fn send(
        &self,
        conn: &Arc<Conn>,
        mut header: CmdHeader,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> AsyncResult<Replies> {
        header.trans = self.next_trans();
        header.size = payload.len() as u64;
        let timeout = timeout.unwrap_or(Duration::from_secs(self.inner.config.wait_timeout_s));
        conn.send(header, payload, timeout)
    }

    /// [`Node::send`] with a file range streamed after `head` and a sink for the reply
    /// data (see `Conn::send_with`).
    pub(crate) fn send_with(
        &self,
        conn: &Arc<Conn>,
        mut header: CmdHeader,
        head: &[u8],
        tail: Option<&FileSpan<'_>>,
        sink: Option<ReplySink>,
        timeout: Duration,
    ) -> AsyncResult<Replies> {
        header.trans = self.next_trans();
        header.size = head.len() as u64 + tail.map_or(0, |t| t.len_bytes);
        conn.send_with(header, head, tail, sink, timeout)
    }

    /// The connection and backend owning `id` in `group`.
    pub(crate) fn route(&self, group: u32, id: &RawId) -> Option<(Arc<Conn>, Route)> {
        let net = self.inner.lock();
        let route = net.routes.owner(group, id)?;
        let conn = net.conns.get(&route.addr)?.clone();
        Some((conn, route))
    }

    /// The connection to `addr`, if any.
    pub(crate) fn conn(&self, addr: &SocketAddr) -> Option<Arc<Conn>> {
        self.inner.lock().conns.get(addr).cloned()
    }

    /// For each connected node, its first backend whose group is in `groups`, with that
    /// backend's first ring id: the targets of a key-less exec.
    pub(crate) fn broadcast_targets(&self, groups: &[u32]) -> Vec<(Arc<Conn>, u32, i32, RawId)> {
        let net = self.inner.lock();
        let mut addrs: Vec<&SocketAddr> = net.conns.keys().collect();
        addrs.sort();
        addrs
            .into_iter()
            .filter_map(|addr| {
                let conn = net.conns.get(addr)?.clone();
                let (group, b) = net.backends.get(addr)?.iter().find_map(|b| {
                    let g = u32::try_from(b.group_id).ok()?;
                    (groups.contains(&g) && !b.ids.is_empty()).then_some((g, b))
                })?;
                Some((conn, group, b.backend_id, *b.ids.first()?))
            })
            .collect()
    }

    /// Addresses of the live connections, sorted.
    pub fn connections(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = self.inner.lock().conns.keys().copied().collect();
        v.sort();
        v
    }

    /// The route table: (group, ring point, node address, backend id).
    pub fn routes(&self) -> Vec<(u32, RawId, SocketAddr, i32)> {
        let net = self.inner.lock();
        net.routes
            .entries()
            .into_iter()
            .map(|(g, id, r)| (g, id, r.addr, r.backend_id))
            .collect()
    }

    /// The node and backend the route table places `id` on in `group`.
    pub fn owner(&self, group: u32, id: &RawId) -> Option<(SocketAddr, i32)> {
        let net = self.inner.lock();
        net.routes.owner(group, id).map(|r| (r.addr, r.backend_id))
    }
}

fn handle_push(inner: &NodeInner, conn: &Arc<Conn>, header: &CmdHeader, payload: &[u8]) {
    if header.cmd != command::UPDATE_IDS {
        tracing::debug!(addr = %conn.addr, cmd = header.cmd, "unexpected request from node ignored");
        return;
    }
    match IdContainer::decode(payload) {
        Ok(IdContainer { backends: update }) => {
            let mut net = inner.lock();
            let list = net.backends.entry(conn.addr).or_default();
            apply_update(list, update);
            net.routes = RouteTable::build(&net.backends);
        }
        Err(e) => tracing::warn!(addr = %conn.addr, error = %e, "bad UPDATE_IDS ignored"),
    }
}

fn forget(inner: &NodeInner, conn: &Arc<Conn>) {
    let mut net = inner.lock();
    if net
        .conns
        .get(&conn.addr)
        .is_some_and(|c| Arc::ptr_eq(c, conn))
    {
        net.conns.remove(&conn.addr);
        net.backends.remove(&conn.addr);
        net.routes = RouteTable::build(&net.backends);
        tracing::debug!(addr = %conn.addr, "connection dropped; will reconnect");
    }
}
