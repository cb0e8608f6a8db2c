//! Forwarding: a backend request (non-REPLY, non-DIRECT) whose key another node owns is
//! re-sent to that node with a new trans, and every reply is relayed back to the requester
//! with the original trans. DIRECT to a non-owner answers -ENOTSUP.
//!
//! Each shard keeps its own link to each peer it forwards to (dialled on first use, plain
//! REVERSE_LOOKUP handshake, no JOIN): a forwarded request never crosses a mailbox, and the
//! replies land on the shard that holds the requester's connection. A dead link completes
//! every request it carries with -ECONNRESET at once; a silent one answers each relayed
//! request -ETIMEDOUT after the node's `wait_timeout`. The same links carry requests the node
//! makes itself (server-send), whose replies are collected instead of relayed.

mod batch;

pub use batch::{request_batch, Outgoing};

use super::dial::dial;
pub use super::dial::{dial_with_reply, FrameReader};
use super::link::{Link, Waiter};
use super::outbox::{write_loop, Outbox};
use super::shard::Shard;
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, errno, CmdHeader};
use crate::runtime::sync::oneshot;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How often a link looks for forwarded requests past their deadline.
const SWEEP_PERIOD_MS: u64 = 100;

/// Where a request for a key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Serve it here.
    Local,
    /// Forward it to the node listening first on this address.
    Peer(SocketAddr),
    /// Refuse it with this errno.
    Refuse(i32),
}

fn is_forwardable(cmd: i32) -> bool {
    matches!(
        cmd,
        command::LOOKUP | command::WRITE | command::READ | command::DEL
    )
}

/// The greatest point <= `id` and the greatest point overall, among `points`.
fn floor_and_max<'a>(
    id: &RawId,
    points: impl Iterator<Item = &'a RawId>,
) -> (Option<RawId>, Option<RawId>) {
    let mut floor: Option<RawId> = None;
    let mut max: Option<RawId> = None;
    for p in points {
        if p <= id && floor.is_none_or(|f| *p > f) {
            floor = Some(*p);
        }
        if max.is_none_or(|m| *p > m) {
            max = Some(*p);
        }
    }
    (floor, max)
}

/// Decide where `header` is served: the owner of its key in its group among our enabled
/// backends and the joined peers' ring points.
pub fn target(shard: &Shard, header: &CmdHeader) -> Target {
    if header.is_reply()
        || !is_forwardable(header.cmd)
        || header.flags & cmd_flags::DIRECT_BACKEND != 0
    {
        return Target::Local;
    }
    let Some((peer_point, peer)) = shard.cluster.owner_point(header.group_id, &header.id) else {
        return Target::Local;
    };
    let local_points: Vec<RawId> = shard
        .backends
        .iter()
        .filter(|b| b.group == header.group_id && b.is_enabled())
        .flat_map(|b| b.ids.borrow().clone())
        .collect();
    let (local_floor, local_max) = floor_and_max(&header.id, local_points.iter());
    let peer_is_floor = peer_point <= header.id;
    let peer_wins = match (local_floor, peer_is_floor) {
        (Some(l), true) => peer_point > l,
        (Some(_), false) => false,
        (None, true) => true,
        (None, false) => local_max.is_none_or(|m| peer_point > m),
    };
    if !peer_wins {
        Target::Local
    } else if header.flags & cmd_flags::DIRECT != 0 {
        Target::Refuse(errno::ENOTSUP)
    } else {
        Target::Peer(peer)
    }
}

/// Forward `header` + `payload` from a requester's connection to `peer`.
pub fn forward(
    shard: &Rc<Shard>,
    out: &Rc<Outbox>,
    header: CmdHeader,
    payload: &[u8],
    peer: SocketAddr,
) {
    out.request_started();
    let link = link_to(shard, peer);
    let _ = link.send(
        header,
        payload,
        Waiter::Relay {
            out: out.clone(),
            orig: header,
            deadline: Instant::now() + wait_timeout(shard),
        },
    );
}

/// Send a request of our own to `peer` and collect every reply frame until the final one.
pub async fn request(
    shard: &Rc<Shard>,
    peer: SocketAddr,
    header: CmdHeader,
    payload: &[u8],
    timeout_ms: u64,
) -> Result<Vec<(CmdHeader, Bytes)>, i32> {
    request_parts(
        shard,
        peer,
        header,
        &[Bytes::copy_from_slice(payload)],
        timeout_ms,
    )
    .await
}

/// [`request`] with a payload in parts that are written without being copied together.
pub async fn request_parts(
    shard: &Rc<Shard>,
    peer: SocketAddr,
    header: CmdHeader,
    parts: &[Bytes],
    timeout_ms: u64,
) -> Result<Vec<(CmdHeader, Bytes)>, i32> {
    let (tx, rx) = oneshot();
    let link = link_to(shard, peer);
    let _ = link.send_parts(
        header,
        parts,
        Waiter::Collect {
            frames: Vec::new(),
            done: tx,
            deadline: Instant::now() + Duration::from_millis(timeout_ms),
        },
    );
    // The link answers every waiter: its reply, the sweep's -ETIMEDOUT past the deadline,
    // or -ECONNRESET when it dies (a link still dialling dies within `wait_timeout`).
    rx.await.unwrap_or(Err(errno::ECONNRESET))
}

/// This shard's live link to `peer`, dialling a new one when there is none. Requests queued
/// on a link still connecting are written once its handshake is done.
fn link_to(shard: &Rc<Shard>, peer: SocketAddr) -> Rc<Link> {
    if let Some(l) = shard.cluster.links.borrow().get(&peer) {
        if !l.dead.get() {
            return l.clone();
        }
    }
    let link = Rc::new(Link {
        addr: peer,
        out: Rc::new(Outbox::default()),
        waiters: RefCell::new(HashMap::new()),
        next_trans: Cell::new(1),
        dead: Cell::new(false),
    });
    shard.cluster.links.borrow_mut().insert(peer, link.clone());
    crate::runtime::spawn(run_link(shard.clone(), link.clone()));
    link
}

/// How long a forwarded request waits for its peer: the node's `wait_timeout`.
fn wait_timeout(shard: &Shard) -> Duration {
    Duration::from_secs(shard.node.config.options.wait_timeout_s.max(1))
}

/// Expire timed-out relayed requests of `link` until it dies or the shard stops.
async fn sweep_link(shard: Rc<Shard>, link: Rc<Link>) {
    while !link.dead.get() && !shard.is_shutting_down() {
        crate::runtime::sleep(Duration::from_millis(SWEEP_PERIOD_MS)).await;
        link.expire(Instant::now());
    }
}

async fn run_link(shard: Rc<Shard>, link: Rc<Link>) {
    let timeout = wait_timeout(&shard);
    let limit = shard.node.config.options.frame_payload_bytes_max;
    let indexes = shard.node.config.options.indexes_shard_count;
    let connected = crate::runtime::timeout(timeout, dial(link.addr, indexes, limit)).await;
    let (stream, mut reader) = match connected {
        Ok(Ok(pair)) => pair,
        other => {
            let status = match other {
                Ok(Err(e)) => i32::from(e),
                _ => errno::ETIMEDOUT,
            };
            tracing::debug!(peer = %link.addr, status, "peer link failed to connect");
            drop_link(&shard, &link, status);
            return;
        }
    };
    crate::runtime::spawn(write_loop(
        shard.node.clone(),
        shard.index,
        stream.clone(),
        link.out.clone(),
    ));
    crate::runtime::spawn(sweep_link(shard.clone(), link.clone()));
    loop {
        match reader.next(&stream, limit).await {
            Ok(Some((header, payload))) if header.is_reply() => link.deliver(header, payload),
            Ok(Some((header, _))) => {
                tracing::debug!(peer = %link.addr, cmd = header.cmd, "request on a forward link ignored");
            }
            Ok(None) | Err(_) => break,
        }
    }
    drop_link(&shard, &link, errno::ECONNRESET);
    let _ = stream.shutdown();
}

fn drop_link(shard: &Shard, link: &Rc<Link>, status: i32) {
    let mut links = shard.cluster.links.borrow_mut();
    if links.get(&link.addr).is_some_and(|l| Rc::ptr_eq(l, link)) {
        links.remove(&link.addr);
    }
    drop(links);
    link.fail_all(status);
}
