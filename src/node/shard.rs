//! One shard's state: its share of every backend's keys in its own blob logs, its
//! mailbox senders and pending cross-shard calls, its view of the cluster, and which local
//! backend serves a request ([`Shard::backend_for`]). Nothing here is shared with another
//! thread except through the mailboxes and the read-mostly [`NodeShared`]. How a shard
//! starts, runs and drains is `run`.

use super::mail::{Mail, PendingCalls};
use super::state::NodeShared;
use crate::blob::{BlobLog, BlobOptions};
use crate::key::RawId;
use crate::protocol::{cmd_flags, errno, CmdHeader};
use crate::runtime::{mailbox, UringFile};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;

/// What travels through a shard's mailbox.
pub type ShardMsg = Mail<Shard>;

/// The blob log type every shard runs.
pub type ShardLog = BlobLog<UringFile>;

/// This shard's part of one configured backend.
#[derive(Debug)]
pub struct LocalBackend {
    pub backend_id: u32,
    pub group: u32,
    pub ids: RefCell<Vec<RawId>>,
    /// The open log; `None` while the backend is disabled.
    log: RefCell<Option<Rc<ShardLog>>>,
    /// This shard's defrag state as last published to the node's [`super::state::DefragShared`].
    pub defrag_published: RefCell<crate::blob::DefragStatus>,
    /// This shard's part of the backend's cache, when `options.cache` is set.
    pub cache: Option<super::cache_cell::CacheCell>,
}

impl LocalBackend {
    /// This shard's part of a backend, with its log when the backend is enabled.
    pub fn new(
        info: &super::state::BackendInfo,
        log: Option<Rc<ShardLog>>,
        cache: Option<super::cache_cell::CacheCell>,
    ) -> LocalBackend {
        LocalBackend {
            backend_id: info.backend_id,
            group: info.group,
            ids: RefCell::new(info.ids.clone()),
            log: RefCell::new(log),
            defrag_published: RefCell::new(Default::default()),
            cache,
        }
    }

    /// The open log, or `None` while the backend is disabled.
    pub fn log(&self) -> Option<Rc<ShardLog>> {
        self.log.borrow().clone()
    }

    /// Whether the backend is enabled (its log is open) on this shard.
    pub fn is_enabled(&self) -> bool {
        self.log.borrow().is_some()
    }

    /// Put `log` in place (enable) or take the log out (`None`: disable); the previous one.
    pub fn replace_log(&self, log: Option<Rc<ShardLog>>) -> Option<Rc<ShardLog>> {
        self.log.replace(log)
    }

    /// Publish this shard's defrag state of the backend (`info` is its node-wide entry).
    pub fn publish_defrag(&self, info: &super::state::BackendInfo) {
        let now = self.log().map(|l| l.defrag_status()).unwrap_or_default();
        info.defrag
            .publish(&mut self.defrag_published.borrow_mut(), now);
    }
}

/// A shard's state. Lives in an `Rc` on its own thread.
#[derive(Debug)]
pub struct Shard {
    pub index: usize,
    pub node: Arc<NodeShared>,
    pub backends: Vec<LocalBackend>,
    pub peers: Vec<mailbox::Sender<ShardMsg>>,
    pub pending: PendingCalls,
    /// The other DHT nodes as this shard sees them, and its links to them.
    pub cluster: super::cluster::Cluster,
    /// Server-side processing state; `None` without `options.srw_config`.
    pub srw: Option<crate::srw::ShardSrw>,
    shutdown: Cell<bool>,
    shutdown_waiters: RefCell<Vec<Waker>>,
    in_flight: Cell<usize>,
}

impl Shard {
    /// A shard before it runs: its backends opened, no call pending, no peer known.
    pub fn new(
        index: usize,
        node: Arc<NodeShared>,
        backends: Vec<LocalBackend>,
        peers: Vec<mailbox::Sender<ShardMsg>>,
        srw: Option<crate::srw::ShardSrw>,
    ) -> Shard {
        Shard {
            index,
            node,
            backends,
            peers,
            pending: PendingCalls::default(),
            cluster: super::cluster::Cluster::default(),
            srw,
            shutdown: Cell::new(false),
            shutdown_waiters: RefCell::new(Vec::new()),
            in_flight: Cell::new(0),
        }
    }

    /// Ask this shard to stop: the accept loop ends, connections finish what they hold.
    pub fn begin_shutdown(&self) {
        self.shutdown.set(true);
        for w in self.shutdown_waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.get()
    }

    /// Resolves once shutdown has begun.
    pub async fn shutdown_signal(&self) {
        std::future::poll_fn(|cx| {
            if self.shutdown.get() {
                std::task::Poll::Ready(())
            } else {
                self.shutdown_waiters.borrow_mut().push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await;
    }

    /// Tell every shard, this one included, to shut down.
    pub async fn broadcast_shutdown(&self) {
        self.node.shutting_down.store(true, Ordering::Relaxed);
        for (i, peer) in self.peers.iter().enumerate() {
            if i != self.index {
                super::mail::send(peer, ShardMsg::Shutdown).await;
            }
        }
        self.begin_shutdown();
    }

    pub fn request_started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
        self.counters().stats.set_queue_depth(self.in_flight.get());
    }

    pub fn request_finished(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        self.counters().stats.set_queue_depth(self.in_flight.get());
    }

    /// Requests this shard has started and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    pub fn counters(&self) -> &super::state::ShardCounters {
        // `counters` has one entry per shard, built before the shards start.
        &self.node.counters[self.index]
    }

    /// The index of the local backend that serves `header`: the one named by `backend_id` when
    /// DIRECT_BACKEND is set, else the enabled backend of the request's group that owns the key.
    pub fn backend_for(&self, header: &CmdHeader) -> Result<usize, i32> {
        if header.flags & cmd_flags::DIRECT_BACKEND != 0 {
            let id = u32::try_from(header.backend_id).map_err(|_| errno::ENXIO)?;
            return self
                .backends
                .iter()
                .position(|b| b.backend_id == id)
                .ok_or(errno::ENXIO);
        }
        // The common layout, one backend per group: it owns every key of the group.
        let mut in_group = self
            .backends
            .iter()
            .enumerate()
            .filter(|(_, b)| b.group == header.group_id);
        if let (Some((i, b)), None) = (in_group.next(), in_group.next()) {
            return if b.ids.borrow().is_empty() {
                Err(errno::ENXIO)
            } else {
                Ok(i)
            };
        }
        let mut best: Option<(usize, crate::key::RawId)> = None;
        let mut wrap: Option<(usize, crate::key::RawId)> = None;
        for (i, b) in self.backends.iter().enumerate() {
            if b.group != header.group_id {
                continue;
            }
            for point in b.ids.borrow().iter() {
                if *point <= header.id && best.is_none_or(|(_, p)| *point > p) {
                    best = Some((i, *point));
                }
                if wrap.is_none_or(|(_, p)| *point > p) {
                    wrap = Some((i, *point));
                }
            }
        }
        best.or(wrap).map(|(i, _)| i).ok_or(errno::ENXIO)
    }
}

/// Blob options of backend `b` for shard `shard`.
pub fn blob_options(node: &NodeShared, b: usize, shard: usize) -> Option<BlobOptions> {
    let cfg = node.config.backends.get(b)?;
    Some(BlobOptions {
        data_prefix: cfg.data.clone(),
        shard: u32::try_from(shard).ok()?,
        sync_s: cfg.sync_s,
        blob_flags: cfg.blob_flags,
        blob_size_bytes: cfg.blob_size_bytes,
        records_in_blob: cfg.records_in_blob,
        blob_size_limit_bytes: cfg.blob_size_limit_bytes,
        defrag_percentage: cfg.defrag_percentage,
        read_only: cfg.read_only,
    })
}
