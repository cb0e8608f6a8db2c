//! Tests of [`super::KeyFiles`]: every key of a file is named, newest file first, through
//! splits and sweeps; a file that leaves is named no more.

use super::*;

/// Distinct well-mixed hashes (a splitmix sequence).
fn hashes(seed: u64, n: usize) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .collect()
}

fn names(t: &KeyFiles, h: u64) -> Vec<u32> {
    t.candidates(h).iter().collect()
}

#[test]
fn every_key_names_its_files_newest_first_and_absent_keys_almost_never_match() {
    let mut t = KeyFiles::default();
    let shared = hashes(1, 5_000);
    let own = hashes(2, 5_000);
    t.add_file(3, &shared);
    t.add_file(9, &[shared.clone(), own.clone()].concat());
    for &h in &shared {
        let got = names(&t, h);
        assert!(got.starts_with(&[9]) && got.contains(&3), "{got:?}");
    }
    for &h in &own {
        assert_eq!(names(&t, h).first(), Some(&9));
    }
    let matched = hashes(3, 100_000)
        .iter()
        .filter(|&&h| !names(&t, h).is_empty())
        .count();
    assert!(matched < 200, "{matched} of 100 000 absent keys matched");
}

#[test]
fn keys_stay_named_through_many_splits() {
    let mut t = KeyFiles::sized_for(0);
    let files: Vec<Vec<u64>> = (0..8).map(|f| hashes(100 + f, 40_000)).collect();
    for (f, h) in files.iter().enumerate() {
        t.add_file(f as u32, h);
    }
    assert!(t.lost_bits > 0, "the table split");
    for (f, hs) in files.iter().enumerate() {
        for &h in hs {
            assert!(names(&t, h).contains(&(f as u32)));
        }
    }
    assert!(t.allocated_bytes() <= 11 * t.len() + 64 * BUCKETS_MIN);
}

#[test]
fn a_file_that_leaves_is_named_no_more_and_its_tag_is_used_again() {
    let mut t = KeyFiles::default();
    let a = hashes(7, 20_000);
    let b = hashes(8, 20_000);
    t.add_file(1, &a);
    t.add_file(2, &b);
    t.remove_file(1);
    assert!(a.iter().all(|&h| !names(&t, h).contains(&1)));
    // A defragmented copy replaces the file under the same number.
    t.add_file(2, &b[..10_000]);
    assert!(b[..10_000].iter().all(|&h| names(&t, h) == vec![2]));
    t.add_file(5, &a);
    assert!(a.iter().all(|&h| names(&t, h).contains(&5)));
    assert_eq!(t.len(), 30_000, "the retired entries were swept");
    assert!(t.tags.len() <= 4, "tags are used again: {}", t.tags.len());
}

#[test]
fn an_untagged_file_is_named_for_every_key() {
    let mut t = KeyFiles::default();
    t.add_file(4, &hashes(1, 10));
    t.add_untagged(6);
    assert_eq!(names(&t, hashes(1, 1)[0]), vec![6, 4]);
    assert_eq!(names(&t, 12345), vec![6]);
    t.remove_file(6);
    assert!(names(&t, 12345).is_empty());
}

#[test]
fn a_rebuild_in_steps_names_every_file_throughout_and_ends_with_full_fingerprints() {
    let mut t = KeyFiles::sized_for(0);
    let files: Vec<Vec<u64>> = (0..6).map(|f| hashes(300 + f, 20_000)).collect();
    for (f, h) in files.iter().enumerate() {
        t.add_file(f as u32, h);
    }
    assert!(t.lost_bits > 0, "the table split");
    t.start_rebuild(200_000, (0..6).collect());
    assert!(t.rebuilding());
    let named_all = |t: &KeyFiles, live: &[u32]| {
        for &f in live {
            for &h in files[f as usize].iter().step_by(7) {
                assert!(names(t, h).contains(&f), "file {f} lost a key mid-rebuild");
            }
        }
    };
    // A file sealed and one removed while the rebuild runs.
    let late = hashes(400, 20_000);
    t.add_file(6, &late);
    t.remove_file(2);
    let mut live: Vec<u32> = vec![0, 1, 3, 4, 5];
    named_all(&t, &live);
    while let Some(f) = t.next_to_move() {
        assert_ne!(f, 2, "a removed file is not moved");
        t.moved(f, Some(&files[f as usize]));
        named_all(&t, &live);
        assert!(late.iter().step_by(7).all(|&h| names(&t, h).contains(&6)));
    }
    assert!(!t.rebuilding(), "the last file finished the rebuild");
    assert_eq!(t.lost_bits, 0, "the new table has whole fingerprints");
    live.push(6);
    named_all(&t, &live[..5]);
    assert!(files[2].iter().all(|&h| !names(&t, h).contains(&2)));
    for &h in &late {
        assert_eq!(names(&t, h).first(), Some(&6));
    }
}

#[test]
fn a_rebuild_whose_files_all_leave_ends_and_a_file_named_twice_is_listed_once() {
    let mut t = KeyFiles::default();
    let a = hashes(500, 1_000);
    t.add_file(1, &a);
    t.add_file(2, &a);
    t.start_rebuild(2_000, vec![1, 2]);
    t.moved(2, Some(&a));
    assert_eq!(
        names(&t, a[0]),
        vec![2, 1],
        "file 2 is in both tables, named once"
    );
    t.remove_file(1);
    assert!(!t.rebuilding());
    assert_eq!(names(&t, a[0]), vec![2]);
}
