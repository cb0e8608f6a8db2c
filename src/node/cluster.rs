//! A shard's view of the cluster, as data: the other DHT nodes (addresses, ring points per
//! backend, how each became known), the route table of their points, the shard's links to
//! them, and the connections that hear of changes. The shard holds it; the code that learns
//! and spreads changes (handshakes, JOIN, UPDATE_IDS) is `peers`, above the shard.

use super::link::Link;
use super::outbox::Outbox;
use super::reply::Frames;
use crate::key::RawId;
use crate::protocol::{BackendIds, BACKEND_IDS_FLAG_DISABLE};
use crate::routing::Routes;
use bytes::Bytes;
use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

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
    pub(super) links: RefCell<HashMap<SocketAddr, Rc<Link>>>,
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

    /// The known nodes, by first address.
    pub(super) fn node_table(&self) -> Ref<'_, HashMap<SocketAddr, PeerNode>> {
        self.nodes.borrow()
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

    /// Tell every joined node on this shard but the newcomer itself about `addrs`: queue
    /// `frame` (the newcomer notice) on their links.
    pub(super) fn tell_joined_links(&self, addrs: &[SocketAddr], frame: &Bytes) {
        let Some(first) = addrs.first() else { return };
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

    pub(super) fn has_incoming(&self, first: &SocketAddr) -> bool {
        self.nodes
            .borrow()
            .get(first)
            .is_some_and(|n| n.incoming > 0)
    }
}
