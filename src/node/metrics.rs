//! `GET /metrics` on the monitor port: the Prometheus text exposition format (0.0.4).
//!
//! A scrape reads the same relaxed counters as the monitor JSON and writes straight into
//! one response `String`: per-command sums over shards go through arrays on the stack, the
//! app lists are read under their locks without copies, so nothing is allocated per shard
//! or per series beyond the response. Names, types and labels are listed in the README.

mod storage;

use super::state::{NodeShared, COMMAND_SLOTS};
use super::stats::{LATENCY_BOUNDS_US, LATENCY_BUCKETS, STATUS_NAMES};
use crate::protocol::command;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Room reserved for a scrape's response, grown only by large nodes.
const RESPONSE_BYTES_HINT: usize = 32 * 1024;

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One series per shard of a per-shard value.
fn per_shard(
    out: &mut String,
    node: &NodeShared,
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&super::state::ShardCounters) -> f64,
) {
    head(out, name, kind, help);
    for (i, c) in node.counters.iter().enumerate() {
        let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", value(c));
    }
}

/// The whole exposition.
pub fn render(node: &NodeShared) -> String {
    let mut out = String::with_capacity(RESPONSE_BYTES_HINT);
    let out_ref = &mut out;
    head(
        out_ref,
        "elliptics_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
    );
    let _ = writeln!(
        out_ref,
        "elliptics_uptime_seconds {}",
        node.started.elapsed().as_secs_f64()
    );
    head(
        out_ref,
        "elliptics_shards",
        "gauge",
        "Shards (threads, one per core) of the node.",
    );
    let _ = writeln!(out_ref, "elliptics_shards {}", node.shard_count);
    commands(out_ref, node);
    shards(out_ref, node);
    storage::backends(out_ref, node);
    storage::apps(out_ref, node);
    storage::cluster(out_ref, node);
    out
}

fn commands(out: &mut String, node: &NodeShared) {
    head(
        out,
        "elliptics_requests_total",
        "counter",
        "Requests received, by shard and command.",
    );
    for (i, c) in node.counters.iter().enumerate() {
        for (cmd, n) in c.commands.iter().enumerate() {
            let (n, name) = (load(n), i32::try_from(cmd).ok().and_then(command::name));
            if let (true, Some(name)) = (n > 0, name) {
                let _ = writeln!(
                    out,
                    "elliptics_requests_total{{shard=\"{i}\",command=\"{name}\"}} {n}"
                );
            }
        }
    }
    head(
        out,
        "elliptics_request_errors_total",
        "counter",
        "Requests answered with an error, by command and status (errno name; other = any other).",
    );
    for cmd in 0..COMMAND_SLOTS {
        let Some(name) = i32::try_from(cmd).ok().and_then(command::name) else {
            continue;
        };
        for (s, (_, status)) in STATUS_NAMES.iter().enumerate() {
            let n: u64 = node
                .counters
                .iter()
                .map(|c| load(&c.stats.commands[cmd].errors[s]))
                .sum();
            if n > 0 {
                let _ = writeln!(
                    out,
                    "elliptics_request_errors_total{{command=\"{name}\",status=\"{status}\"}} {n}"
                );
            }
        }
    }
    head(out, "elliptics_request_duration_seconds", "histogram",
        "Time from a request's arrival to its answer, measured on one request in 16 per command and shard.");
    for cmd in 0..COMMAND_SLOTS {
        let Some(name) = i32::try_from(cmd).ok().and_then(command::name) else {
            continue;
        };
        let mut buckets = [0u64; LATENCY_BUCKETS];
        let mut sum_us = 0u64;
        for c in &node.counters {
            let slot = &c.stats.commands[cmd];
            for (total, b) in buckets.iter_mut().zip(&slot.buckets) {
                *total += load(b);
            }
            sum_us += load(&slot.sum_us);
        }
        let count: u64 = buckets.iter().sum();
        if count == 0 {
            continue;
        }
        let mut cumulative = 0u64;
        for (bound_us, n) in LATENCY_BOUNDS_US.iter().zip(buckets) {
            cumulative += n;
            let le = *bound_us as f64 / 1e6;
            let _ = writeln!(out, "elliptics_request_duration_seconds_bucket{{command=\"{name}\",le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "elliptics_request_duration_seconds_bucket{{command=\"{name}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "elliptics_request_duration_seconds_sum{{command=\"{name}\"}} {}",
            sum_us as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "elliptics_request_duration_seconds_count{{command=\"{name}\"}} {count}"
        );
    }
}

fn shards(out: &mut String, node: &NodeShared) {
    per_shard(
        out,
        node,
        "elliptics_shard_queue_depth",
        "gauge",
        "Requests started on the shard and not yet answered.",
        |c| load(&c.stats.queue_depth) as f64,
    );
    per_shard(
        out,
        node,
        "elliptics_shard_cpu_seconds_total",
        "counter",
        "CPU time of the shard's thread (updated once a second).",
        |c| load(&c.stats.cpu_us) as f64 / 1e6,
    );
    per_shard(
        out,
        node,
        "elliptics_keys_served_total",
        "counter",
        "Keys the shard served as their owner.",
        |c| load(&c.keys_served) as f64,
    );
    per_shard(
        out,
        node,
        "elliptics_connections",
        "gauge",
        "Connections open on the shard.",
        |c| load(&c.stats.open_connections) as f64,
    );
    per_shard(
        out,
        node,
        "elliptics_connections_accepted_total",
        "counter",
        "Connections the shard accepted.",
        |c| load(&c.connections) as f64,
    );
    per_shard(
        out,
        node,
        "elliptics_network_receive_bytes_total",
        "counter",
        "Bytes received on the shard's connections.",
        |c| load(&c.bytes_in) as f64,
    );
    per_shard(
        out,
        node,
        "elliptics_network_transmit_bytes_total",
        "counter",
        "Bytes sent on the shard's connections.",
        |c| load(&c.bytes_out) as f64,
    );
}
