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
//!   READ/WRITE, key on this shard ──▶ dispatch::serve_now ──▶ forward::target (Local?
//!        │                               │       cluster::owner_point, shard's backends)
//!        │                               └─▶ io_ops::read_now / write_now
//!        │                                     └─▶ shard.backend_for ─▶ cache_io? ─▶ blob
//!        │                                   frames written in place: outbox::serve_in_place
//!        ▼ otherwise: conn::dispatch_frame
//!   1. peers::intercept     REVERSE_LOOKUP, JOIN, AUTH, UPDATE_IDS (handshake, cluster)
//!   2. iterator::intercept  ITERATOR and its controls; server_send::intercept SEND
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
//! Layers point down: a file imports from the rows below its own, and inside a row only
//! from the caller to the callee, never back (`join` → `peers` → `notices` → `cross`,
//! `stream_in` → `io_stream` → `io_ops` → `cache_io` → `io_read` → `io_common`,
//! `monitor_http` → `live` → `monitor`). `reply`, `stats` and `intake` are below every row.
//!
//! ```text
//! wiring      mod, startup, run, monitor_http, upkeep, publish
//! connection  conn, stream_in, forward_stream, stream_socket, stream_out
//! commands    peers, join, server_send, iterator, dispatch, control, exec, indexes,
//!             handshake, notices, io_ops (io_multi, io_stream, cache_io, io_read,
//!             io_common),
//!             forward, dial, cross, cache_sync, prefetch, monitor, live, metrics
//! the shard   shard: its backends (blob logs, cache cells), mailbox senders
//! its data    mail (messages, pending calls), cluster (peer table, routes, links),
//!             link (one peer link's waiters), outbox (and its writer task)
//! node-wide   state (NodeShared, counters), running_iterators, top_keys, cache_cell
//! ```
//!
//! No module imports one above it: `scripts/module_cycles.py src/node` finds no cycle, and
//! the test run keeps it so.

mod cache_cell;
mod cache_io;
mod cache_sync;
mod cluster;
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
mod io_common;
mod io_multi;
mod io_ops;
#[cfg(test)]
mod io_ops_tests;
mod io_read;
mod io_stream;
mod iterator;
mod join;
mod link;
mod live;
mod mail;
mod metrics;
mod monitor;
mod monitor_http;
mod notices;
mod outbox;
mod peers;
mod prefetch;
mod publish;
pub mod reply;
mod run;
mod running_iterators;
mod server_send;
mod shard;
mod startup;
mod state;
mod stats;
mod stream_gate;
mod stream_in;
mod stream_out;
mod stream_socket;
#[cfg(test)]
mod test_shard;
mod top_keys;
mod upkeep;

use crate::config::NodeConfig;
use crate::runtime::mailbox;
use state::NodeShared;
use std::net::SocketAddr;
use std::sync::Arc;

/// Mailbox slots per shard.
const MAILBOX_CAPACITY: usize = 16 * 1024;
/// Submission queue entries per shard ring.
const RING_ENTRIES: u32 = 1024;

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
    let shared = startup::shared_state(config)?;
    startup::wait_until_no_listener(shared.listen_addr)?;
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
    monitor_http::spawn_http(&running.shared);
    Ok(running)
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
