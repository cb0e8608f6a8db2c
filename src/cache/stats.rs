//! Cache statistics as the monitor reads them: each shard's cache publishes its sizes into
//! its own [`CacheCounters`] (relaxed stores by that shard only), and [`cache_json`] sums
//! them into 2.26's `cache` section:
//!
//! ```json
//! {"total_cache": {"size_stats": {"size": 0, "removing_size": 0, "objects": 0,
//!   "removing_objects": 0, "pages_sizes": [0], "pages_max_sizes": [0]}},
//!  "caches": {"Cache_00": {...same fields...}, "Cache_01": {...}}}
//! ```
//!
//! There is one entry in `caches` per shard thread (the parts the cache is split into).

use super::slru::SlruStats;
use std::sync::atomic::{AtomicU64, Ordering};

/// The published sizes of one shard's cache of one backend.
#[derive(Debug)]
pub struct CacheCounters {
    pub shard: usize,
    objects: AtomicU64,
    size_bytes: AtomicU64,
    removing_objects: AtomicU64,
    removing_bytes: AtomicU64,
    pages_sizes: Vec<AtomicU64>,
    pages_max_sizes: Vec<AtomicU64>,
}

impl CacheCounters {
    pub fn new(shard: usize, pages: usize) -> Self {
        Self {
            shard,
            objects: AtomicU64::new(0),
            size_bytes: AtomicU64::new(0),
            removing_objects: AtomicU64::new(0),
            removing_bytes: AtomicU64::new(0),
            pages_sizes: (0..pages).map(|_| AtomicU64::new(0)).collect(),
            pages_max_sizes: (0..pages).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Store the current sizes of `slru` (called by the owning shard only, after every
    /// change; no allocation: it runs on cache hits).
    pub fn publish_from(&self, slru: &super::Slru) {
        let r = Ordering::Relaxed;
        let [objects, size, removing_objects, removing_bytes] = slru.totals();
        self.objects.store(objects, r);
        self.size_bytes.store(size, r);
        self.removing_objects.store(removing_objects, r);
        self.removing_bytes.store(removing_bytes, r);
        for (slot, v) in self.pages_sizes.iter().zip(slru.page_sizes()) {
            slot.store(v, r);
        }
    }

    /// Store `stats`, the page limits included (called by the owning shard only).
    pub fn publish(&self, stats: &SlruStats) {
        let r = Ordering::Relaxed;
        self.objects.store(stats.objects, r);
        self.size_bytes.store(stats.size_bytes, r);
        self.removing_objects.store(stats.removing_objects, r);
        self.removing_bytes.store(stats.removing_bytes, r);
        for (slot, v) in self.pages_sizes.iter().zip(&stats.pages_sizes) {
            slot.store(*v, r);
        }
        for (slot, v) in self.pages_max_sizes.iter().zip(&stats.pages_max_sizes) {
            slot.store(*v, r);
        }
    }

    /// A copy of the published sizes.
    pub fn snapshot(&self) -> SlruStats {
        let r = Ordering::Relaxed;
        SlruStats {
            objects: self.objects.load(r),
            size_bytes: self.size_bytes.load(r),
            removing_objects: self.removing_objects.load(r),
            removing_bytes: self.removing_bytes.load(r),
            pages_sizes: self.pages_sizes.iter().map(|a| a.load(r)).collect(),
            pages_max_sizes: self.pages_max_sizes.iter().map(|a| a.load(r)).collect(),
        }
    }
}

fn add_into(total: &mut SlruStats, part: &SlruStats) {
    total.objects += part.objects;
    total.size_bytes += part.size_bytes;
    total.removing_objects += part.removing_objects;
    total.removing_bytes += part.removing_bytes;
    for (list, add) in [
        (&mut total.pages_sizes, &part.pages_sizes),
        (&mut total.pages_max_sizes, &part.pages_max_sizes),
    ] {
        if list.len() < add.len() {
            list.resize(add.len(), 0);
        }
        for (t, a) in list.iter_mut().zip(add) {
            *t += a;
        }
    }
}

fn size_stats_json(s: &SlruStats) -> serde_json::Value {
    serde_json::json!({
        "size": s.size_bytes,
        "removing_size": s.removing_bytes,
        "objects": s.objects,
        "removing_objects": s.removing_objects,
        "pages_sizes": s.pages_sizes,
        "pages_max_sizes": s.pages_max_sizes,
    })
}

/// The monitor's `cache` section over every shard's counters; `None` without a cache.
pub fn cache_json(counters: &[std::sync::Arc<CacheCounters>]) -> Option<serde_json::Value> {
    if counters.is_empty() {
        return None;
    }
    let mut total = SlruStats::default();
    let mut per_shard: std::collections::BTreeMap<usize, SlruStats> = Default::default();
    for c in counters {
        let s = c.snapshot();
        add_into(&mut total, &s);
        add_into(per_shard.entry(c.shard).or_default(), &s);
    }
    let caches: serde_json::Map<String, serde_json::Value> = per_shard
        .iter()
        .map(|(shard, s)| (format!("Cache_{shard:02}"), size_stats_json(s)))
        .collect();
    Some(serde_json::json!({
        "total_cache": {"size_stats": size_stats_json(&total)},
        "caches": caches,
    }))
}
