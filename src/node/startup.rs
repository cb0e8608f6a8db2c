//! What the node settles before its shards start: the resolved addresses, the shard
//! count, every backend's ring points and recorded shard layout, the counters and cache
//! records of every shard (together the read-mostly [`NodeShared`]), and that no other
//! socket already listens on the node's port.

use super::state::{backend_state, BackendInfo, NodeShared, ShardCounters};
use super::{intake, running_iterators, NodeError};
use crate::config::NodeConfig;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32};
use std::sync::Arc;
use std::time::Instant;

/// How long start-up waits for a previous listener on our port to go away.
const LISTENER_GONE_WAIT_MS: u64 = 10_000;

/// The node-wide state every shard reads: addresses, shard count, backends and their ring
/// points, counters, cache records and the frame budget.
pub(super) fn shared_state(config: NodeConfig) -> Result<Arc<NodeShared>, NodeError> {
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
        iterators: running_iterators::Registry::default(),
        frame_budget: Arc::new(frame_budget),
        stream_budget: Arc::new(intake::FrameBudget::new(
            usize::try_from(crate::limits::STREAM_PIECES_BYTES_MAX).unwrap_or(usize::MAX),
        )),
    }))
}

/// Refuse to share the port with a listener that is not ours. The shards bind with
/// `SO_REUSEPORT`, which would silently join another socket's group: a second node on the
/// same port, or the listener of a killed instance that the kernel keeps until its io_uring
/// is torn down (connections it takes in that window are reset unanswered). Wait a bounded
/// time for such a leftover to go, then fail with a clear error.
pub(super) fn wait_until_no_listener(addr: SocketAddr) -> Result<(), NodeError> {
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
