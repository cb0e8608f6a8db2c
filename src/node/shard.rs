//! One shard: one OS thread, one io_uring, its own listener (SO_REUSEPORT), its share of
//! every backend's keys in its own blob logs, and its mailbox. Nothing here is shared with
//! another thread except through the mailboxes and the read-mostly [`NodeShared`].

use super::cross::{self, PendingCalls, ShardMsg};
use super::state::{backend_state, NodeShared};
use crate::blob::{BlobLog, BlobOptions};
use crate::key::RawId;
use crate::runtime::{mailbox, TcpListener, UringFile};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

/// The blob log type every shard runs.
pub type ShardLog = BlobLog<UringFile>;

/// This shard's part of one configured backend.
#[derive(Debug)]
pub struct LocalBackend {
    pub backend_id: u32,
    pub group: u32,
    pub ids: RefCell<Vec<RawId>>,
    pub log: RefCell<Option<Rc<ShardLog>>>,
    /// This shard's defrag state as last published to the node's [`super::state::DefragShared`].
    pub defrag_published: RefCell<crate::blob::DefragStatus>,
}

impl LocalBackend {
    /// The open log, or `None` while the backend is disabled.
    pub fn log(&self) -> Option<Rc<ShardLog>> {
        self.log.borrow().clone()
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
    pub cluster: super::peers::Cluster,
    /// Server-side processing state; `None` without `options.srw_config`.
    pub srw: Option<crate::srw::ShardSrw>,
    shutdown: Cell<bool>,
    shutdown_waiters: RefCell<Vec<Waker>>,
    in_flight: Cell<usize>,
}

impl Shard {
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
                cross::send(peer, ShardMsg::Shutdown).await;
            }
        }
        self.begin_shutdown();
    }

    pub fn request_started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
    }

    pub fn request_finished(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
    }

    pub fn counters(&self) -> &super::state::ShardCounters {
        // `counters` has one entry per shard, built before the shards start.
        &self.node.counters[self.index]
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

/// Open this shard's logs of every enabled backend.
pub async fn open_backends(node: &NodeShared, shard: usize) -> Result<Vec<LocalBackend>, String> {
    let mut out = Vec::with_capacity(node.backends.len());
    for (i, info) in node.backends.iter().enumerate() {
        let enabled = info.state.load(Ordering::Relaxed) == backend_state::ENABLED;
        let log = if enabled {
            let opts = blob_options(node, i, shard).ok_or("bad backend options")?;
            let log = BlobLog::open(opts)
                .await
                .map_err(|e| format!("backend {} (shard {shard}): {e}", info.backend_id))?;
            Some(Rc::new(log))
        } else {
            None
        };
        out.push(LocalBackend {
            backend_id: info.backend_id,
            group: info.group,
            ids: RefCell::new(info.ids.clone()),
            log: RefCell::new(log),
            defrag_published: RefCell::new(Default::default()),
        });
    }
    Ok(out)
}

/// The body of a shard thread.
pub async fn shard_main(
    index: usize,
    node: Arc<NodeShared>,
    peers: Vec<mailbox::Sender<ShardMsg>>,
    inbox: mailbox::Receiver<ShardMsg>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let backends = open_backends(&node, index).await?;
    let srw = open_srw(&node, index)?;
    let listener = TcpListener::bind_reuseport(node.listen_addr, 1024)
        .map_err(|e| format!("cannot listen on {}: {e}", node.listen_addr))?;
    let _ = ready.send(Ok(()));
    let shard = Rc::new(Shard {
        index,
        node,
        backends,
        peers,
        pending: PendingCalls::default(),
        cluster: super::peers::Cluster::default(),
        srw,
        shutdown: Cell::new(false),
        shutdown_waiters: RefCell::new(Vec::new()),
        in_flight: Cell::new(0),
    });
    crate::runtime::spawn(cross::serve_mailbox(shard.clone(), inbox));
    super::upkeep::spawn(&shard);
    super::peers::start_joining(&shard);
    super::conn::accept_loop(shard.clone(), listener).await;
    if let Some(srw) = &shard.srw {
        srw.shutdown().await;
    }
    drain_and_sync(&shard).await;
    Ok(())
}

/// The srw state of shard `index` from `options.srw_config`, if set.
fn open_srw(node: &NodeShared, index: usize) -> Result<Option<crate::srw::ShardSrw>, String> {
    let Some(path) = &node.config.options.srw_config else {
        return Ok(None);
    };
    let cfg = crate::config::SrwConfig::load(path).map_err(|e| e.to_string())?;
    if index == 0 {
        for key in &cfg.ignored_keys {
            tracing::debug!(key = %key, "srw config: ignoring a Cocaine-only key");
        }
    }
    crate::srw::ShardSrw::new(&cfg, index, node.shard_count)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Wait (bounded) for in-flight requests, then make every log durable.
async fn drain_and_sync(shard: &Rc<Shard>) {
    for _ in 0..500 {
        if shard.in_flight.get() == 0 {
            break;
        }
        crate::runtime::sleep(Duration::from_millis(10)).await;
    }
    for b in &shard.backends {
        if let Some(log) = b.log() {
            if let Err(e) = log.sync().await {
                tracing::error!(
                    backend_id = b.backend_id,
                    shard = shard.index,
                    "final sync failed: {e}"
                );
            }
        }
    }
}
