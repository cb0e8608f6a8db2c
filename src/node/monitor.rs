//! The monitor's JSON: MONITOR_STAT by categories (spec §1.9), as the command and the
//! HTTP side (`monitor_http`) answer it. It reads relaxed counters and locks each shard's
//! [`super::top_keys::TopKeys`] only to copy it.

use super::state::NodeShared;
use std::sync::atomic::Ordering;

/// MONITOR_STAT category bits (`-1`, all of them, on the wire).
pub use crate::protocol::monitor_categories as category;

/// The monitor JSON: the sections `categories` selects (bits of [`category`]).
pub fn monitor_json(node: &NodeShared, categories: u64) -> serde_json::Value {
    let has = |bit: u64| categories & bit != 0;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut doc = serde_json::json!({
        "monitor_status": "enabled",
        "timestamp": {"tv_sec": now.as_secs(), "tv_usec": now.subsec_micros()},
    });
    let Some(map) = doc.as_object_mut() else {
        return doc;
    };
    let total =
        |f: fn(&super::state::ShardCounters) -> u64| -> u64 { node.counters.iter().map(f).sum() };
    if has(category::CACHE) {
        let cache = crate::cache::cache_json(&node.cache_counters);
        map.insert(
            "cache".into(),
            cache.unwrap_or_else(|| serde_json::json!({"enabled": false})),
        );
    }
    if has(category::IO) {
        map.insert(
            "io".into(),
            serde_json::json!({
                "connections": total(|c| c.connections.load(Ordering::Relaxed)),
                "bytes_in": total(|c| c.bytes_in.load(Ordering::Relaxed)),
                "bytes_out": total(|c| c.bytes_out.load(Ordering::Relaxed)),
                "errors": total(|c| c.errors.load(Ordering::Relaxed)),
            }),
        );
    }
    if has(category::COMMANDS) {
        let mut merged = serde_json::Map::new();
        for c in &node.counters {
            for (name, n) in c.commands_json() {
                let sum = merged.get(&name).and_then(|v| v.as_u64()).unwrap_or(0);
                merged.insert(name, (sum + n.as_u64().unwrap_or(0)).into());
            }
        }
        map.insert("commands".into(), merged.into());
    }
    if has(category::BACKEND) {
        map.insert("backends".into(), backends_json(node));
    }
    if has(category::STATS) {
        map.insert("uptime_s".into(), node.started.elapsed().as_secs().into());
        map.insert("shard_count".into(), node.shard_count.into());
        map.insert("shards".into(), shards_json(node));
        map.insert("command_errors".into(), command_errors(node));
    }
    if has(category::PROCFS) {
        map.insert("procfs".into(), procfs_json(node));
    }
    if has(category::TOP) {
        map.insert(
            "top".into(),
            super::top_keys::top_json(
                node.config.options.monitor_top,
                node.counters.iter().filter_map(|c| c.top_keys.as_ref()),
            ),
        );
    }
    doc
}

/// The `backends` section: every backend's state, ring size and defrag state.
fn backends_json(node: &NodeShared) -> serde_json::Value {
    node.backends
        .iter()
        .map(|b| {
            serde_json::json!({
                "backend_id": b.backend_id,
                "group": b.group,
                "state": b.state.load(Ordering::Relaxed),
                "read_only": b.read_only.load(Ordering::Relaxed),
                "ids": b.ids.len(),
                "defrag": {
                    "state": b.defrag.state(),
                    "runs": b.defrag.runs.load(Ordering::Relaxed),
                    "files_rewritten": b.defrag.files_rewritten.load(Ordering::Relaxed),
                    "bytes_freed": b.defrag.bytes_freed.load(Ordering::Relaxed),
                    "files_wanting": b.defrag.files_wanting.load(Ordering::Relaxed),
                },
            })
        })
        .collect::<Vec<_>>()
        .into()
}

/// The per-shard counters of the `stats` section.
fn shards_json(node: &NodeShared) -> serde_json::Value {
    node.counters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            serde_json::json!({
                "shard": i,
                "commands": c.commands_json(),
                "errors": c.errors.load(Ordering::Relaxed),
                "connections": c.connections.load(Ordering::Relaxed),
                "bytes_in": c.bytes_in.load(Ordering::Relaxed),
                "bytes_out": c.bytes_out.load(Ordering::Relaxed),
                "keys_served": c.keys_served.load(Ordering::Relaxed),
            })
        })
        .collect::<Vec<_>>()
        .into()
}

/// `{"READ": n, ...}`: requests answered with an error, per command, over every shard.
fn command_errors(node: &NodeShared) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for cmd in 0..super::state::COMMAND_SLOTS {
        let n: u64 = node
            .counters
            .iter()
            .flat_map(|c| &c.stats.commands[cmd].errors)
            .map(|e| e.load(Ordering::Relaxed))
            .sum();
        let name = i32::try_from(cmd)
            .ok()
            .and_then(crate::protocol::command::name);
        if let (true, Some(name)) = (n > 0, name) {
            map.insert(name.to_string(), n.into());
        }
    }
    map.into()
}

/// `MemTotal`, `MemFree` and `Cached` of `/proc/meminfo`, in kB.
fn meminfo_kb() -> serde_json::Value {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    serde_json::json!({
        "total_kb": field("MemTotal"),
        "free_kb": field("MemFree"),
        "cached_kb": field("Cached"),
    })
}

/// The file system holding the first backend's data (`statvfs`), as the original's
/// `dnet_stat` reported it.
fn fs_json(node: &NodeShared) -> serde_json::Value {
    let dir = node
        .config
        .backends
        .first()
        .and_then(|b| b.data.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    match rustix::fs::statvfs(&dir) {
        Ok(st) => serde_json::json!({
            "total_bytes": st.f_blocks * st.f_frsize,
            "avail_bytes": st.f_bavail * st.f_bsize,
            "files": st.f_files,
            "fsid": st.f_fsid,
        }),
        Err(_) => serde_json::json!({}),
    }
}

/// Memory and load of this process and the machine from `/proc`, and the data's file
/// system (empty fields where unreadable).
fn procfs_json(node: &NodeShared) -> serde_json::Value {
    let page_bytes = 4096u64;
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let mut pages = statm
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap_or(0));
    let (vm_pages, rss_pages) = (pages.next().unwrap_or(0), pages.next().unwrap_or(0));
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let la: Vec<f64> = loadavg
        .split_whitespace()
        .take(3)
        .filter_map(|n| n.parse().ok())
        .collect();
    serde_json::json!({
        "vm": {"size_bytes": vm_pages * page_bytes, "rss_bytes": rss_pages * page_bytes},
        "la": la,
        "mem": meminfo_kb(),
        "fs": fs_json(node),
    })
}
