//! The storage node (`dnet_ioserv`): start-up (config, ring points, shard layout), one
//! pinned thread per shard each running its own io_uring runtime, the monitor's HTTP side,
//! and clean shutdown on SIGINT/SIGTERM.
//!
//! This module owns wiring only. A shard's state is `shard` (its backends, and which one
//! serves a request: `Shard::backend_for`); its life (open, run its tasks, drain, sync) is
//! `run`. The path of one request on a served connection, top to bottom:
//!
//! ```text
//! run::shard_main ── conn::accept_loop ── conn (read loop, frame split, intake budget)
//!                                           │  prefetch::hint_batch (readahead hints)
//!                                           ▼
//!   READ/WRITE, key on this shard ──▶ dispatch::serve_now ──▶ forward::target (Local?)
//!        │                               └─▶ io_ops::read_now / write_now
//!        │                                     └─▶ shard.backend_for ─▶ cache_io? ─▶ blob
//!        │                                   frames written in place: outbox::serve_in_place
//!        ▼ otherwise: conn::dispatch_frame
//!   1. peers::intercept     REVERSE_LOOKUP, JOIN, AUTH, UPDATE_IDS (handshake, cluster)
//!   2. iterator::intercept  ITERATOR and its controls, SEND (server_send)
//!   3. forward::target      Peer ─▶ forward::forward (a link to the owning node)
//!                           Refuse ─▶ error ack
//!   4. dispatch::immediate  no backend: ROUTE_LIST, STATUS, MONITOR_STAT, BACKEND_STATUS,
//!                           EXEC without srw ─▶ answered at once (control, handshake)
//!   5. dispatch::start      backend commands: key on this shard ─▶ io_ops::*_key;
//!                           else dispatch::execute ─▶ cross::call to the owning shard
//!                           (io_ops::single_key there), control, exec, indexes
//!        ▼
//!   reply::Frames ─▶ outbox (queued in order) ─▶ conn's writer (one vectored write)
//! ```
//!
//! Layers point down: `conn` → `dispatch` → `io_ops` / `control` / `exec` / `indexes` →
//! `shard` / `cross` → `blob`, `cache`; `outbox` and `reply` sit below all of them.

mod cache_cell;
mod cache_io;
mod cache_sync;
mod conn;
mod control;
mod cross;
mod dial;
mod dispatch;
#[cfg(test)]
mod dispatch_tests;
mod exec;
mod forward;
mod forward_stream;
mod handshake;
mod indexes;
mod intake;
mod io_multi;
mod io_ops;
#[cfg(test)]
mod io_ops_tests;
mod io_read;
mod io_stream;
mod iterator;
mod join;
mod live;
mod metrics;
mod monitor;
mod notices;
mod outbox;
mod peers;
mod prefetch;
mod publish;
pub mod reply;
mod run;
mod server_send;
mod shard;
mod state;
mod stats;
mod stream_gate;
mod stream_in;
mod stream_out;
#[cfg(test)]
mod test_shard;
mod top_keys;
mod upkeep;

use crate::config::NodeConfig;
use crate::runtime::mailbox;
use state::{backend_state, BackendInfo, NodeShared, ShardCounters};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32};
use std::sync::Arc;
use std::time::Instant;

/// Mailbox slots per shard.
const MAILBOX_CAPACITY: usize = 16 * 1024;
/// Submission queue entries per shard ring.
const RING_ENTRIES: u32 = 1024;
/// How long start-up waits for a previous listener on our port to go away.
const LISTENER_GONE_WAIT_MS: u64 = 10_000;

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("{0}")]
    Config(String),
    #[error("io_uring is not usable here: {0}")]
    Runtime(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("shard {shard}: {message}")]
    Shard { shard: usize, message: String },
}

/// A running node: its shard threads and the address it listens on.
#[derive(Debug)]
pub struct RunningNode {
    pub listen_addr: SocketAddr,
    shared: Arc<NodeShared>,
    threads: Vec<std::thread::JoinHandle<Result<(), String>>>,
    stop: Vec<mailbox::Sender<cross::ShardMsg>>,
}

/// Asks a running node to stop, from any thread (a signal handler thread, a test).
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    stop: Vec<mailbox::Sender<cross::ShardMsg>>,
}

impl ShutdownHandle {
    /// Ask every shard to stop accepting, finish in-flight requests, sync and exit.
    pub fn request_shutdown(&self) {
        for s in &self.stop {
            let _ = s.try_send(cross::ShardMsg::Shutdown);
        }
    }
}

impl RunningNode {
    /// A handle that can stop this node from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            stop: self.stop.clone(),
        }
    }

    /// Wait for every shard to finish; the first shard error is returned.
    pub fn join(self) -> Result<(), NodeError> {
        let mut first = Ok(());
        for (i, t) in self.threads.into_iter().enumerate() {
            let res = t
                .join()
                .unwrap_or_else(|_| Err("shard thread panicked".into()));
            if let (Err(message), true) = (res, first.is_ok()) {
                first = Err(NodeError::Shard { shard: i, message });
            }
        }
        drop(self.shared);
        first
    }
}

/// Resolve the configured addresses, read or create every backend's ring points, check the
/// recorded shard layout, bind one listener per shard, and start the shard threads.
pub fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    crate::runtime::probe().map_err(|e| NodeError::Runtime(e.to_string()))?;
    let shared = shared_state(config)?;
    wait_until_no_listener(shared.listen_addr)?;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..shared.shard_count)
        .map(|_| mailbox::channel(MAILBOX_CAPACITY))
        .unzip();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut threads = Vec::with_capacity(shared.shard_count);
    crate::io::affinity::remember_node_cpus();
    for (index, inbox) in receivers.into_iter().enumerate() {
        let peers = senders.clone();
        threads.push(spawn_shard(
            index,
            shared.clone(),
            peers,
            inbox,
            ready_tx.clone(),
        )?);
    }
    drop(ready_tx);
    let running = RunningNode {
        listen_addr: shared.listen_addr,
        shared,
        threads,
        stop: senders,
    };
    if let Err(e) = wait_until_ready(&running, &ready_rx) {
        running.shutdown_handle().request_shutdown();
        let joined = running.join();
        // A shard's own start-up error names the cause; else a failed join says more.
        return Err(match e {
            NodeError::Config(_) => e,
            _ => joined.err().unwrap_or(e),
        });
    }
    monitor::spawn_http(&running.shared);
    Ok(running)
}

/// The node-wide state every shard reads: addresses, shard count, backends and their ring
/// points, counters, cache records and the frame budget.
fn shared_state(config: NodeConfig) -> Result<Arc<NodeShared>, NodeError> {
    let addresses = resolve_addresses(&config)?;
    let listen_addr = *addresses
        .first()
        .ok_or_else(|| NodeError::Config("options.address is empty".into()))?;
    let shard_count = config
        .options
        .shard_count
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let backends = prepare_backends(&config, shard_count)?;
    let cache_counters = cache_counters(&config, shard_count, backends.len());
    let frame_budget_bytes = crate::limits::INCOMPLETE_FRAMES_BYTES_MAX.max(
        config
            .options
            .frame_payload_bytes_max
            .saturating_add(crate::protocol::HEADER_SIZE_BYTES as u64),
    );
    let frame_budget =
        intake::FrameBudget::new(usize::try_from(frame_budget_bytes).unwrap_or(usize::MAX));
    Ok(Arc::new(NodeShared {
        cache_counters,
        counters: (0..shard_count)
            .map(|_| ShardCounters::new(config.options.monitor_top.as_ref(), config.backends.len()))
            .collect(),
        config,
        addresses,
        listen_addr,
        shard_count,
        backends,
        started: Instant::now(),
        read_only: AtomicBool::new(false),
        shutting_down: AtomicBool::new(false),
        iterators: iterator::Registry::default(),
        frame_budget: Arc::new(frame_budget),
        stream_budget: Arc::new(intake::FrameBudget::new(
            usize::try_from(crate::limits::STREAM_PIECES_BYTES_MAX).unwrap_or(usize::MAX),
        )),
    }))
}

/// Start the thread of shard `index`, pinned to its CPU, running [`run::shard_main`].
fn spawn_shard(
    index: usize,
    node: Arc<NodeShared>,
    peers: Vec<mailbox::Sender<cross::ShardMsg>>,
    inbox: mailbox::Receiver<cross::ShardMsg>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<std::thread::JoinHandle<Result<(), String>>, NodeError> {
    std::thread::Builder::new()
        .name(format!("shard-{index}"))
        .spawn(move || {
            crate::io::affinity::pin_current_thread(index);
            let fail = ready.clone();
            let res = crate::runtime::block_on(
                RING_ENTRIES,
                run::shard_main(index, node, peers, inbox, ready),
            )
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            if let Err(e) = &res {
                tracing::error!(shard = index, "shard stopped: {e}");
                let _ = fail.send(Err(e.clone()));
            }
            res
        })
        .map_err(|e| NodeError::Shard {
            shard: index,
            message: e.to_string(),
        })
}

/// Wait until every shard has opened its backends and bound its listener; the first
/// failure.
fn wait_until_ready(
    running: &RunningNode,
    ready: &std::sync::mpsc::Receiver<Result<(), String>>,
) -> Result<(), NodeError> {
    for _ in 0..running.shared.shard_count {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(NodeError::Config(message)),
            Err(_) => {
                return Err(NodeError::Shard {
                    shard: 0,
                    message: "ended before starting".into(),
                });
            }
        }
    }
    Ok(())
}

/// Refuse to share the port with a listener that is not ours. The shards bind with
/// `SO_REUSEPORT`, which would silently join another socket's group: a second node on the
/// same port, or the listener of a killed instance that the kernel keeps until its io_uring
/// is torn down (connections it takes in that window are reset unanswered). Wait a bounded
/// time for such a leftover to go, then fail with a clear error.
fn wait_until_no_listener(addr: SocketAddr) -> Result<(), NodeError> {
    if addr.port() == 0 {
        return Ok(());
    }
    let started = Instant::now();
    let mut warned = false;
    loop {
        match crate::runtime::tcp_port_has_no_listener(addr) {
            Ok(true) => {
                if warned {
                    tracing::info!(
                        waited_ms = started.elapsed().as_millis() as u64,
                        "{addr} is free now"
                    );
                }
                return Ok(());
            }
            Ok(false) => {}
            Err(source) => return Err(NodeError::Listen { addr, source }),
        }
        if started.elapsed().as_millis() as u64 >= LISTENER_GONE_WAIT_MS {
            // Reported once, by whoever handles the error (the address is in its text).
            let message = format!(
                "another socket still listens there after {LISTENER_GONE_WAIT_MS} ms \
                 (another node, or a killed one the kernel has not released yet)"
            );
            return Err(NodeError::Listen {
                addr,
                source: std::io::Error::new(std::io::ErrorKind::AddrInUse, message),
            });
        }
        if !warned {
            tracing::warn!(
                "another socket still listens on {addr} (a previous instance being torn \
                 down?); waiting up to {LISTENER_GONE_WAIT_MS} ms before listening"
            );
            warned = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn resolve_addresses(config: &NodeConfig) -> Result<Vec<SocketAddr>, NodeError> {
    config
        .options
        .address
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.resolve()
                .map_err(|e| NodeError::Config(format!("options.address[{i}]: {e}")))
        })
        .collect()
}

fn prepare_backends(
    config: &NodeConfig,
    shard_count: usize,
) -> Result<Vec<BackendInfo>, NodeError> {
    let mut out = Vec::with_capacity(config.backends.len());
    for (i, b) in config.backends.iter().enumerate() {
        let ids = crate::history::load_or_generate(&b.history)
            .map_err(|e| NodeError::Config(format!("backends[{i}].history: {e}")))?;
        let data_dir = b
            .data
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        crate::routing::record_shard_count(&data_dir, shard_count)
            .map_err(|e| NodeError::Config(format!("backends[{i}].data: {e}")))?;
        let state = if b.enable {
            backend_state::ENABLED
        } else {
            backend_state::DISABLED
        };
        out.push(BackendInfo {
            backend_id: b.backend_id,
            group: b.group,
            ids,
            state: AtomicI32::new(state),
            read_only: AtomicBool::new(b.read_only),
            defrag: Default::default(),
        });
    }
    Ok(out)
}

/// One cache-size record per shard and backend when `options.cache` is set.
fn cache_counters(
    config: &NodeConfig,
    shard_count: usize,
    backend_count: usize,
) -> Vec<Arc<crate::cache::CacheCounters>> {
    let Some(cache) = &config.options.cache else {
        return Vec::new();
    };
    let pages = cache.pages_proportions.len();
    (0..shard_count)
        .flat_map(|shard| (0..backend_count).map(move |_| shard))
        .map(|shard| Arc::new(crate::cache::CacheCounters::new(shard, pages)))
        .collect()
}
