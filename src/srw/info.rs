//! The `app@info` answer: each shard reports its share ([`ShardAppInfo`]), the node merges
//! them into the Cocaine 0.11 info JSON plus srw's `counters`, and renders it the way
//! JsonCpp's StyledWriter did (3-space indent, `"key" : value`, keys sorted).
//!
//! Our addition: `"shards"`, one entry per shard with its workers and the requests it
//! handed to them, so per-shard routing is visible.

use super::pool::{AppPool, AppState, EventCounters};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One shard's view of an app.
#[derive(Debug, Default, Clone)]
pub struct ShardAppInfo {
    pub shard: usize,
    pub running: bool,
    /// Workers failed to start too often; events fail at once.
    pub broken: bool,
    pub stopping: bool,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub pool_capacity: usize,
    pub loads: Vec<usize>,
    pub served: u64,
    pub counters: BTreeMap<String, EventCounters>,
}

impl ShardAppInfo {
    pub fn of(shard: usize, pool: Option<&AppPool>) -> ShardAppInfo {
        let Some(p) = pool else {
            return ShardAppInfo {
                shard,
                ..ShardAppInfo::default()
            };
        };
        ShardAppInfo {
            shard,
            running: p.state() != AppState::Stopping,
            broken: p.state() == AppState::Broken,
            stopping: p.state() == AppState::Stopping,
            queue_depth: p.queue_depth(),
            queue_capacity: p.profile.queue_limit,
            pool_capacity: p.profile.pool_limit,
            loads: p.loads(),
            served: p.served.get(),
            counters: p.counters.borrow().clone(),
        }
    }
}

/// The merged info document; `None` when no shard runs the app.
pub fn merge(profile: &str, shards: &[ShardAppInfo]) -> Option<Value> {
    if !shards.iter().any(|s| s.running) {
        return None;
    }
    let mut loads: Vec<usize> = shards
        .iter()
        .flat_map(|s| s.loads.iter().copied())
        .collect();
    loads.sort_unstable();
    let median = loads.get(loads.len() / 2).copied().unwrap_or(0);
    let pending: usize = loads.iter().sum();
    let active = loads.iter().filter(|l| **l > 0).count();
    let mut counters: BTreeMap<String, EventCounters> = BTreeMap::new();
    for s in shards {
        for (event, c) in &s.counters {
            let e = counters.entry(event.clone()).or_default();
            e.blocked += c.blocked;
            e.nonblocked += c.nonblocked;
            e.reply += c.reply;
        }
    }
    let counters: Map<String, Value> = counters
        .into_iter()
        .map(|(k, c)| {
            let v = json!({"blocked": c.blocked, "nonblocked": c.nonblocked, "reply": c.reply});
            (k, v)
        })
        .collect();
    let first = shards.iter().find(|s| s.running)?;
    let per_shard: Vec<Value> = shards
        .iter()
        .filter(|s| s.running)
        .map(|s| json!({"shard": s.shard, "workers": s.loads.len(), "served": s.served}))
        .collect();
    Some(json!({
        "counters": counters,
        "load-median": median,
        "profile": profile,
        "queue": {
            "capacity": first.queue_capacity,
            "depth": shards.iter().map(|s| s.queue_depth).sum::<usize>(),
        },
        "sessions": {"pending": pending},
        "slaves": {
            "active": active,
            "capacity": first.pool_capacity,
            "idle": loads.len() - active,
        },
        "shards": per_shard,
        "state": if shards.iter().any(|s| s.broken) { "broken" } else { "running" },
    }))
}

/// Render like JsonCpp's StyledWriter, ending with a newline.
pub fn styled(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    out.push('\n');
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level * 3 {
        out.push(' ');
    }
}

fn write_value(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(m) => {
            out.push_str("{\n");
            let n = m.len();
            for (i, (k, val)) in m.iter().enumerate() {
                indent(out, level + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(" : ");
                write_value(out, val, level + 1);
                if i + 1 < n {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(out, level);
            out.push('}');
        }
        Value::Array(a) => {
            out.push_str("[\n");
            let n = a.len();
            for (i, val) in a.iter().enumerate() {
                indent(out, level + 1);
                write_value(out, val, level + 1);
                if i + 1 < n {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(out, level);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn styled_output_matches_jsoncpp_layout() {
        let v = json!({"counters": {}, "queue": {"capacity": 100, "depth": 0}, "state": "running"});
        assert_eq!(
            styled(&v),
            "{\n   \"counters\" : {},\n   \"queue\" : {\n      \"capacity\" : 100,\n      \"depth\" : 0\n   },\n   \"state\" : \"running\"\n}\n"
        );
    }

    #[test]
    fn merge_sums_shards_and_counters() {
        let mut c = BTreeMap::new();
        c.insert(
            "a@e".to_string(),
            EventCounters {
                blocked: 2,
                nonblocked: 0,
                reply: 0,
            },
        );
        let s0 = ShardAppInfo {
            shard: 0,
            running: true,
            queue_capacity: 100,
            pool_capacity: 10,
            loads: vec![0, 2],
            counters: c.clone(),
            ..ShardAppInfo::default()
        };
        let s1 = ShardAppInfo {
            shard: 1,
            loads: vec![1],
            counters: c,
            ..s0.clone()
        };
        let v = merge("a", &[s0, s1]).unwrap();
        assert_eq!(v["slaves"]["active"], 2);
        assert_eq!(v["slaves"]["idle"], 1);
        assert_eq!(v["sessions"]["pending"], 3);
        assert_eq!(v["counters"]["a@e"]["blocked"], 4);
        assert!(merge("a", &[ShardAppInfo::default()]).is_none());
    }
}
