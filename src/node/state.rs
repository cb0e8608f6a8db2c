//! Node-wide facts shared by every shard: what was configured and resolved at start-up,
//! plus per-shard counters that only their own shard writes (relaxed atomics, no locks).

use super::top_keys::TopKeys;
use crate::config::{NodeConfig, TopSettings};
use crate::key::RawId;
use crate::protocol::command;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Backend states as BACKEND_STATUS reports them.
pub mod backend_state {
    pub const DISABLED: i32 = 0;
    pub const ENABLED: i32 = 1;
}

/// Once a shard's top-keys table is full, one IO request in this many is counted in it.
pub const TOP_SAMPLE_ONE_IN: u64 = 64;

pub use super::stats::{add_own, COMMAND_SLOTS};

/// Counters of one shard. Written by that shard only; aligned to its own cache lines so
/// that shards counting side by side do not invalidate each other's lines.
#[derive(Debug)]
#[repr(align(128))]
pub struct ShardCounters {
    pub commands: [AtomicU64; COMMAND_SLOTS],
    pub errors: AtomicU64,
    pub connections: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Keys this shard served as their owner (single-key, bulk and range commands).
    pub keys_served: AtomicU64,
    /// Recently hot keys, when `monitor.top` is configured; locked by this shard per IO
    /// and by the monitor to copy.
    pub top_keys: Option<Mutex<TopKeys>>,
    /// The top-keys table is half full: requests are sampled (see [`Self::note_key`]).
    top_full: AtomicBool,
    /// xorshift state choosing the sampled requests.
    top_sample_state: AtomicU64,
    /// Latency, errors by status, queue depth, CPU time and backend gauges.
    pub stats: super::stats::ShardStats,
}

impl ShardCounters {
    /// Zeroed counters; a top-keys table only with `top` settings.
    pub fn new(top: Option<&TopSettings>, backend_count: usize) -> Self {
        Self {
            commands: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            keys_served: AtomicU64::new(0),
            top_keys: top.map(|t| Mutex::new(TopKeys::new(t))),
            top_full: AtomicBool::new(false),
            top_sample_state: AtomicU64::new(0x2545_F491_4F6C_DD1D),
            stats: super::stats::ShardStats::new(backend_count),
        }
    }
}

impl ShardCounters {
    /// The start time of a request of `cmd` when it is one of those timed (one in
    /// [`super::stats::TIMED_ONE_IN`], chosen by the command's count before this request).
    pub fn timed(&self, cmd: i32) -> Option<Instant> {
        let slot = usize::try_from(cmd)
            .ok()
            .and_then(|i| self.commands.get(i))?;
        (slot.load(Ordering::Relaxed) % super::stats::TIMED_ONE_IN == 0).then(Instant::now)
    }

    pub fn count_command(&self, cmd: i32) {
        if let Some(slot) = usize::try_from(cmd).ok().and_then(|i| self.commands.get(i)) {
            add_own(slot, 1);
        }
    }

    /// Count `size_bytes` moved for `id` in the top keys (nothing without `monitor.top`).
    /// Only this shard writes the table; the monitor reads it now and then. The shard never
    /// waits for it: while the monitor holds it, the sample is dropped (`try_lock`). While
    /// the table is under half full every request is counted; once it is half full one
    /// request in [`TOP_SAMPLE_ONE_IN`], drawn at random, is, standing for that many (the
    /// top is a statistic of heavy keys, not an exact count).
    pub fn note_key(&self, id: &RawId, size_bytes: u64) {
        let Some(top_keys) = &self.top_keys else {
            return;
        };
        let mut times = 1;
        if self.top_full.load(Ordering::Relaxed) {
            // Drawn at random, not every n-th: a workload that repeats with a period
            // dividing n would else never, or always, be seen. Only this shard writes the
            // state: a load and a store, no read-modify-write.
            let x = super::top_keys::xorshift(self.top_sample_state.load(Ordering::Relaxed));
            self.top_sample_state.store(x, Ordering::Relaxed);
            if !x.is_multiple_of(TOP_SAMPLE_ONE_IN) {
                return;
            }
            times = TOP_SAMPLE_ONE_IN;
        }
        if let Ok(mut top) = top_keys.try_lock() {
            top.record_times(*id, size_bytes, times, Instant::now());
            self.top_full.store(top.is_crowded(), Ordering::Relaxed);
        }
    }

    /// `{"WRITE": n, ...}` for the commands seen so far.
    pub fn commands_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        for (i, c) in self.commands.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            let name = i32::try_from(i).ok().and_then(command::name);
            if let (true, Some(name)) = (n > 0, name) {
                map.insert(name.to_string(), n.into());
            }
        }
        map
    }
}

/// One configured backend as every shard sees it.
#[derive(Debug)]
pub struct BackendInfo {
    pub backend_id: u32,
    pub group: u32,
    /// Ring points at start-up (shards keep their own copy for SET_IDS).
    pub ids: Vec<RawId>,
    pub state: AtomicI32,
    pub read_only: AtomicBool,
    /// Defragmentation over every shard's log of this backend.
    pub defrag: DefragShared,
}

/// What the shards publish of their logs' defragmentation, for BACKEND_STATUS and the
/// monitor (each shard adds the change since it last published).
#[derive(Debug, Default)]
pub struct DefragShared {
    /// Shards whose pass is running or asked for.
    pub active_shards: AtomicU32,
    /// `defrag_state` of the pass last started.
    pub level_state: AtomicU32,
    pub runs: AtomicU64,
    pub files_rewritten: AtomicU64,
    pub bytes_freed: AtomicU64,
    /// Sealed files whose removed share reached `defrag_percentage`.
    pub files_wanting: AtomicU64,
}

impl DefragShared {
    /// `dnet_backend_status.defrag_state`: the running level, or 0.
    pub fn state(&self) -> u32 {
        if self.active_shards.load(Ordering::Relaxed) > 0 {
            self.level_state.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Apply one shard's change from `last` to `now`.
    pub fn publish(&self, last: &mut crate::blob::DefragStatus, now: crate::blob::DefragStatus) {
        let add = |a: &AtomicU64, old: u64, new: u64| {
            if new >= old {
                a.fetch_add(new - old, Ordering::Relaxed);
            } else {
                a.fetch_sub(old - new, Ordering::Relaxed);
            }
        };
        add(&self.runs, last.runs, now.runs);
        add(
            &self.files_rewritten,
            last.files_rewritten,
            now.files_rewritten,
        );
        add(&self.bytes_freed, last.bytes_freed, now.bytes_freed);
        add(&self.files_wanting, last.files_wanting, now.files_wanting);
        match (last.state != 0, now.state != 0) {
            (false, true) => {
                self.level_state.store(now.state, Ordering::Relaxed);
                self.active_shards.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.active_shards.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        *last = now;
    }
}

/// Everything a shard needs to know about the node it belongs to.
#[derive(Debug)]
pub struct NodeShared {
    pub config: NodeConfig,
    /// Advertised addresses, as clients dial them.
    pub addresses: Vec<SocketAddr>,
    pub listen_addr: SocketAddr,
    pub shard_count: usize,
    pub backends: Vec<BackendInfo>,
    pub counters: Vec<ShardCounters>,
    pub started: Instant,
    pub read_only: AtomicBool,
    pub shutting_down: AtomicBool,
    /// Running ITERATORs, so PAUSE/CONTINUE/CANCEL reach them from any connection.
    pub iterators: super::running_iterators::Registry,
    /// Cache sizes per shard and backend (`shard * backends + backend`), each written by its
    /// shard; empty without `options.cache`.
    pub cache_counters: Vec<std::sync::Arc<crate::cache::CacheCounters>>,
    /// Bytes held for incomplete large frames, shared by every connection of the node.
    pub frame_budget: std::sync::Arc<super::intake::FrameBudget>,
    /// Pieces of streamed WRITEs held by all connections.
    pub stream_budget: std::sync::Arc<super::intake::FrameBudget>,
}

impl NodeShared {
    /// The address replies name as the record's node: the first configured one.
    pub fn reply_addr(&self) -> SocketAddr {
        self.addresses.first().copied().unwrap_or(self.listen_addr)
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    pub fn backend_index(&self, backend_id: u32) -> Option<usize> {
        self.backends
            .iter()
            .position(|b| b.backend_id == backend_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_read_often_among_many_cold_keys_tops_the_sampled_table_with_about_its_bytes() {
        let counters = ShardCounters::new(Some(&TopSettings::default()), 0);
        let hot = RawId::from_key(b"hot");
        let (rounds, value_bytes) = (40_000u64, 100u64);
        for i in 0..rounds {
            counters.note_key(&RawId::from_key(&i.to_le_bytes()), value_bytes);
            counters.note_key(&RawId::from_key(&(i + rounds).to_le_bytes()), value_bytes);
            counters.note_key(
                &RawId::from_key(&(i + 2 * rounds).to_le_bytes()),
                value_bytes,
            );
            counters.note_key(&hot, value_bytes);
        }
        let top = counters.top_keys.as_ref().unwrap().lock().unwrap();
        let mut keys = top.snapshot(Instant::now());
        keys.sort_by_key(|(_, size, _)| std::cmp::Reverse(*size));
        let (first, size, frequency) = keys[0];
        assert_eq!(first, hot, "the hot key is the heaviest");
        // Sampled: the counts stand for the requests they were taken from.
        let truth = rounds * value_bytes;
        assert!(
            size > truth / 2 && size < truth * 2,
            "{size} bytes against {truth}"
        );
        assert!(
            frequency > rounds / 2 && frequency < rounds * 2,
            "{frequency}"
        );
        assert!(
            keys[1].1 < size / 10,
            "cold keys weigh little: {:?}",
            keys[1]
        );
    }
}
