//! One shard's link to one peer node, as data: the outbox its requests are written to and
//! the requests waiting for replies (relayed to a requester's connection, collected for
//! the node itself, or counted into a batch), each completed once: by its final reply, by
//! its deadline, or when the link dies. The shard holds its links (in its cluster view);
//! dialling and running them is `forward`, above the shard.

use super::outbox::Outbox;
use super::reply::{Frames, Replies};
use crate::protocol::{cmd_flags, errno, CmdHeader};
use crate::runtime::sync::OneshotSender;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

/// Who waits for the replies of one request on a link.
pub(super) enum Waiter {
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
        batch: Rc<BatchPending>,
        index: usize,
        deadline: Instant,
    },
}

/// One shard's link to one peer.
pub struct Link {
    pub(super) addr: SocketAddr,
    pub(super) out: Rc<Outbox>,
    pub(super) waiters: RefCell<HashMap<u64, Waiter>>,
    pub(super) next_trans: Cell<u64>,
    pub(super) dead: Cell<bool>,
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
    pub(super) fn send(&self, header: CmdHeader, payload: &[u8], waiter: Waiter) -> u64 {
        self.send_parts(header, &[Bytes::copy_from_slice(payload)], waiter)
    }

    /// A fresh trans number for a request on this link.
    pub(super) fn take_trans(&self) -> u64 {
        let trans = self.next_trans.get();
        self.next_trans.set(trans.wrapping_add(1).max(1));
        trans
    }

    /// Send `header` followed by `parts` (written as they are, not copied together).
    pub(super) fn send_parts(&self, mut header: CmdHeader, parts: &[Bytes], waiter: Waiter) -> u64 {
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

    pub(super) fn deliver(&self, header: CmdHeader, payload: Bytes) {
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
    pub(super) fn expire(&self, now: Instant) {
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
    pub(super) fn fail_all(&self, status: i32) {
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

/// The statuses of a batch on its way: per request the first error any of its reply
/// frames carried, or the error that ended it as a whole.
pub(super) struct BatchPending {
    pub(super) statuses: RefCell<Vec<i32>>,
    pub(super) left: Cell<usize>,
    pub(super) done: RefCell<Option<OneshotSender<Vec<i32>>>>,
}

impl BatchPending {
    /// A reply frame of request `index` arrived with `status`: keep the first error.
    pub(super) fn note(&self, index: usize, status: i32) {
        if status == 0 {
            return;
        }
        if let Some(slot) = self.statuses.borrow_mut().get_mut(index) {
            if *slot == 0 {
                *slot = status;
            }
        }
    }

    /// Request `index` is over (`status` non-zero: it failed as a whole, e.g. expired).
    pub(super) fn finished(&self, index: usize, status: i32) {
        self.note(index, status);
        let left = self.left.get().saturating_sub(1);
        self.left.set(left);
        if left == 0 {
            if let Some(done) = self.done.borrow_mut().take() {
                let _ = done.send(std::mem::take(&mut *self.statuses.borrow_mut()));
            }
        }
    }
}
