//! The other DHT nodes: who they are (addresses, ring points per backend), the per-shard
//! route table of their points, the outgoing join links, and incoming JOINs.
//!
//! Each shard keeps its own copy of the peer table (no lock on the data path); a change
//! learnt on one shard (a join link up or down, a JOIN, an UPDATE_IDS) is applied to every
//! shard through the mailboxes. The outgoing join links live in `join`.

use super::cross;
use super::handshake;
use super::outbox::Outbox;
use super::reply::{Frames, Replies};
use super::shard::Shard;
use crate::key::RawId;
use crate::protocol::{
    command, errno, AddrContainer, BackendIds, CmdHeader, DnetAddr, IdContainer, NodeAnnouncement,
    BACKEND_IDS_FLAG_DISABLE,
};
use crate::routing::Routes;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

pub use super::join::start_joining;
pub use super::notices::announce_backend;

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
    /// Connections this shard sent its node's ids on (REVERSE_LOOKUP replies, join links):
    /// they receive every UPDATE_IDS push. Dropped connections fall out on the next push.
    subscribers: RefCell<Vec<Weak<Outbox>>>,
    /// Served connections of nodes that joined us (by their first address): each hears of
    /// every node new to us at once (`newcomer_frame`), so it need not wait for a route check.
    joined_links: RefCell<Vec<(SocketAddr, Weak<Outbox>)>>,
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

    /// Every known node, its addresses and its backends' ring points.
    pub fn snapshot(&self) -> Vec<(Vec<SocketAddr>, Vec<BackendIds>)> {
        let mut v: Vec<_> = self
            .nodes
            .borrow()
            .values()
            .map(|n| (n.addrs.clone(), n.backends.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Apply `change`; true when it made a node known that was not known before.
    pub(super) fn apply(&self, change: Change) -> bool {
        let mut nodes = self.nodes.borrow_mut();
        let mut new_node = false;
        match change {
            Change::Up {
                addrs,
                backends,
                source,
            } => {
                let Some(first) = addrs.first().copied() else {
                    return false;
                };
                new_node = !nodes.contains_key(&first);
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
        new_node
    }

    /// `out` serves the join link of the node `first`: it hears of every later newcomer.
    pub fn add_joined_link(&self, first: SocketAddr, out: &Rc<Outbox>) {
        let mut links = self.joined_links.borrow_mut();
        links.retain(|(_, w)| w.strong_count() > 0);
        links.push((first, Rc::downgrade(out)));
    }

    /// Tell every joined node on this shard but the newcomer itself about `addrs`.
    fn tell_joined_links(&self, addrs: &[SocketAddr]) {
        let Some(first) = addrs.first() else { return };
        let frame = super::notices::newcomer_frame(addrs);
        let mut links = self.joined_links.borrow_mut();
        links.retain(|(_, w)| w.strong_count() > 0);
        for (_, out) in links.iter().filter(|(f, _)| f != first) {
            if let Some(out) = out.upgrade() {
                let mut frames = Frames::new();
                frames.push_raw(frame.clone());
                out.push(frames);
            }
        }
    }

    /// `out` has received our ids and gets every later UPDATE_IDS.
    pub fn subscribe(&self, out: &Rc<Outbox>) {
        self.subscribers.borrow_mut().push(Rc::downgrade(out));
    }

    /// Queue `frame` on every live subscriber; forget the closed ones.
    pub(super) fn push_to_subscribers(&self, frame: &Bytes) -> usize {
        let mut subs = self.subscribers.borrow_mut();
        subs.retain(|w| w.strong_count() > 0);
        for out in subs.iter().filter_map(Weak::upgrade) {
            let mut frames = Frames::new();
            frames.push_raw(frame.clone());
            out.push(frames);
        }
        subs.len()
    }

    fn has_incoming(&self, first: &SocketAddr) -> bool {
        self.nodes
            .borrow()
            .get(first)
            .is_some_and(|n| n.incoming > 0)
    }
}

/// Apply `change` on every shard of this node. A node new to us is announced on the
/// join links of the nodes that joined us (each shard tells its own).
pub async fn broadcast(shard: &Rc<Shard>, change: Change) {
    let newcomer = match &change {
        Change::Up { addrs, .. } => Some(addrs.clone()),
        _ => None,
    };
    for target in 0..shard.node.shard_count {
        let c = change.clone();
        let newcomer = newcomer.clone();
        let applied = cross::call(shard, target, move |s| async move {
            if s.cluster.apply(c) {
                if let Some(addrs) = newcomer {
                    s.cluster.tell_joined_links(&addrs);
                }
            }
        })
        .await;
        if let Err(e) = applied {
            tracing::error!("a route change was not applied on shard {target}: {e}");
        }
    }
}

/// Whether a backend announced by `first` collides with the ring: every one of its points
/// already exists in its group (ours or another node's). -EEXIST in Elliptics.
pub(super) fn collides(shard: &Shard, first: SocketAddr, backends: &[BackendIds]) -> bool {
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
            .filter(|l| l.group == group && l.is_enabled())
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

pub(super) fn socket_addrs(c: &AddrContainer) -> Vec<SocketAddr> {
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

/// REVERSE_LOOKUP, JOIN, AUTH and UPDATE_IDS on a served connection. `None` for any other
/// command. A connection that got our ids in a REVERSE_LOOKUP reply gets UPDATE_IDS later.
pub fn intercept(
    shard: &Rc<Shard>,
    out: &Rc<Outbox>,
    peer: &ConnPeer,
    header: &CmdHeader,
    payload: &[u8],
) -> Option<(Frames, bool)> {
    let mut frames = Frames::new();
    match header.cmd {
        command::REVERSE_LOOKUP => {
            let keep = handshake::reverse_lookup(shard, header, &mut frames);
            if keep {
                shard.cluster.subscribe(out);
            }
            Some((frames, keep))
        }
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
                    if let Some(first) = addrs.first() {
                        shard.cluster.add_joined_link(*first, out);
                    }
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
