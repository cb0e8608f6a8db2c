//! `options.cache`: the in-memory cache block, read as 2.26 read it: `size` (bytes, above 0,
//! required; a number or a size string such as "1G"), `shards` (16), `sync_timeout`
//! (seconds before a dirty entry is written back, 30) and `pages_proportions` (the relative
//! sizes of the segmented LRU's pages, hottest first, `[1]`).

use super::fields::Fields;
use super::ConfigError;
use serde_json::Value;

/// The most LRU pages a cache may be split into.
pub const CACHE_PAGES_MAX: usize = 64;

/// The cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// `size`: bytes of values and entry overhead the node's cache may hold, per backend.
    pub size_bytes: u64,
    /// `shards`: how many independently locked parts 2.26 split the cache into. Here the
    /// parts are the node's shard threads (each owns its keys' entries, without a lock);
    /// the value is kept for the monitor.
    pub shards: u64,
    /// `sync_timeout`: seconds a written entry stays dirty before it is written to disk.
    pub sync_timeout_s: u64,
    /// `pages_proportions`: the relative size of each LRU page, hottest first.
    pub pages_proportions: Vec<u64>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            size_bytes: 0,
            shards: 16,
            sync_timeout_s: 30,
            pages_proportions: vec![1],
        }
    }
}

/// Parse `options.cache` if present.
pub(crate) fn parse_cache(
    fields: &mut Fields<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<CacheSettings>, ConfigError> {
    let Some(mut cache) = fields.object_of("cache")? else {
        return Ok(None);
    };
    let d = CacheSettings::default();
    let size = cache.size_bytes("size")?;
    let size_bytes = cache.required("size", size)?;
    if size_bytes == 0 {
        return Err(ConfigError::field(
            &cache.path_of("size"),
            "must be above 0",
        ));
    }
    let shards = cache.unsigned("shards")?.unwrap_or(d.shards);
    if shards == 0 {
        return Err(ConfigError::field(
            &cache.path_of("shards"),
            "must be above 0",
        ));
    }
    let sync_timeout_s = cache.unsigned("sync_timeout")?.unwrap_or(d.sync_timeout_s);
    let path = cache.path_of("pages_proportions");
    let pages_proportions = match cache.raw("pages_proportions") {
        None => d.pages_proportions,
        Some(value) => proportions(value, &path)?,
    };
    cache.finish(warnings);
    Ok(Some(CacheSettings {
        size_bytes,
        shards,
        sync_timeout_s,
        pages_proportions,
    }))
}

/// A non-empty array of at most [`CACHE_PAGES_MAX`] positive integers.
fn proportions(value: &Value, path: &str) -> Result<Vec<u64>, ConfigError> {
    let Value::Array(items) = value else {
        return Err(ConfigError::field(
            path,
            "expected an array of positive integers",
        ));
    };
    if items.is_empty() || items.len() > CACHE_PAGES_MAX {
        let problem = format!("expected 1 to {CACHE_PAGES_MAX} pages, got {}", items.len());
        return Err(ConfigError::field(path, problem));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.as_u64() {
            Some(n) if n > 0 && n <= u64::from(u32::MAX) => Ok(n),
            _ => Err(ConfigError::field(
                &format!("{path}[{i}]"),
                format!("expected a positive integer, got {item}"),
            )),
        })
        .collect()
}
