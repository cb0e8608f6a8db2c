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
};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

pub use super::notices::announce_backend;

pub use super::cluster::{Change, Source};

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
                    s.cluster
                        .tell_joined_links(&addrs, &super::notices::newcomer_frame(&addrs));
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
        let nodes = shard.cluster.node_table();
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
