//! Tests of [`super::KeyIndex`]: hot and sealed keys found, replaced and removed; removes
//! before and after their mark reaches the disk; the load-time settling of duplicates.

use super::super::sealed::tests::test_files::{entry, sealed};
use super::*;

fn loc(file: u32, position: u64) -> Loc {
    Loc {
        position,
        data_size: 50,
        disk_size: 200,
        file,
        index_slot: 0,
        flags: 0,
    }
}

fn k(b: u8) -> RawId {
    RawId([b; 64])
}

#[test]
fn location_stays_forty_bytes() {
    assert_eq!(std::mem::size_of::<Loc>(), 40);
}

#[test]
fn index_finds_keys_that_share_a_prefix() {
    let mut idx = KeyIndex::default();
    let mut a = [1u8; 64];
    let b = [1u8; 64];
    a[63] = 2;
    idx.insert(RawId(a), loc(0, 1));
    idx.insert(RawId(b), loc(0, 9));
    assert_eq!(idx.get(&RawId(a)).map(|l| l.position), Some(1));
    assert_eq!(idx.get(&RawId(b)).map(|l| l.position), Some(9));
}

/// Keys 0..100 written to file 0, which is then sealed (its sorted index on disk).
fn sealed_file_of_100(dir: &std::path::Path) -> KeyIndex {
    let mut idx = KeyIndex::default();
    for i in 0..100u8 {
        idx.insert(k(i), loc(0, u64::from(i) * 200));
    }
    let s = sealed(
        dir,
        "0.sorted",
        (0..100u8)
            .map(|i| entry(k(i), u64::from(i) * 200, 0))
            .collect(),
    );
    idx.seal(0, s);
    idx
}

#[test]
fn sealed_keys_are_found_replaced_and_removed_like_hot_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = sealed_file_of_100(dir.path());
    assert!(idx.hot.is_empty(), "the sealed file's keys left RAM");
    idx.insert(k(200), loc(1, 0));
    assert_eq!(idx.len(), 101);
    let got = idx.get(&k(42)).unwrap();
    assert_eq!((got.file, got.position, got.index_slot), (0, 42 * 200, 42));
    assert_eq!(idx.remove(&k(42)).map(|l| l.position), Some(42 * 200));
    assert!(idx.get(&k(42)).is_none());
    assert!(idx.remove(&k(42)).is_none());
    let old = idx.insert(k(43), loc(1, 7));
    assert_eq!(old.map(|l| (l.file, l.index_slot)), Some((0, 43)));
    assert_eq!(idx.get(&k(43)).map(|l| (l.file, l.position)), Some((1, 7)));
    // A removed sealed key written again lives in the hot table.
    idx.insert(k(42), loc(1, 99));
    assert_eq!(idx.get(&k(42)).map(|l| l.position), Some(99));
    assert_eq!(idx.len(), 101);
    let mut seen = 0;
    idx.for_each_live(|_, _| seen += 1);
    assert_eq!(seen, 101);
    assert_eq!(idx.live_in_file(0).len(), 98);
}

#[test]
fn a_removed_sealed_key_stays_removed_before_and_after_its_mark_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = sealed_file_of_100(dir.path());
    let path = dir.path().join("0.sorted");
    // Every slot, the ones straddling a page boundary (42 and 85) included.
    for i in 0..100u8 {
        let gone = idx.remove(&k(i)).unwrap();
        assert!(
            idx.get(&k(i)).is_none(),
            "{i}: removed in RAM, not yet on disk"
        );
        // The mark lands in the index file, then is reported.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = gone.index_slot as usize * 96 + 64;
        bytes[at..at + 8].copy_from_slice(&record_flags::REMOVE.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        idx.disk_marked(gone.file, gone.index_slot);
        assert!(idx.get(&k(i)).is_none(), "{i}: removed on disk");
    }
    assert!(idx.pending_dead.is_empty());
    assert_eq!(idx.len(), 0);
}

#[test]
fn a_failed_remove_restored_and_an_in_place_change_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = sealed_file_of_100(dir.path());
    let l = idx.remove(&k(9)).unwrap();
    assert!(idx.insert(k(9), l).is_none(), "restored");
    assert_eq!(idx.get(&k(9)), Some(l));
    assert!(idx.hot.is_empty(), "the disk already says so");
    let changed = Loc {
        flags: record_flags::UNCOMMITTED as u32,
        data_size: 20,
        ..l
    };
    assert_eq!(idx.insert(k(9), changed), Some(l));
    assert_eq!(idx.get(&k(9)), Some(changed));
    assert!(idx.any_hot(|x| x.file == 0));
    assert_eq!(idx.len(), 100);
}

#[test]
fn an_older_file_never_shows_a_key_a_newer_file_holds_or_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = KeyIndex::default();
    let s0 = sealed(
        dir.path(),
        "0",
        vec![entry(k(1), 0, 0), entry(k(2), 200, 0), entry(k(3), 400, 0)],
    );
    let s1 = sealed(
        dir.path(),
        "1",
        vec![entry(k(2), 0, 0), entry(k(3), 200, record_flags::REMOVE)],
    );
    idx.load_sealed(0, s0, 3);
    idx.load_sealed(1, s1, 1);
    assert_eq!(idx.get(&k(2)).map(|l| l.file), Some(1));
    assert!(idx.get(&k(3)).is_none(), "the newer file removed it");
    let mut live = Vec::new();
    idx.for_each_live(|key, l| live.push((*key, l.file)));
    live.sort();
    assert_eq!(live, vec![(k(1), 0), (k(2), 1)]);
}

#[test]
fn bulk_load_keeps_the_newest_copy_of_a_key_held_by_several_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = KeyIndex::default();
    let s0 = sealed(
        dir.path(),
        "0",
        vec![entry(k(1), 0, 0), entry(k(2), 200, 0), entry(k(3), 400, 0)],
    );
    let s1 = sealed(
        dir.path(),
        "1",
        vec![entry(k(2), 0, 0), entry(k(4), 200, 0)],
    );
    idx.load_sealed(0, s0, 3);
    idx.load_sealed(1, s1, 2);
    idx.insert_loading(k(3), loc(2, 0));
    idx.insert_loading(k(5), loc(2, 200));
    let mut older: Vec<(u32, u64)> = idx
        .resolve_duplicates()
        .iter()
        .map(|l| (l.file, l.position))
        .collect();
    older.sort_unstable();
    assert_eq!(older, vec![(0, 200), (0, 400)]);
    assert_eq!(idx.len(), 5);
    let mut n = 0;
    idx.for_each_live(|_, _| n += 1);
    assert_eq!(n, 5);
    assert_eq!(idx.get(&k(2)).map(|l| l.file), Some(1));
    assert_eq!(idx.get(&k(3)).map(|l| l.file), Some(2));
    assert_eq!(idx.get(&k(1)).map(|l| l.file), Some(0));
    assert!(idx.resolve_duplicates().is_empty());
}

#[test]
fn sealed_keys_stay_found_while_the_key_table_is_rebuilt_in_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = KeyIndex::default();
    for f in 0..3u8 {
        let entries = (0..50u8)
            .map(|i| entry(k(f * 50 + i), u64::from(i) * 200, 0))
            .chain([entry(k(200), 50 * 200, 0)])
            .collect();
        idx.load_sealed(
            u32::from(f),
            sealed(dir.path(), &f.to_string(), entries),
            51,
        );
    }
    idx.files.start_rebuild(153, vec![0, 1, 2]);
    let mut steps = 0;
    loop {
        for key in 0..150u8 {
            let got = idx.get(&k(key)).map(|l| l.file);
            assert_eq!(
                got,
                Some(u32::from(key / 50)),
                "key {key} after {steps} steps"
            );
        }
        assert_eq!(
            idx.get(&k(200)).map(|l| l.file),
            Some(2),
            "the newest file wins"
        );
        assert!(idx.get(&k(201)).is_none());
        if !idx.rebuild_files_step(1) {
            break;
        }
        steps += 1;
    }
    assert_eq!(steps, 2, "one file per step at the smallest budget");
    assert!(!idx.files.rebuilding());
}
