//! The storage node (`dnet_ioserv`): start-up (config, ring points, shard layout), one
//! pinned thread per shard each running its own io_uring runtime, the monitor's HTTP side,
//! and clean shutdown on SIGINT/SIGTERM.
//!
//! This module owns wiring only; data lives in the shards (`shard`), requests are served by
//! `conn` → `dispatch` → `io_ops` / `control` / `handshake`.

mod conn;
mod control;
mod cross;
mod dial;
mod dispatch;
mod exec;
mod forward;
mod handshake;
mod indexes;
mod io_ops;
mod iterator;
mod join;
mod monitor;
mod peers;
mod prefetch;
pub mod reply;
mod server_send;
mod shard;
mod state;
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
    wait_until_no_listener(listen_addr)?;
    let shared = Arc::new(NodeShared {
        counters: (0..shard_count)
            .map(|_| ShardCounters::new(config.options.monitor_top.as_ref()))
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
    });
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..shard_count)
        .map(|_| mailbox::channel(MAILBOX_CAPACITY))
        .unzip();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut threads = Vec::with_capacity(shard_count);
    crate::io::affinity::remember_node_cpus();
    for (index, inbox) in receivers.into_iter().enumerate() {
        let node = shared.clone();
        let peers = senders.clone();
        let ready = ready_tx.clone();
        let t = std::thread::Builder::new()
            .name(format!("shard-{index}"))
            .spawn(move || {
                crate::io::affinity::pin_current_thread(index);
                let fail = ready.clone();
                let res = crate::runtime::block_on(
                    RING_ENTRIES,
                    shard::shard_main(index, node, peers, inbox, ready),
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
            })?;
        threads.push(t);
    }
    drop(ready_tx);
    let running = RunningNode {
        listen_addr,
        shared,
        threads,
        stop: senders,
    };
    for _ in 0..shard_count {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                running.shutdown_handle().request_shutdown();
                let _ = running.join();
                return Err(NodeError::Config(message));
            }
            Err(_) => {
                running.shutdown_handle().request_shutdown();
                running.join()?;
                return Err(NodeError::Shard {
                    shard: 0,
                    message: "ended before starting".into(),
                });
            }
        }
    }
    monitor::spawn_http(&running.shared);
    Ok(running)
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
            let message = format!(
                "another socket still listens on {addr} after {LISTENER_GONE_WAIT_MS} ms \
                 (another node, or a killed one the kernel has not released yet)"
            );
            tracing::error!("{message}");
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
