//! The other DHT nodes: who they are (addresses, ring points per backend), the per-shard
//! route table of their points, the outgoing join links, and incoming JOINs.
//!
//! Each shard keeps its own copy of the peer table (no lock on the data path); a change
//! learnt on one shard (a join link up or down, a JOIN, an UPDATE_IDS) is applied to every
//! shard through the mailboxes. Shard 0 owns the outgoing join links, one task per
//! configured remote: connect, REVERSE_LOOKUP (version, addresses, ids), JOIN, AUTH, then
//! watch the link for UPDATE_IDS until it dies, and retry every `check_timeout`. Joins are
//! rare and long-lived, so one owner keeps the announcement logic in one place; the traffic
//! itself goes over each shard's own forward links (`forward`).

use super::cross;
use super::forward::{dial_with_reply, FrameReader};
use super::handshake;
use super::reply::Frames;
use super::shard::Shard;
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, command, errno, AddrContainer, Auth, BackendIds, CmdHeader, DnetAddr, IdContainer,
    NodeAnnouncement, BACKEND_IDS_FLAG_DISABLE,
};
use crate::routing::Routes;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// How a peer became known; a peer leaves the table when no source is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Our join link to it.
    Outgoing,
    /// Its JOIN to us.
    Incoming,
}

/// One known DHT node.
#[derive(Debug, Clone)]
pub struct PeerNode {
    pub addrs: Vec<SocketAddr>,
    pub backends: Vec<BackendIds>,
    outgoing: u32,
    incoming: u32,
}

/// A change of the peer table, applied on every shard.
#[derive(Debug, Clone)]
pub enum Change {
    Up {
        addrs: Vec<SocketAddr>,
        backends: Vec<BackendIds>,
        source: Source,
    },
    Down {
        first: SocketAddr,
        source: Source,
    },
    Ids {
        first: SocketAddr,
        update: Vec<BackendIds>,
    },
}

/// A shard's view of the cluster.
#[derive(Debug, Default)]
pub struct Cluster {
    nodes: RefCell<HashMap<SocketAddr, PeerNode>>,
    routes: RefCell<Routes<SocketAddr>>,
    pub(super) links: RefCell<HashMap<SocketAddr, Rc<super::forward::Link>>>,
}

impl Cluster {
    /// The peer point owning `id` in `group` (wrapping as the ring does) and its node.
    pub fn owner_point(&self, group: u32, id: &RawId) -> Option<(RawId, SocketAddr)> {
        let routes = self.routes.borrow();
        let (point, _) = routes.range(group, id).ok()?;
        let owner = *routes.owner(group, &point).ok()?;
        Some((point, owner))
    }

    /// Known nodes and their addresses.
    pub fn nodes(&self) -> Vec<(SocketAddr, Vec<SocketAddr>)> {
        let mut v: Vec<_> = self
            .nodes
            .borrow()
            .iter()
            .map(|(k, n)| (*k, n.addrs.clone()))
            .collect();
        v.sort();
        v
    }

    fn apply(&self, change: Change) {
        let mut nodes = self.nodes.borrow_mut();
        match change {
            Change::Up {
                addrs,
                backends,
                source,
            } => {
                let Some(first) = addrs.first().copied() else {
                    return;
                };
                let node = nodes.entry(first).or_insert(PeerNode {
                    addrs: addrs.clone(),
                    backends: Vec::new(),
                    outgoing: 0,
                    incoming: 0,
                });
                node.addrs = addrs;
                node.backends = backends;
                match source {
                    Source::Outgoing => node.outgoing += 1,
                    Source::Incoming => node.incoming += 1,
                }
            }
            Change::Down { first, source } => {
                if let Some(node) = nodes.get_mut(&first) {
                    match source {
                        Source::Outgoing => node.outgoing = node.outgoing.saturating_sub(1),
                        Source::Incoming => node.incoming = node.incoming.saturating_sub(1),
                    }
                    if node.outgoing == 0 && node.incoming == 0 {
                        nodes.remove(&first);
                    }
                }
            }
            Change::Ids { first, update } => {
                if let Some(node) = nodes.get_mut(&first) {
                    for u in update {
                        node.backends.retain(|b| b.backend_id != u.backend_id);
                        if u.flags & BACKEND_IDS_FLAG_DISABLE == 0 {
                            node.backends.push(u);
                        }
                    }
                }
            }
        }
        let mut routes = Routes::new();
        for (first, node) in nodes.iter() {
            for b in &node.backends {
                let Ok(group) = u32::try_from(b.group_id) else {
                    continue;
                };
                let _ = routes.insert_points(group, &b.ids, *first);
            }
        }
        *self.routes.borrow_mut() = routes;
    }

    fn has_incoming(&self, first: &SocketAddr) -> bool {
        self.nodes
            .borrow()
            .get(first)
            .is_some_and(|n| n.incoming > 0)
    }
}

/// Apply `change` on every shard of this node.
pub async fn broadcast(shard: &Rc<Shard>, change: Change) {
    for target in 0..shard.node.shard_count {
        let c = change.clone();
        cross::call(shard, target, move |s| async move {
            s.cluster.apply(c);
        })
        .await;
    }
}

/// Whether a backend announced by `first` collides with the ring: every one of its points
/// already exists in its group (ours or another node's). -EEXIST in Elliptics.
fn collides(shard: &Shard, first: SocketAddr, backends: &[BackendIds]) -> bool {
    backends.iter().any(|b| {
        let Ok(group) = u32::try_from(b.group_id) else {
            return false;
        };
        if b.ids.is_empty() {
            return false;
        }
        let mut taken: Vec<RawId> = shard
            .backends
            .iter()
            .filter(|l| l.group == group && l.log.borrow().is_some())
            .flat_map(|l| l.ids.borrow().clone())
            .collect();
        let nodes = shard.cluster.nodes.borrow();
        taken.extend(
            nodes
                .iter()
                .filter(|(k, _)| **k != first)
                .flat_map(|(_, n)| n.backends.iter())
                .filter(|o| o.group_id == b.group_id)
                .flat_map(|o| o.ids.iter().copied()),
        );
        b.ids.iter().all(|p| taken.contains(p))
    })
}

fn socket_addrs(c: &AddrContainer) -> Vec<SocketAddr> {
    c.addrs
        .iter()
        .filter_map(DnetAddr::to_socket_addr)
        .collect()
}

/// Per-connection join state: a JOIN waits for a good AUTH before it takes effect, and the
/// node leaves the table when its connection closes.
#[derive(Debug, Default)]
pub struct ConnPeer {
    announced: RefCell<Option<(Vec<SocketAddr>, Vec<BackendIds>)>>,
    joined: Cell<Option<SocketAddr>>,
}

/// JOIN and AUTH on a served connection. `None` for any other command.
pub fn intercept(
    shard: &Rc<Shard>,
    peer: &ConnPeer,
    header: &CmdHeader,
    payload: &[u8],
) -> Option<(Frames, bool)> {
    let mut frames = Frames::new();
    match header.cmd {
        command::JOIN => {
            let Ok(ann) = NodeAnnouncement::decode(payload) else {
                frames.error(header, errno::EINVAL);
                return Some((frames, false));
            };
            let addrs = socket_addrs(&ann.addrs);
            let Some(first) = addrs.first().copied() else {
                frames.error(header, errno::EINVAL);
                return Some((frames, false));
            };
            if shard.cluster.has_incoming(&first) || collides(shard, first, &ann.ids.backends) {
                tracing::warn!(%first, "JOIN refused: the node or all its ring points already exist");
                frames.error(header, errno::EEXIST);
                return Some((frames, false));
            }
            *peer.announced.borrow_mut() = Some((addrs, ann.ids.backends));
            frames.ack(header, 0);
            Some((frames, true))
        }
        command::AUTH => {
            let keep = handshake::auth(shard, header, payload, &mut frames);
            if keep {
                if let Some((addrs, backends)) = peer.announced.borrow_mut().take() {
                    peer.joined.set(addrs.first().copied());
                    tracing::info!(peer = ?addrs.first(), "node joined");
                    let s = shard.clone();
                    crate::runtime::spawn(async move {
                        let change = Change::Up {
                            addrs,
                            backends,
                            source: Source::Incoming,
                        };
                        broadcast(&s, change).await;
                    });
                }
            }
            Some((frames, keep))
        }
        command::UPDATE_IDS => {
            if let Some(first) = peer.joined.get() {
                if let Ok(c) = IdContainer::decode(payload) {
                    let s = shard.clone();
                    crate::runtime::spawn(async move {
                        broadcast(
                            &s,
                            Change::Ids {
                                first,
                                update: c.backends,
                            },
                        )
                        .await;
                    });
                }
            }
            Some((frames, true))
        }
        _ => None,
    }
}

/// The connection of a joined node closed: it leaves the table (unless another link holds it).
pub fn connection_closed(shard: &Rc<Shard>, peer: &ConnPeer) {
    if let Some(first) = peer.joined.take() {
        tracing::info!(%first, "joined node disconnected");
        let s = shard.clone();
        crate::runtime::spawn(async move {
            broadcast(
                &s,
                Change::Down {
                    first,
                    source: Source::Incoming,
                },
            )
            .await;
        });
    }
}

/// Start the join links (shard 0 only, when `join` is set).
pub fn start_joining(shard: &Rc<Shard>) {
    let opts = &shard.node.config.options;
    if shard.index != 0 || !opts.join {
        return;
    }
    for remote in &opts.remote {
        match remote.resolve() {
            Ok(addr) if !shard.node.addresses.contains(&addr) => {
                crate::runtime::spawn(join_loop(shard.clone(), addr));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("remote {remote:?} cannot be resolved: {e}"),
        }
    }
}

async fn join_loop(shard: Rc<Shard>, remote: SocketAddr) {
    let period = Duration::from_secs(shard.node.config.options.check_timeout_s.max(1));
    while !shard.is_shutting_down() {
        match join_once(&shard, remote).await {
            Ok(()) => tracing::info!(%remote, "join link closed; will reconnect"),
            Err(status) => tracing::debug!(%remote, status, "join failed; will retry"),
        }
        let stop = std::pin::pin!(shard.shutdown_signal());
        let wait = std::pin::pin!(crate::runtime::sleep(period));
        futures::future::select(stop, wait).await;
    }
}

/// One join link's life: handshake, JOIN, AUTH, then UPDATE_IDS until it dies.
async fn join_once(shard: &Rc<Shard>, remote: SocketAddr) -> Result<(), i32> {
    let opts = &shard.node.config.options;
    let limit = opts.frame_payload_bytes_max;
    let timeout = Duration::from_secs(opts.wait_timeout_s.max(1));
    let dialled = crate::runtime::timeout(
        timeout,
        dial_with_reply(remote, opts.indexes_shard_count, limit),
    )
    .await
    .map_err(|_| errno::ETIMEDOUT)?;
    let (stream, mut reader, payload) = dialled?;
    let ann = NodeAnnouncement::decode(&payload).map_err(|_| errno::EPROTO)?;
    let addrs = socket_addrs(&ann.addrs);
    if !addrs.contains(&remote) || ann.addrs.addrs.iter().any(DnetAddr::is_wildcard) {
        return Err(errno::EPROTO);
    }
    let first = addrs.first().copied().ok_or(errno::EPROTO)?;
    if collides(shard, first, &ann.ids.backends) {
        tracing::warn!(%remote, "peer refused: all its ring points already exist here");
        let _ = stream.shutdown();
        return Err(errno::EEXIST);
    }
    let ours = NodeAnnouncement {
        addrs: AddrContainer {
            node_addr_num: i32::try_from(shard.node.addresses.len()).unwrap_or(i32::MAX),
            addrs: shard
                .node
                .addresses
                .iter()
                .map(|a| DnetAddr::from(*a))
                .collect(),
        },
        ids: handshake::id_container(shard),
    }
    .encode();
    let join = CmdHeader {
        cmd: command::JOIN,
        flags: cmd_flags::NOLOCK | cmd_flags::DIRECT,
        trans: 1,
        size: ours.len() as u64,
        ..CmdHeader::default()
    };
    let cookie = Auth {
        cookie: opts.auth_cookie,
        flags: 0,
    }
    .encode();
    let auth = CmdHeader {
        cmd: command::AUTH,
        flags: cmd_flags::DIRECT | cmd_flags::NEED_ACK,
        trans: 2,
        size: cookie.len() as u64,
        ..CmdHeader::default()
    };
    let bufs = vec![
        Bytes::copy_from_slice(&join.encode()),
        Bytes::from(ours),
        Bytes::copy_from_slice(&auth.encode()),
        Bytes::copy_from_slice(&cookie),
    ];
    stream
        .write_all(bufs)
        .await
        .map_err(|_| errno::ECONNRESET)?;
    // Wait for the AUTH ack; a JOIN error arrives first when the peer refuses us.
    loop {
        let next = crate::runtime::timeout(timeout, reader.next(&stream, limit))
            .await
            .map_err(|_| errno::ETIMEDOUT)?;
        let (h, _) = next.map_err(|_| errno::EPROTO)?.ok_or(errno::ECONNRESET)?;
        if !h.is_reply() {
            continue;
        }
        if h.status != 0 {
            tracing::warn!(%remote, status = h.status, cmd = h.cmd, "peer refused our join");
            let _ = stream.shutdown();
            return Err(h.status);
        }
        if h.cmd == command::AUTH && h.flags & cmd_flags::MORE == 0 {
            break;
        }
    }
    tracing::info!(%remote, "joined peer");
    let up = Change::Up {
        addrs,
        backends: ann.ids.backends,
        source: Source::Outgoing,
    };
    broadcast(shard, up).await;
    watch(shard, &stream, &mut reader, first, limit).await;
    broadcast(
        shard,
        Change::Down {
            first,
            source: Source::Outgoing,
        },
    )
    .await;
    let _ = stream.shutdown();
    Ok(())
}

/// Read the join link until it dies, applying the UPDATE_IDS the peer pushes.
async fn watch(
    shard: &Rc<Shard>,
    stream: &crate::runtime::TcpStream,
    reader: &mut FrameReader,
    first: SocketAddr,
    limit: u64,
) {
    loop {
        let next = {
            let stop = std::pin::pin!(shard.shutdown_signal());
            let read = std::pin::pin!(reader.next(stream, limit));
            match futures::future::select(stop, read).await {
                futures::future::Either::Left(_) => return,
                futures::future::Either::Right((r, _)) => r,
            }
        };
        match next {
            Ok(Some((h, payload))) if h.cmd == command::UPDATE_IDS && !h.is_reply() => {
                if let Ok(c) = IdContainer::decode(&payload) {
                    broadcast(
                        shard,
                        Change::Ids {
                            first,
                            update: c.backends,
                        },
                    )
                    .await;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}
