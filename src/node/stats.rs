//! Per-shard request statistics beyond the original's counters, for the dashboard and
//! `/metrics`: a latency histogram and error counts by status per command, the shard's
//! queue depth and CPU time, and per-backend gauges the shard publishes once a second.
//!
//! Every field is written by its own shard only (relaxed load + store, see
//! [`super::state::add_own`]) and read by the monitor thread. Latency is measured on one
//! request in [`TIMED_ONE_IN`] per command: two clock reads on every request would cost
//! several per cent of a small READ's CPU time.

use crate::protocol::errno;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Highest command number counted per shard.
pub const COMMAND_SLOTS: usize = 32;

/// Add `n` to a counter that only the calling shard writes: a load and a store, not a
/// locked read-modify-write (readers, like the monitor, see one value or the next).
pub fn add_own(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// One request in this many (per command and shard) has its latency measured.
pub const TIMED_ONE_IN: u64 = 16;

/// Upper bounds of the latency buckets, in microseconds; one more bucket holds the rest.
pub const LATENCY_BOUNDS_US: [u64; 19] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Buckets per command: the bounds plus the overflow bucket.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// The error statuses counted by name; any other lands in the last slot, `other`.
pub const STATUS_NAMES: [(i32, &str); 8] = [
    (errno::ENOENT, "ENOENT"),
    (errno::EIO, "EIO"),
    (errno::ENXIO, "ENXIO"),
    (errno::EINVAL, "EINVAL"),
    (errno::ENOSPC, "ENOSPC"),
    (errno::EROFS, "EROFS"),
    (errno::ETIMEDOUT, "ETIMEDOUT"),
    (i32::MIN, "other"),
];

/// Latency and errors of one command on one shard.
#[derive(Debug)]
pub struct CommandLatency {
    pub buckets: [AtomicU64; LATENCY_BUCKETS],
    pub sum_us: AtomicU64,
    pub errors: [AtomicU64; STATUS_NAMES.len()],
}

impl Default for CommandLatency {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// What one shard knows of one backend, published once a second.
#[derive(Debug, Default)]
pub struct BackendGauges {
    /// Bytes in the data files (records, removed ones included).
    pub disk_bytes: AtomicU64,
    /// Bytes of removed (dead) records, reclaimed by defragmentation.
    pub removed_bytes: AtomicU64,
    pub records: AtomicU64,
    pub removed_records: AtomicU64,
    pub files: AtomicU64,
    pub defragmenting: AtomicBool,
}

/// One app's workers on one shard, published once a second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppGauges {
    pub name: String,
    pub running: bool,
    pub workers: usize,
    pub busy_workers: usize,
    pub pool_capacity: usize,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub served: u64,
    pub workers_lost: u64,
}

/// A shard's statistics beyond the command counts.
#[derive(Debug)]
pub struct ShardStats {
    pub commands: [CommandLatency; COMMAND_SLOTS],
    /// Requests started on this shard and not yet answered.
    pub queue_depth: AtomicU64,
    /// CPU time of the shard's thread, in microseconds (published once a second).
    pub cpu_us: AtomicU64,
    /// Connections open on this shard now.
    pub open_connections: AtomicU64,
    pub backends: Vec<BackendGauges>,
    /// Apps with workers on this shard; the shard replaces the list once a second.
    pub apps: Mutex<Vec<AppGauges>>,
    /// The cluster as this shard sees it (shard 0 only): every node, this one first, with
    /// its addresses and its backends' ring points; replaced once a second.
    pub cluster: Mutex<Vec<NodeView>>,
}

/// One node of the cluster: its addresses and its backends' ring points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeView {
    pub addrs: Vec<std::net::SocketAddr>,
    pub local: bool,
    pub backends: Vec<crate::protocol::BackendIds>,
}

impl ShardStats {
    pub fn new(backend_count: usize) -> Self {
        Self {
            commands: std::array::from_fn(|_| CommandLatency::default()),
            queue_depth: AtomicU64::new(0),
            cpu_us: AtomicU64::new(0),
            open_connections: AtomicU64::new(0),
            backends: (0..backend_count)
                .map(|_| BackendGauges::default())
                .collect(),
            apps: Mutex::new(Vec::new()),
            cluster: Mutex::new(Vec::new()),
        }
    }

    /// Count one latency sample of command `cmd`.
    pub fn record_latency(&self, cmd: i32, started: Instant) {
        let Some(slot) = usize::try_from(cmd).ok().and_then(|i| self.commands.get(i)) else {
            return;
        };
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        if let Some(b) = slot.buckets.get(bucket) {
            add_own(b, 1);
        }
        add_own(&slot.sum_us, us);
    }

    /// Count an error answer of command `cmd`.
    pub fn record_error(&self, cmd: i32, status: i32) {
        let Some(slot) = usize::try_from(cmd).ok().and_then(|i| self.commands.get(i)) else {
            return;
        };
        let class = STATUS_NAMES
            .iter()
            .position(|(s, _)| *s == status)
            .unwrap_or(STATUS_NAMES.len() - 1);
        if let Some(c) = slot.errors.get(class) {
            add_own(c, 1);
        }
    }

    pub fn connection_opened(&self) {
        add_own(&self.open_connections, 1);
    }

    pub fn connection_closed(&self) {
        let n = self.open_connections.load(Ordering::Relaxed);
        self.open_connections
            .store(n.saturating_sub(1), Ordering::Relaxed);
    }

    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.store(depth as u64, Ordering::Relaxed);
    }
}

/// The `q` quantile (0..1) of a latency histogram, in microseconds, interpolated inside
/// its bucket; `None` without samples.
pub fn quantile_us(buckets: &[u64; LATENCY_BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut seen = 0u64;
    for (i, n) in buckets.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let low = if i == 0 { 0 } else { LATENCY_BOUNDS_US[i - 1] };
            let high = LATENCY_BOUNDS_US.get(i).copied().unwrap_or(low * 2);
            let within = ((rank - seen as f64) / *n as f64).clamp(0.0, 1.0);
            return Some(low as f64 + within * (high - low) as f64);
        }
        seen += n;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_fall_inside_the_bucket_holding_their_rank() {
        let mut buckets = [0u64; LATENCY_BUCKETS];
        buckets[3] = 90; // 50..100 us
        buckets[7] = 10; // 1..2.5 ms
        let p50 = quantile_us(&buckets, 0.5).unwrap();
        assert!((50.0..=100.0).contains(&p50), "{p50}");
        let p99 = quantile_us(&buckets, 0.99).unwrap();
        assert!((1000.0..=2500.0).contains(&p99), "{p99}");
        assert_eq!(quantile_us(&[0; LATENCY_BUCKETS], 0.5), None);
    }

    #[test]
    fn errors_are_counted_by_status_name_and_the_rest_as_other() {
        let stats = ShardStats::new(0);
        stats.record_error(1, errno::ENOENT);
        stats.record_error(1, errno::ENOENT);
        stats.record_error(1, -999);
        let errors = &stats.commands[1].errors;
        assert_eq!(errors[0].load(Ordering::Relaxed), 2);
        assert_eq!(errors[STATUS_NAMES.len() - 1].load(Ordering::Relaxed), 1);
    }
}
