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

use super::conn::{write_loop, Outbox};
use super::dial::dial;
pub use super::dial::{dial_with_reply, FrameReader};
use super::reply::{Frames, Replies};
use super::shard::Shard;
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, errno, CmdHeader};
use crate::runtime::sync::{oneshot, OneshotSender};
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

/// Who waits for the replies of one request on a link.
enum Waiter {
    /// Relay to a requester's connection under its original header, or answer -ETIMEDOUT
    /// once `deadline` passes without the final reply.
    Relay {
        out: Rc<Outbox>,
        orig: CmdHeader,
        deadline: Instant,
    },
    /// Collect for a request the node made itself, or complete it with -ETIMEDOUT once
    /// `deadline` passes (the link's sweep does it: no timer per request).
    Collect {
        frames: Vec<(CmdHeader, Bytes)>,
        done: OneshotSender<Result<Vec<(CmdHeader, Bytes)>, i32>>,
        deadline: Instant,
    },
    /// One request of a batch the node sent itself ([`request_batch`]): its status goes to
    /// slot `index` of the batch, which completes once every request of it is answered.
    Batch {
        batch: Rc<batch::Pending>,
        index: usize,
        deadline: Instant,
    },
}

/// One shard's link to one peer.
pub struct Link {
    addr: SocketAddr,
    out: Rc<Outbox>,
    waiters: RefCell<HashMap<u64, Waiter>>,
    next_trans: Cell<u64>,
    dead: Cell<bool>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("addr", &self.addr)
            .field("waiting", &self.waiters.borrow().len())
            .finish()
    }
}

impl Link {
    fn send(&self, header: CmdHeader, payload: &[u8], waiter: Waiter) -> u64 {
        self.send_parts(header, &[Bytes::copy_from_slice(payload)], waiter)
    }

    /// A fresh trans number for a request on this link.
    fn take_trans(&self) -> u64 {
        let trans = self.next_trans.get();
        self.next_trans.set(trans.wrapping_add(1).max(1));
        trans
    }

    /// Send `header` followed by `parts` (written as they are, not copied together).
    fn send_parts(&self, mut header: CmdHeader, parts: &[Bytes], waiter: Waiter) -> u64 {
        let trans = self.take_trans();
        header.trans = trans;
        header.size = parts.iter().map(|p| p.len() as u64).sum();
        self.waiters.borrow_mut().insert(trans, waiter);
        let mut frames = Frames::new();
        frames.push_raw(Bytes::copy_from_slice(&header.encode()));
        for p in parts.iter().filter(|p| !p.is_empty()) {
            frames.push_raw(p.clone());
        }
        self.out.push(frames);
        trans
    }

    fn deliver(&self, header: CmdHeader, payload: Bytes) {
        let last = header.flags & cmd_flags::MORE == 0;
        let mut waiters = self.waiters.borrow_mut();
        let Some(waiter) = waiters.get_mut(&header.trans) else {
            tracing::debug!(peer = %self.addr, trans = header.trans, "reply for unknown trans");
            return;
        };
        match waiter {
            Waiter::Relay { out, orig, .. } => {
                let mut relayed = header;
                relayed.trans = orig.trans;
                relayed.flags |= cmd_flags::REPLY;
                let mut frame = relayed.encode().to_vec();
                frame.extend_from_slice(&payload);
                let mut frames = Frames::new();
                frames.push_raw(frame.into());
                out.push(frames);
            }
            Waiter::Collect { frames, .. } => frames.push((header, payload)),
            Waiter::Batch { batch, index, .. } => batch.note(*index, header.status),
        }
        if last {
            if let Some(w) = waiters.remove(&header.trans) {
                finish(w, 0);
            }
        }
    }

    /// Complete every request whose deadline has passed with -ETIMEDOUT.
    fn expire(&self, now: Instant) {
        let expired: Vec<Waiter> = {
            let mut waiters = self.waiters.borrow_mut();
            let due: Vec<u64> = waiters
                .iter()
                .filter(|(_, w)| match w {
                    Waiter::Relay { deadline, .. }
                    | Waiter::Collect { deadline, .. }
                    | Waiter::Batch { deadline, .. } => *deadline <= now,
                })
                .map(|(t, _)| *t)
                .collect();
            due.iter().filter_map(|t| waiters.remove(t)).collect()
        };
        for w in expired {
            tracing::debug!(peer = %self.addr, "forwarded request timed out");
            finish(w, errno::ETIMEDOUT);
        }
    }

    /// The link is gone: every waiter completes with `status` now.
    fn fail_all(&self, status: i32) {
        self.dead.set(true);
        let waiters: Vec<Waiter> = self.waiters.borrow_mut().drain().map(|(_, w)| w).collect();
        for w in waiters {
            finish(w, status);
        }
        self.out.close();
    }
}

fn finish(waiter: Waiter, status: i32) {
    match waiter {
        Waiter::Relay { out, orig, .. } => {
            if status != 0 {
                let mut frames = Frames::new();
                frames.error(&orig, status);
                out.push(frames);
            }
            out.request_finished();
        }
        Waiter::Collect { frames, done, .. } => {
            let _ = done.send(if status == 0 { Ok(frames) } else { Err(status) });
        }
        Waiter::Batch { batch, index, .. } => batch.finished(index, status),
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
    crate::runtime::spawn(write_loop(shard.clone(), stream.clone(), link.out.clone()));
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
