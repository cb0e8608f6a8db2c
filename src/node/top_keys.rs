//! Top keys, kept only when `monitor.top` is configured (as in the original; without it the
//! list stays empty): each shard keeps at most `events_size` recently touched keys with
//! their byte weight, halved every `period_in_seconds` of silence and dropped once idle for
//! four periods; a request merges the shards and lists the heaviest `top_length` as
//! `top.top_by_size` (MONITOR_STAT category TOP).

use crate::blob::key_hash::KeyHasher;
use crate::config::TopSettings;
use crate::key::RawId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The next state of a xorshift64 generator (the top keys' sampling and admission draws).
pub fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Idle periods after which a key leaves the top.
const TOP_EXPIRY_PERIODS: u32 = 4;

/// One remembered key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopEntry {
    /// Bytes moved for the key, decayed by age.
    pub size_bytes: f64,
    pub frequency: u64,
    last_seen: Instant,
}

impl TopEntry {
    fn weight_at(&self, now: Instant, period: Duration) -> f64 {
        let periods =
            now.saturating_duration_since(self.last_seen).as_secs_f64() / period.as_secs_f64();
        self.size_bytes * 0.5f64.powf(periods)
    }

    fn expired_at(&self, now: Instant, period: Duration) -> bool {
        now.saturating_duration_since(self.last_seen) > period.saturating_mul(TOP_EXPIRY_PERIODS)
    }
}

/// A full table admits one new key in this many (see [`TopKeys::record`]).
const TOP_ADMIT_ONE_IN: u64 = 8;

/// One shard's recently hot keys; bounded to `capacity` entries.
#[derive(Debug)]
pub struct TopKeys {
    entries: HashMap<RawId, TopEntry, KeyHasher>,
    capacity: usize,
    /// Half-life of a weight.
    period: Duration,
    /// xorshift state of the admission sampling.
    admit_state: u64,
}

impl TopKeys {
    /// A table of `settings.events_size` keys with weights halving every
    /// `settings.period_s` seconds.
    pub fn new(settings: &TopSettings) -> TopKeys {
        TopKeys {
            entries: HashMap::default(),
            capacity: settings.events_size.max(1),
            period: Duration::from_secs(settings.period_s.max(1)),
            admit_state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Count `size_bytes` moved for `id` at `now`. Keys in the table are always counted.
    /// While the table has room every new key enters; once it is full a new key enters
    /// only one time in [`TOP_ADMIT_ONE_IN`] (then the expired and the lighter half leave):
    /// a key touched often gets in within a few touches, while a stream of keys touched
    /// once (a uniform workload over many keys) no longer churns the table on every request.
    #[cfg(test)]
    pub fn record(&mut self, id: RawId, size_bytes: u64, now: Instant) {
        self.record_times(id, size_bytes, 1, now);
    }

    /// [`Self::record`] standing for `times` requests of `size_bytes` each (a sample).
    pub fn record_times(&mut self, id: RawId, size_bytes: u64, times: u64, now: Instant) {
        let size_bytes = size_bytes.saturating_mul(times);
        if let Some(e) = self.entries.get_mut(&id) {
            e.size_bytes = e.weight_at(now, self.period) + size_bytes as f64;
            e.frequency = e.frequency.saturating_add(times);
            e.last_seen = now;
            return;
        }
        if self.entries.len() >= self.capacity {
            if !self.admit() {
                return;
            }
            self.evict(now);
        }
        self.entries.insert(
            id,
            TopEntry {
                size_bytes: size_bytes as f64,
                frequency: times,
                last_seen: now,
            },
        );
    }

    /// At least half full: the table has seen more keys than it keeps (an eviction leaves
    /// it half full), so its owner may sample requests (see `ShardCounters::note_key`).
    pub fn is_crowded(&self) -> bool {
        self.entries.len() >= self.capacity / 2
    }

    fn admit(&mut self) -> bool {
        self.admit_state = xorshift(self.admit_state);
        self.admit_state.is_multiple_of(TOP_ADMIT_ONE_IN)
    }

    /// Make room when full: drop expired keys, then the lighter half. Halving at once keeps
    /// the cost amortised to O(log n) per recorded key instead of a scan per new key.
    fn evict(&mut self, now: Instant) {
        let period = self.period;
        self.entries.retain(|_, e| !e.expired_at(now, period));
        if self.entries.len() < self.capacity {
            return;
        }
        // Weights in iteration order; the map is not changed before the `retain` below, which
        // visits the entries in the same order.
        let weights: Vec<f64> = self
            .entries
            .values()
            .map(|e| e.weight_at(now, period))
            .collect();
        let mut sorted = weights.clone();
        let middle = sorted.len() / 2;
        let (_, cut, _) = sorted.select_nth_unstable_by(middle, f64::total_cmp);
        let cut = *cut;
        let mut i = 0;
        self.entries.retain(|_, _| {
            let keep = weights.get(i).is_some_and(|w| *w > cut);
            i += 1;
            keep
        });
    }

    /// The live keys with their weight at `now`.
    pub fn snapshot(&self, now: Instant) -> Vec<(RawId, u64, u64)> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.expired_at(now, self.period))
            .map(|(k, e)| {
                (
                    *k,
                    e.weight_at(now, self.period).round() as u64,
                    e.frequency,
                )
            })
            .collect()
    }
}

/// `{"top_by_size": [{"id": hex, "size": bytes, "frequency": n}, ...]}`: every shard's
/// keys merged, heaviest first, at most `top_length`; the list is empty when `monitor.top`
/// is not configured.
pub fn top_json<'a>(
    settings: Option<TopSettings>,
    tables: impl Iterator<Item = &'a Mutex<TopKeys>>,
) -> serde_json::Value {
    let Some(settings) = settings else {
        return serde_json::json!({ "top_by_size": [] });
    };
    let now = Instant::now();
    let mut all: Vec<(RawId, u64, u64)> = Vec::new();
    for table in tables {
        if let Ok(top) = table.lock() {
            all.extend(top.snapshot(now));
        }
    }
    all.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
    all.truncate(settings.top_length);
    let list: Vec<serde_json::Value> = all
        .into_iter()
        .map(|(id, size, frequency)| {
            serde_json::json!({"id": id.to_hex(), "size": size, "frequency": frequency})
        })
        .collect();
    serde_json::json!({ "top_by_size": list, "top_length": settings.top_length,
        "events_size": settings.events_size, "period_in_seconds": settings.period_s })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default half-life, 300 s.
    const PERIOD: Duration = Duration::from_secs(300);

    fn table(events_size: usize) -> TopKeys {
        TopKeys::new(&TopSettings {
            events_size,
            ..TopSettings::default()
        })
    }

    fn id(n: u32) -> RawId {
        RawId::from_key(&n.to_le_bytes())
    }

    fn small_id(n: u8) -> RawId {
        RawId::from_key(&[n])
    }

    #[test]
    fn full_table_evicts_the_lighter_half_and_keeps_its_bound() {
        let now = Instant::now();
        let mut top = table(3);
        for (n, size) in [(1, 100), (2, 5), (3, 300)] {
            top.record(small_id(n), size, now);
        }
        // A full table admits a newcomer only now and then: offer it until it gets in.
        for _ in 0..1000 {
            if top.snapshot(now).iter().any(|e| e.0 == small_id(4)) {
                break;
            }
            top.record(small_id(4), 50, now);
        }
        let mut kept: Vec<u64> = top.snapshot(now).iter().map(|e| e.1).collect();
        kept.sort_unstable();
        // The lightest (5) went with the lighter half; the heaviest and the newcomer stay.
        assert_eq!(kept, [50, 300]);
        for n in 5..20 {
            top.record(small_id(n), 1, now);
            assert!(top.snapshot(now).len() <= 3);
        }
    }

    #[test]
    fn weight_halves_each_period_and_idle_keys_expire() {
        let start = Instant::now();
        let mut top = table(1000);
        top.record(small_id(1), 1000, start);
        top.record(small_id(1), 1000, start);
        assert_eq!(top.snapshot(start), [(small_id(1), 2000, 2)]);
        assert_eq!(top.snapshot(start + PERIOD)[0].1, 1000);
        assert!(top
            .snapshot(start + PERIOD * (TOP_EXPIRY_PERIODS + 1))
            .is_empty());
    }

    #[test]
    fn every_key_is_counted_while_the_table_has_room() {
        let mut top = table(100);
        let now = Instant::now();
        for n in 0..100 {
            top.record(id(n), 10, now);
        }
        top.record(id(7), 5, now);
        let snap = top.snapshot(now);
        assert_eq!(snap.len(), 100);
        let seven = snap.iter().find(|(k, _, _)| *k == id(7)).unwrap();
        assert_eq!((seven.1, seven.2), (15, 2));
    }

    #[test]
    fn a_hot_key_enters_a_full_table_of_cold_keys_and_stays_on_top() {
        let mut top = table(64);
        let now = Instant::now();
        for n in 0..10_000 {
            top.record(id(n), 100, now);
            if n % 4 == 0 {
                top.record(id(u32::MAX), 100, now);
            }
        }
        let snap = top.snapshot(now);
        assert!(snap.len() <= 64);
        let heaviest = snap.iter().max_by_key(|e| e.1).unwrap();
        assert_eq!(heaviest.0, id(u32::MAX));
    }
}
