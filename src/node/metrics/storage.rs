//! The backend, app and cluster parts of `/metrics` (see [`super`]).

use super::{head, load};
use crate::node::state::NodeShared;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// One gauge per backend (summed over shards) from its per-shard gauges.
fn per_backend(
    out: &mut String,
    node: &NodeShared,
    name: &str,
    help: &str,
    value: impl Fn(&crate::node::stats::BackendGauges) -> u64,
) {
    head(out, name, "gauge", help);
    for (b, info) in node.backends.iter().enumerate() {
        let v: u64 = node
            .counters
            .iter()
            .filter_map(|c| c.stats.backends.get(b))
            .map(&value)
            .sum();
        let _ = writeln!(
            out,
            "{name}{{backend=\"{}\",group=\"{}\"}} {v}",
            info.backend_id, info.group
        );
    }
}

pub(super) fn backends(out: &mut String, node: &NodeShared) {
    per_backend(
        out,
        node,
        "elliptics_backend_disk_bytes",
        "Bytes in the backend's data files, removed records included.",
        |g| load(&g.disk_bytes),
    );
    per_backend(
        out,
        node,
        "elliptics_backend_live_bytes",
        "Bytes of the backend's live records.",
        |g| load(&g.disk_bytes).saturating_sub(load(&g.removed_bytes)),
    );
    per_backend(
        out,
        node,
        "elliptics_backend_removed_bytes",
        "Bytes of removed records that defragmentation would free.",
        |g| load(&g.removed_bytes),
    );
    per_backend(
        out,
        node,
        "elliptics_backend_records",
        "Live records.",
        |g| load(&g.records),
    );
    per_backend(
        out,
        node,
        "elliptics_backend_removed_records",
        "Removed records still in the data files.",
        |g| load(&g.removed_records),
    );
    per_backend(out, node, "elliptics_backend_files", "Data files.", |g| {
        load(&g.files)
    });
    per_backend(
        out,
        node,
        "elliptics_backend_defrag_running",
        "Shards of the backend running a defragmentation (0 = not running).",
        |g| u64::from(g.defragmenting.load(Ordering::Relaxed)),
    );
    head(
        out,
        "elliptics_backend_enabled",
        "gauge",
        "1 when the backend is enabled.",
    );
    for info in &node.backends {
        let on = info.state.load(Ordering::Relaxed) == crate::node::state::backend_state::ENABLED;
        let _ = writeln!(
            out,
            "elliptics_backend_enabled{{backend=\"{}\",group=\"{}\"}} {}",
            info.backend_id,
            info.group,
            u8::from(on)
        );
    }
    head(
        out,
        "elliptics_backend_read_only",
        "gauge",
        "1 when the backend is read-only.",
    );
    for info in &node.backends {
        let ro = info.read_only.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "elliptics_backend_read_only{{backend=\"{}\",group=\"{}\"}} {}",
            info.backend_id,
            info.group,
            u8::from(ro)
        );
    }
}

pub(super) fn apps(out: &mut String, node: &NodeShared) {
    type Field = fn(&crate::node::stats::AppGauges) -> u64;
    let series: [(&str, &str, &str, Field); 5] = [
        (
            "elliptics_app_workers",
            "gauge",
            "Worker processes of the app.",
            |a| a.workers as u64,
        ),
        (
            "elliptics_app_busy_workers",
            "gauge",
            "Workers serving a request.",
            |a| a.busy_workers as u64,
        ),
        (
            "elliptics_app_queue_depth",
            "gauge",
            "Requests queued for the app's workers.",
            |a| a.queue_depth as u64,
        ),
        (
            "elliptics_app_served_total",
            "counter",
            "Requests handed to the app's workers.",
            |a| a.served,
        ),
        (
            "elliptics_app_workers_lost_total",
            "counter",
            "Workers lost (crashed, killed, hung) while the app ran.",
            |a| a.workers_lost,
        ),
    ];
    for (name, kind, help, field) in series {
        head(out, name, kind, help);
        for (i, c) in node.counters.iter().enumerate() {
            let Ok(apps) = c.stats.apps.lock() else {
                continue;
            };
            for a in apps.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{app=\"{}\",shard=\"{i}\"}} {}",
                    escape(&a.name),
                    field(a)
                );
            }
        }
    }
}

pub(super) fn cluster(out: &mut String, node: &NodeShared) {
    let nodes = node
        .counters
        .first()
        .and_then(|c| c.stats.cluster.lock().ok())
        .map_or(0, |v| v.len());
    head(
        out,
        "elliptics_cluster_nodes",
        "gauge",
        "Nodes this node knows, itself included.",
    );
    let _ = writeln!(out, "elliptics_cluster_nodes {nodes}");
}

/// A label value with `\`, `"` and newlines escaped as the format wants (borrowed when
/// nothing needs escaping).
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_quotes_backslashes_and_newlines() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
