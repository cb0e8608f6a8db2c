//! Once a second each shard publishes what only it can read (its thread's CPU time, its
//! blob logs' sizes, its apps' workers, and on shard 0 the cluster it sees) into its
//! [`super::stats::ShardStats`], where the monitor thread reads it. The shard never waits
//! for the monitor: a list the monitor holds at that moment is left for the next second.

use super::shard::Shard;
use super::stats::{AppGauges, NodeView};
use crate::protocol::BackendIds;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often a shard publishes.
pub const PUBLISH_PERIOD: Duration = Duration::from_secs(1);

/// Start the shard's publishing task.
pub fn spawn(shard: &Rc<Shard>) {
    let s = shard.clone();
    crate::runtime::spawn(async move {
        while !s.is_shutting_down() {
            publish(&s);
            crate::runtime::sleep(PUBLISH_PERIOD).await;
        }
    });
}

/// Publish once (also called by the first tick, so a fresh node shows its state at once).
pub fn publish(shard: &Shard) {
    let stats = &shard.counters().stats;
    let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let cpu_us = u64::try_from(cpu.tv_sec).unwrap_or(0) * 1_000_000
        + u64::try_from(cpu.tv_nsec).unwrap_or(0) / 1_000;
    stats.cpu_us.store(cpu_us, Ordering::Relaxed);
    for (backend, gauges) in shard.backends.iter().zip(&stats.backends) {
        let Some(log) = backend.log() else {
            gauges.disk_bytes.store(0, Ordering::Relaxed);
            gauges.removed_bytes.store(0, Ordering::Relaxed);
            gauges.records.store(0, Ordering::Relaxed);
            gauges.removed_records.store(0, Ordering::Relaxed);
            gauges.files.store(0, Ordering::Relaxed);
            gauges.defragmenting.store(false, Ordering::Relaxed);
            continue;
        };
        let b = log.stats();
        gauges.disk_bytes.store(b.bytes, Ordering::Relaxed);
        gauges
            .removed_bytes
            .store(b.removed_bytes, Ordering::Relaxed);
        gauges.records.store(b.records, Ordering::Relaxed);
        gauges.removed_records.store(b.removed, Ordering::Relaxed);
        gauges.files.store(b.files, Ordering::Relaxed);
        gauges
            .defragmenting
            .store(b.defragmenting, Ordering::Relaxed);
    }
    if let Some(srw) = &shard.srw {
        let apps: Vec<AppGauges> = srw.apps().iter().map(|p| app_gauges(shard, p)).collect();
        if let Ok(mut slot) = stats.apps.try_lock() {
            *slot = apps;
        }
    }
    if shard.index == 0 {
        let view = cluster_view(shard);
        if let Ok(mut slot) = stats.cluster.try_lock() {
            *slot = view;
        }
    }
}

fn app_gauges(shard: &Shard, pool: &crate::srw::pool::AppPool) -> AppGauges {
    let info = crate::srw::info::ShardAppInfo::of(shard.index, Some(pool));
    AppGauges {
        name: pool.name.clone(),
        running: info.running,
        workers: info.loads.len(),
        busy_workers: info.loads.iter().filter(|l| **l > 0).count(),
        pool_capacity: info.pool_capacity,
        queue_depth: info.queue_depth,
        queue_capacity: info.queue_capacity,
        served: info.served,
        workers_lost: pool.workers_lost.get(),
    }
}

/// This node (its backends' current ring points) and every peer it knows.
fn cluster_view(shard: &Shard) -> Vec<NodeView> {
    let local = NodeView {
        addrs: shard.node.addresses.clone(),
        local: true,
        backends: shard
            .backends
            .iter()
            .map(|b| BackendIds {
                backend_id: i32::try_from(b.backend_id).unwrap_or(i32::MAX),
                group_id: i32::try_from(b.group).unwrap_or(i32::MAX),
                flags: 0,
                ids: b.ids.borrow().clone(),
            })
            .collect(),
    };
    let mut out = vec![local];
    out.extend(
        shard
            .cluster
            .snapshot()
            .into_iter()
            .map(|(addrs, backends)| NodeView {
                addrs,
                local: false,
                backends,
            }),
    );
    out
}
