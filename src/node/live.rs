//! `GET /live` on the monitor port: everything the dashboard draws, in one JSON document.
//! The original's categories are inside it unchanged (`io`, `cache`, `backends`, `top`,
//! `procfs`, ...); our additions are:
//!
//! - `latency_bounds_us`: the upper bounds of the latency buckets (one more bucket holds
//!   the rest);
//! - `command_stats`: per command, the count, the errors by status name, and the latency
//!   histogram of the sampled requests (`latency_buckets`, `latency_sum_us`, `timed`) with
//!   its `p50_us` / `p99_us` since start (the page computes its windows from the deltas);
//! - `shard_stats`: per shard, requests, keys served, queue depth (requests started and not
//!   answered), the thread's CPU time, connections and bytes;
//! - `backend_usage`: per backend, disk bytes against live bytes, records, files and the
//!   defrag state, with the file system's size and free space;
//! - `apps`: the server-side apps, their workers, queue and lost workers, summed over shards;
//! - `cluster`: this node and its peers, with their backends' ring points as fractions of
//!   the ring (the first 8 bytes of the point over 2^64).

use super::monitor::{category, monitor_json};
use super::state::NodeShared;
use super::stats::{quantile_us, LATENCY_BOUNDS_US, LATENCY_BUCKETS, STATUS_NAMES};
use crate::protocol::command;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// The `/live` document.
pub fn live_json(node: &NodeShared) -> Value {
    let mut doc = monitor_json(node, category::ALL);
    if let Some(map) = doc.as_object_mut() {
        map.insert("latency_bounds_us".into(), json!(LATENCY_BOUNDS_US));
        map.insert("command_stats".into(), command_stats(node));
        map.insert("shard_stats".into(), shard_stats(node));
        map.insert("backend_usage".into(), backend_usage(node));
        map.insert("apps".into(), apps(node));
        map.insert("cluster".into(), cluster(node));
    }
    doc
}

fn command_stats(node: &NodeShared) -> Value {
    let mut out = Map::new();
    for cmd in 0..super::state::COMMAND_SLOTS {
        let Some(name) = i32::try_from(cmd).ok().and_then(command::name) else {
            continue;
        };
        let mut count = 0u64;
        let mut buckets = [0u64; LATENCY_BUCKETS];
        let mut sum_us = 0u64;
        let mut errors = [0u64; STATUS_NAMES.len()];
        for c in &node.counters {
            count += c.commands[cmd].load(Ordering::Relaxed);
            let slot = &c.stats.commands[cmd];
            for (total, b) in buckets.iter_mut().zip(&slot.buckets) {
                *total += b.load(Ordering::Relaxed);
            }
            sum_us += slot.sum_us.load(Ordering::Relaxed);
            for (total, e) in errors.iter_mut().zip(&slot.errors) {
                *total += e.load(Ordering::Relaxed);
            }
        }
        if count == 0 && errors.iter().all(|e| *e == 0) {
            continue;
        }
        let errors: Map<String, Value> = STATUS_NAMES
            .iter()
            .zip(errors)
            .filter(|(_, n)| *n > 0)
            .map(|((_, name), n)| ((*name).to_string(), n.into()))
            .collect();
        out.insert(
            name.to_string(),
            json!({
                "count": count,
                "errors": errors,
                "timed": buckets.iter().sum::<u64>(),
                "latency_buckets": buckets,
                "latency_sum_us": sum_us,
                "p50_us": quantile_us(&buckets, 0.5),
                "p99_us": quantile_us(&buckets, 0.99),
            }),
        );
    }
    out.into()
}

fn shard_stats(node: &NodeShared) -> Value {
    node.counters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let requests: u64 = c.commands.iter().map(|n| n.load(Ordering::Relaxed)).sum();
            json!({
                "shard": i,
                "requests": requests,
                "keys_served": c.keys_served.load(Ordering::Relaxed),
                "queue_depth": c.stats.queue_depth.load(Ordering::Relaxed),
                "cpu_us": c.stats.cpu_us.load(Ordering::Relaxed),
                "connections": c.connections.load(Ordering::Relaxed),
                "open_connections": c.stats.open_connections.load(Ordering::Relaxed),
                "bytes_in": c.bytes_in.load(Ordering::Relaxed),
                "bytes_out": c.bytes_out.load(Ordering::Relaxed),
                "errors": c.errors.load(Ordering::Relaxed),
            })
        })
        .collect()
}

fn backend_usage(node: &NodeShared) -> Value {
    node.backends
        .iter()
        .enumerate()
        .map(|(b, info)| {
            let (mut disk, mut removed, mut records, mut removed_records, mut files) =
                (0u64, 0u64, 0u64, 0u64, 0u64);
            let mut defragmenting = false;
            for c in &node.counters {
                let Some(g) = c.stats.backends.get(b) else {
                    continue;
                };
                disk += g.disk_bytes.load(Ordering::Relaxed);
                removed += g.removed_bytes.load(Ordering::Relaxed);
                records += g.records.load(Ordering::Relaxed);
                removed_records += g.removed_records.load(Ordering::Relaxed);
                files += g.files.load(Ordering::Relaxed);
                defragmenting |= g.defragmenting.load(Ordering::Relaxed);
            }
            let fs = node
                .config
                .backends
                .get(b)
                .and_then(|cfg| cfg.data.parent().map(std::path::Path::to_path_buf))
                .and_then(|dir| rustix::fs::statvfs(&dir).ok());
            json!({
                "backend_id": info.backend_id,
                "group": info.group,
                "enabled": info.state.load(Ordering::Relaxed) == super::state::backend_state::ENABLED,
                "read_only": info.read_only.load(Ordering::Relaxed),
                "disk_bytes": disk,
                "live_bytes": disk.saturating_sub(removed),
                "removed_bytes": removed,
                "records": records,
                "removed_records": removed_records,
                "files": files,
                "defrag_state": if defragmenting { "in-progress" } else { "not-started" },
                "fs_total_bytes": fs.as_ref().map(|s| s.f_blocks * s.f_frsize),
                "fs_avail_bytes": fs.as_ref().map(|s| s.f_bavail * s.f_frsize),
            })
        })
        .collect()
}

fn apps(node: &NodeShared) -> Value {
    let mut merged: BTreeMap<String, super::stats::AppGauges> = BTreeMap::new();
    for c in &node.counters {
        let Ok(apps) = c.stats.apps.lock() else {
            continue;
        };
        for a in apps.iter() {
            let m = merged.entry(a.name.clone()).or_default();
            m.name.clone_from(&a.name);
            m.running |= a.running;
            m.workers += a.workers;
            m.busy_workers += a.busy_workers;
            m.pool_capacity += a.pool_capacity;
            m.queue_depth += a.queue_depth;
            m.queue_capacity += a.queue_capacity;
            m.served += a.served;
            m.workers_lost += a.workers_lost;
        }
    }
    merged
        .values()
        .map(|a| {
            json!({
                "name": a.name, "running": a.running, "workers": a.workers,
                "busy_workers": a.busy_workers, "pool_capacity": a.pool_capacity,
                "queue_depth": a.queue_depth, "queue_capacity": a.queue_capacity,
                "served": a.served, "workers_lost": a.workers_lost,
            })
        })
        .collect()
}

/// A ring point's place on the ring, 0..1: its first 8 bytes over 2^64.
fn ring_fraction(id: &crate::key::RawId) -> f64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&id.0[..8]);
    u64::from_be_bytes(first) as f64 / 2f64.powi(64)
}

fn cluster(node: &NodeShared) -> Value {
    let Some(view) = node
        .counters
        .first()
        .and_then(|c| c.stats.cluster.lock().ok())
    else {
        return json!({ "nodes": [] });
    };
    let nodes: Vec<Value> = view
        .iter()
        .map(|n| {
            let backends: Vec<Value> = n
                .backends
                .iter()
                .map(|b| {
                    json!({
                        "backend_id": b.backend_id,
                        "group": b.group_id,
                        "points": b.ids.len(),
                        "ring": b.ids.iter().map(ring_fraction).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "address": n.addrs.first().map(ToString::to_string),
                "addresses": n.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "local": n.local,
                "backends": backends,
            })
        })
        .collect();
    json!({ "nodes": nodes })
}
