//! `dnet_ioclient -a`, `-s`, `-z`: per-node statistics in the original's lines, one node
//! after another, read from each node's MONITOR_STAT JSON.
//!
//! ```text
//! 0:000000000000: 127.0.0.1:1025: la: 0.12 0.10 0.05.
//! 0:000000000000: 127.0.0.1:1025: mem: total: 8155020 kB, free: 512344 kB, cache: 3321220 kB.
//! 0:000000000000: 127.0.0.1:1025: fs: total: 257972 mB, avail: 33228 mB, files: 16384000, fsid: 0x2b3d8c1e9f7a4d11.
//! 0:000000000000: 127.0.0.1:1025: client-to-storage commands
//! 0:000000000000: 127.0.0.1:1025:    cmd: READ, count: 1200, err: 3
//! ```
//!
//! `-z` prints the first three lines (the original's VFS stats), `-s` the command counters
//! (its IO counter stats); `-a` alone prints both, and asks every node in the route list
//! instead of only the `-r` node.

use anyhow::Result;
use elliptics::client::Session;
use elliptics::protocol::monitor_categories as category;
use serde_json::Value;

/// Which parts to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatParts {
    pub vfs: bool,
    pub counters: bool,
}

/// The id the original printed in front of each line: the reply's `dnet_dump_id`, a zero
/// id in group 0 for a request without a key.
const REPLY_ID: &str = "0:000000000000";

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Print the statistics of every node the session is connected to.
pub fn print_node_stats(s: &Session, parts: StatParts) -> Result<()> {
    let entries = s
        .monitor_stat(category::COMMANDS | category::STATS | category::PROCFS)
        .wait()?;
    let mut entries: Vec<_> = entries.into_iter().collect();
    entries.sort_by_key(|e| e.address);
    for e in entries {
        let addr = e
            .address
            .map_or_else(|| "<unknown>".to_string(), |a| a.to_string());
        let Some(text) = &e.payload else { continue };
        let doc: Value = serde_json::from_str(text).unwrap_or_default();
        let head = format!("{REPLY_ID}: {addr}:");
        if parts.vfs {
            let la: Vec<f64> = doc["procfs"]["la"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            let la_at = |i: usize| la.get(i).copied().unwrap_or(0.0);
            println!(
                "{head} la: {:.2} {:.2} {:.2}.",
                la_at(0),
                la_at(1),
                la_at(2)
            );
            let mem = &doc["procfs"]["mem"];
            println!(
                "{head} mem: total: {} kB, free: {} kB, cache: {} kB.",
                u(&mem["total_kb"]),
                u(&mem["free_kb"]),
                u(&mem["cached_kb"])
            );
            let fs = &doc["procfs"]["fs"];
            println!(
                "{head} fs: total: {} mB, avail: {} mB, files: {}, fsid: {:#x}.",
                u(&fs["total_bytes"]) / 1024 / 1024,
                u(&fs["avail_bytes"]) / 1024 / 1024,
                u(&fs["files"]),
                u(&fs["fsid"])
            );
        }
        if parts.counters {
            println!("{head} client-to-storage commands");
            let errors = &doc["command_errors"];
            if let Some(commands) = doc["commands"].as_object() {
                for (name, count) in commands {
                    println!(
                        "{head}    cmd: {name}, count: {}, err: {}",
                        u(count),
                        u(&errors[name])
                    );
                }
            }
            println!("{head} Global stat counters");
            let shards = doc["shards"].as_array().cloned().unwrap_or_default();
            let sum = |k: &str| shards.iter().map(|s| u(&s[k])).sum::<u64>();
            println!(
                "{head}    cmd: connections, count: {}, err: 0",
                sum("connections")
            );
            println!(
                "{head}    cmd: keys_served, count: {}, err: {}",
                sum("keys_served"),
                sum("errors")
            );
        }
    }
    Ok(())
}
