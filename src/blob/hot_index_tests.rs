//! Tests of [`super::HotIndex`]: keys inserted, found, replaced and removed, the table
//! growing and the dense array staying gap-free.

use super::*;

fn loc(position: u64) -> Loc {
    Loc {
        position,
        data_size: 1,
        disk_size: 100,
        file: 0,
        index_slot: 0,
        flags: 0,
    }
}

fn fixed_hasher() -> KeyHasher {
    KeyHasher::with_seeds([3, 5, 7, 11, 13, 17, 19, 23, 29, 31])
}

#[test]
fn hints_for_present_absent_and_colliding_keys_change_nothing() {
    let mut t = HotIndex::with_hasher(fixed_hasher());
    t.prefetch(&RawId::from_key(b"empty table"));
    let keys = colliding_keys();
    for (i, k) in keys.iter().enumerate() {
        t.insert(*k, loc(i as u64));
    }
    for k in &keys {
        t.prefetch(k);
    }
    t.prefetch(&RawId::from_key(b"absent"));
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(t.get(k).map(|l| l.position), Some(i as u64));
    }
    assert_eq!(t.len(), keys.len());
}

/// 50 keys whose hashes share their top 5 bits: in a table of up to 128 slots they
/// all start in the same 4 slots and form one probe run.
fn colliding_keys() -> Vec<RawId> {
    let h = fixed_hasher();
    let mut out = Vec::new();
    let mut n = 0u64;
    while out.len() < 50 {
        let k = RawId::from_key(&n.to_le_bytes());
        if h.hash(&k) >> 59 == 0b10110 {
            out.push(k);
        }
        n += 1;
    }
    out
}

#[test]
fn removals_inside_a_probe_run_keep_every_other_key_reachable() {
    let keys = colliding_keys();
    let colliding = |i: u8| keys[usize::from(i)];
    let mut h = HotIndex::with_hasher(fixed_hasher());
    for i in 0..50u8 {
        assert!(h.insert(colliding(i), loc(u64::from(i))).is_none());
    }
    for i in (0..50u8).step_by(3) {
        assert_eq!(
            h.remove(&colliding(i)).map(|l| l.position),
            Some(u64::from(i))
        );
    }
    for i in 0..50u8 {
        let got = h.get(&colliding(i)).map(|l| l.position);
        assert_eq!(got, (i % 3 != 0).then_some(u64::from(i)), "key {i}");
    }
    assert_eq!(h.len(), 33);
    assert_eq!(h.iter().count(), 33);
}

#[test]
fn many_keys_grow_replace_and_drain() {
    let mut h = HotIndex::default();
    let key = |i: u64| RawId::from_key(&i.to_le_bytes());
    for i in 0..10_000u64 {
        h.insert(
            key(i),
            Loc {
                file: (i % 2) as u32,
                ..loc(i)
            },
        );
    }
    assert_eq!(h.insert(key(5), loc(99)).map(|l| l.position), Some(5));
    assert_eq!(h.get(&key(5)).map(|l| l.position), Some(99));
    let odd = h.drain_where(|l| l.file == 1);
    assert_eq!(odd.len(), 4_999, "key 5 moved to file 0");
    assert_eq!(h.len(), 5_001);
    assert!(h.get(&key(7)).is_none());
    assert_eq!(h.get(&key(8)).map(|l| l.position), Some(8));
    assert!(h.allocated_bytes() < 5_000 * 140);
}
