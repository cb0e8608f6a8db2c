//! Unit tests of the segmented LRU and of the cache's write/read/remove rules.

use super::slru::{charge_of, ENTRY_OVERHEAD_BYTES};
use super::*;

fn id(n: u32) -> RawId {
    RawId::from_key(&n.to_le_bytes())
}

fn entry(len: usize) -> Entry {
    let mut data = Vec::with_capacity(len);
    data.resize(len, 7);
    Entry {
        data,
        ..Entry::default()
    }
}

/// Room for `n` entries of `len` bytes per page.
fn room(n: u64, len: usize) -> u64 {
    n * (len as u64 + ENTRY_OVERHEAD_BYTES)
}

#[test]
fn the_least_recently_used_entry_of_a_full_single_page_is_evicted() {
    let mut lru = Slru::new(room(3, 100), &[1]);
    for n in 0..3 {
        lru.insert(id(n), entry(100)).expect("fits");
    }
    assert!(lru.get(&id(0)).is_some(), "0 is now the most recent");
    lru.insert(id(3), entry(100)).expect("fits");
    assert!(!lru.contains(&id(1)), "1 was the least recently used");
    for n in [0, 2, 3] {
        assert!(lru.contains(&id(n)), "{n} stays");
    }
    let stats = lru.stats();
    assert_eq!(stats.objects, 3);
    assert_eq!(stats.size_bytes, room(3, 100));
    assert!(stats.pages_sizes[0] <= stats.pages_max_sizes[0]);
}

#[test]
fn a_hit_entry_moves_to_the_hot_page_and_survives_a_scan_of_new_keys() {
    let mut lru = Slru::new(room(4, 100), &[1, 1]);
    lru.insert(id(0), entry(100)).expect("fits");
    assert!(lru.get(&id(0)).is_some());
    for n in 1..50 {
        lru.insert(id(n), entry(100)).expect("fits");
    }
    assert!(lru.contains(&id(0)), "the hot entry outlives the scan");
    assert!(!lru.contains(&id(1)), "cold entries are evicted in order");
    assert!(lru.contains(&id(49)) && lru.contains(&id(48)));
    let stats = lru.stats();
    assert_eq!(stats.pages_sizes, vec![room(1, 100), room(2, 100)]);
}

#[test]
fn an_overflowing_hot_page_pushes_its_oldest_entry_one_page_colder() {
    let mut lru = Slru::new(room(2, 100), &[1, 1]);
    lru.insert(id(0), entry(100)).expect("fits");
    lru.get(&id(0));
    lru.insert(id(1), entry(100)).expect("fits");
    lru.get(&id(1));
    // 1 entered the hot page, pushing 0 back to the cold one.
    assert_eq!(lru.stats().pages_sizes, vec![room(1, 100), room(1, 100)]);
    assert!(lru.contains(&id(0)) && lru.contains(&id(1)));
}

#[test]
fn a_dirty_entry_evicted_waits_for_its_write_back_and_stays_readable() {
    let mut lru = Slru::new(room(1, 100), &[1]);
    let mut dirty = entry(100);
    dirty.synctime_s = 10;
    lru.insert(id(0), dirty).expect("fits");
    lru.insert(id(1), entry(100)).expect("fits");
    assert!(lru.contains(&id(0)) && lru.is_removing(&id(0)));
    assert_eq!(lru.take_evicted_dirty(), vec![id(0)]);
    let stats = lru.stats();
    assert_eq!(
        (stats.removing_objects, stats.removing_bytes),
        (1, room(1, 100))
    );
    assert_eq!(
        stats.pages_sizes,
        vec![room(1, 100)],
        "the page holds only 1"
    );
    assert!(lru.remove(&id(0)).is_some());
    assert_eq!(lru.stats().removing_objects, 0);
}

#[test]
fn an_entry_larger_than_every_page_is_refused() {
    let mut lru = Slru::new(room(1, 100), &[1]);
    let err = lru.insert(id(0), entry(1000)).expect_err("too large");
    assert_eq!(err.charged_bytes, charge_of(&entry(1000).data));
    assert_eq!(lru.stats().objects, 0);
}

#[test]
fn due_lists_entries_by_the_earlier_of_lifetime_and_write_back_time() {
    let mut lru = Slru::new(room(10, 10), &[1]);
    for (n, lifetime, sync) in [(0u32, 0u64, 5u64), (1, 3, 9), (2, 0, 0), (3, 8, 0)] {
        let mut e = entry(10);
        e.lifetime_s = lifetime;
        e.synctime_s = sync;
        lru.insert(id(n), e).expect("fits");
    }
    assert_eq!(lru.due(2), vec![]);
    assert_eq!(lru.due(5), vec![id(1), id(0)]);
    lru.set_times(&id(0), 0, 0);
    assert_eq!(lru.due(100), vec![id(1), id(3)]);
}

fn settings(size_bytes: u64) -> CacheSettings {
    CacheSettings {
        size_bytes,
        sync_timeout_s: 30,
        ..CacheSettings::default()
    }
}

fn cache(size_bytes: u64) -> ShardCache {
    ShardCache::new(&settings(size_bytes), 1, Arc::new(CacheCounters::new(0, 1)))
}

fn write_io(n: u32, flags: u32, offset: u64) -> IoAttr {
    IoAttr {
        id: id(n),
        flags,
        offset,
        ..IoAttr::default()
    }
}

#[test]
fn writes_follow_the_cache_flags_and_become_dirty_unless_cache_only() {
    let mut c = cache(1 << 20);
    assert_eq!(
        c.write(&id(0), &write_io(0, 0, 0), b"x", None, 100),
        WritePlan::Disk
    );
    let plan = c.write(&id(0), &write_io(0, io_flags::CACHE, 0), b"abc", None, 100);
    assert!(matches!(plan, WritePlan::Cached { size: 3, .. }));
    assert_eq!(c.slru().peek(&id(0)).map(|e| e.synctime_s), Some(130));
    let only = io_flags::CACHE | io_flags::CACHE_ONLY;
    c.write(&id(1), &write_io(1, only, 0), b"mem", None, 100);
    assert_eq!(c.slru().peek(&id(1)).map(|e| e.is_dirty()), Some(false));
    assert_eq!(
        c.write(&id(2), &write_io(2, io_flags::CACHE, 5), b"tail", None, 100),
        WritePlan::NeedsBase,
        "a partial write of a key not cached starts from the disk's value"
    );
    assert_eq!(
        c.write(&id(0), &write_io(0, 0, 1), b"Z", None, 100),
        WritePlan::Cached {
            size: 1,
            timestamp: c
                .slru()
                .peek(&id(0))
                .map(|e| e.timestamp)
                .unwrap_or_default()
        }
    );
    assert_eq!(
        c.slru().peek(&id(0)).map(|e| e.data.clone()),
        Some(b"aZ".to_vec())
    );
}

#[test]
fn a_cache_only_write_too_large_for_memory_is_refused() {
    let mut c = cache(1024);
    let only = io_flags::CACHE | io_flags::CACHE_ONLY;
    assert_eq!(
        c.write(&id(0), &write_io(0, only, 0), &[0u8; 4096], None, 1),
        WritePlan::Failed(errno::ENOSPC)
    );
    assert_eq!(
        c.write(
            &id(0),
            &write_io(0, io_flags::CACHE, 0),
            &[0u8; 4096],
            None,
            1
        ),
        WritePlan::Disk
    );
}

#[test]
fn a_write_back_cleans_the_entry_and_a_change_meanwhile_keeps_it_dirty() {
    let mut c = cache(1 << 20);
    c.write(&id(0), &write_io(0, io_flags::CACHE, 0), b"v1", None, 100);
    assert!(
        c.begin_write_back(&id(0), 100, false).is_none(),
        "not due yet"
    );
    let wb = c.begin_write_back(&id(0), 130, false).expect("due");
    assert_eq!(wb.data, b"v1");
    c.write(&id(0), &write_io(0, 0, 0), b"v2", None, 131);
    assert!(!c.end_write_back(&wb, true, 131));
    assert_eq!(c.slru().peek(&id(0)).map(|e| e.is_dirty()), Some(true));
}

#[test]
fn removes_keep_the_disk_only_under_cache_only() {
    let mut c = cache(1 << 20);
    let plan = c.remove(&id(9), 0);
    assert_eq!((plan.was_cached, plan.from_disk), (false, true));
    c.write(&id(0), &write_io(0, io_flags::CACHE, 0), b"dirty", None, 1);
    let plan = c.remove(&id(0), io_flags::CACHE_ONLY);
    assert_eq!((plan.was_cached, plan.from_disk), (true, false));
    assert_eq!(plan.write_back.map(|w| w.data), Some(b"dirty".to_vec()));
    let flags = io_flags::CACHE | io_flags::CACHE_REMOVE_FROM_DISK;
    c.write(&id(1), &write_io(1, flags, 0), b"x", None, 1);
    assert!(c.remove(&id(1), io_flags::CACHE_ONLY).from_disk);
}

#[test]
fn an_expired_clean_entry_leaves_and_reports_its_disk_removal() {
    let mut c = cache(1 << 20);
    let mut io = write_io(
        0,
        io_flags::CACHE | io_flags::CACHE_ONLY | io_flags::CACHE_REMOVE_FROM_DISK,
        0,
    );
    io.start = 2;
    c.write(&id(0), &io, b"x", None, 100);
    assert_eq!(c.expire(&id(0), 101), None);
    assert_eq!(c.due(102), vec![id(0)]);
    assert_eq!(c.expire(&id(0), 102), Some(true));
    assert!(!c.slru().contains(&id(0)));
}
