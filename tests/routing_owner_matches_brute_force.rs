//! Property tests: on many seeded random route tables, owner and range lookups agree with a
//! brute-force search over all points, through inserts (with duplicates) and removals; and
//! the shard split keeps the ring order and spreads keys evenly.

use elliptics::key::RawId;
use elliptics::routing::{shard_of, RouteError, RouteTable, Routes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED_COUNT: u64 = 200;
const KEYS_PER_TABLE: usize = 300;

/// A random id; with `narrow`, only the first and the last byte vary over a few values, so
/// equal points, keys equal to points, and points sharing their first 8 bytes but differing
/// further on are all common.
fn random_id(rng: &mut StdRng, narrow: bool) -> RawId {
    let mut bytes = [0u8; 64];
    if narrow {
        bytes[0] = rng.gen_range(0..4);
        bytes[63] = rng.gen_range(0..4);
    } else {
        rng.fill(&mut bytes[..]);
    }
    RawId(bytes)
}

/// Model: every (point, owner) ever accepted, first insert wins.
fn brute_owner(model: &[(RawId, u32)], key: &RawId) -> Option<(RawId, u32)> {
    let below = model
        .iter()
        .filter(|(point, _)| point <= key)
        .max_by_key(|(p, _)| *p);
    below
        .or_else(|| model.iter().max_by_key(|(point, _)| *point))
        .copied()
}

fn brute_next(model: &[(RawId, u32)], start: &RawId) -> Option<RawId> {
    let above = model.iter().map(|(p, _)| *p).filter(|p| p > start).min();
    above.or_else(|| model.iter().map(|(p, _)| *p).min())
}

fn insert_into_model(model: &mut Vec<(RawId, u32)>, points: &[RawId], owner: u32) -> usize {
    let mut added = 0;
    for point in points {
        if !model.iter().any(|(p, _)| p == point) {
            model.push((*point, owner));
            added += 1;
        }
    }
    added
}

fn check_lookups(rng: &mut StdRng, table: &RouteTable<u32>, model: &[(RawId, u32)], seed: u64) {
    for _ in 0..KEYS_PER_TABLE {
        let narrow = rng.gen_bool(0.3);
        let key = random_id(rng, narrow);
        let expected = brute_owner(model, &key);
        assert_eq!(
            table.owner(&key),
            expected.as_ref().map(|(_, o)| o),
            "seed {seed}"
        );
        let expected_range = expected.map(|(start, _)| (start, brute_next(model, &start)));
        let got_range = table.range(&key).map(|(start, next)| (start, Some(next)));
        assert_eq!(got_range, expected_range, "seed {seed}");
    }
}

#[test]
fn owner_and_range_match_brute_force_through_inserts_and_removals() {
    for seed in 0..SEED_COUNT {
        let mut rng = StdRng::seed_from_u64(seed);
        let narrow = seed % 4 == 0;
        let mut table = RouteTable::new();
        let mut model: Vec<(RawId, u32)> = Vec::new();
        for step in 0..rng.gen_range(1..12) {
            let owner = rng.gen_range(0..5u32);
            let count = rng.gen_range(0..20);
            let points: Vec<RawId> = (0..count).map(|_| random_id(&mut rng, narrow)).collect();
            let added = insert_into_model(&mut model, &points, owner);
            match table.insert_points(&points, owner) {
                Ok(n) => assert_eq!(n, added, "seed {seed} step {step}"),
                Err(RouteError::Exists { .. }) => {
                    assert!(added == 0 && !points.is_empty(), "seed {seed} step {step}")
                }
                Err(other) => panic!("seed {seed}: {other}"),
            }
            if rng.gen_bool(0.2) {
                let gone = rng.gen_range(0..5u32);
                let before = model.len();
                model.retain(|(_, owner)| *owner != gone);
                assert_eq!(
                    table.remove_owner(&gone),
                    before - model.len(),
                    "seed {seed}"
                );
            }
            assert_eq!(table.len(), model.len(), "seed {seed} step {step}");
            check_lookups(&mut rng, &table, &model, seed);
        }
        assert!(
            table.points().windows(2).all(|w| w[0] < w[1]),
            "seed {seed}"
        );
    }
}

#[test]
fn routes_answer_per_group_like_separate_tables() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut routes = Routes::new();
    let mut models: Vec<Vec<(RawId, u32)>> = vec![Vec::new(); 3];
    for owner in 0..30u32 {
        let group = rng.gen_range(0..3u32);
        let points: Vec<RawId> = (0..4).map(|_| random_id(&mut rng, false)).collect();
        routes.insert_points(group, &points, owner).unwrap();
        insert_into_model(&mut models[group as usize], &points, owner);
    }
    for _ in 0..2000 {
        let group = rng.gen_range(0..4u32);
        let key = random_id(&mut rng, false);
        let expected = models
            .get(group as usize)
            .and_then(|model| brute_owner(model, &key))
            .map(|(_, owner)| owner);
        let got = routes.owner(group, &key).ok().copied();
        assert_eq!(got, expected, "group {group}");
    }
    assert_eq!(routes.owner(3, &RawId::ZERO).unwrap_err().errno(), -6);
}

#[test]
fn shard_split_keeps_ring_order_and_balances_one_owned_range() {
    let mut rng = StdRng::seed_from_u64(11);
    for shard_count in [1usize, 2, 3, 7, 64] {
        let mut ids: Vec<RawId> = (0..2000).map(|_| random_id(&mut rng, false)).collect();
        ids.sort();
        let shards: Vec<usize> = ids.iter().map(|id| shard_of(id, shard_count)).collect();
        assert!(shards.windows(2).all(|w| w[0] <= w[1]), "{shard_count}");
        assert!(shards.iter().all(|s| *s < shard_count));
    }
    // A node with a single ring point owns the whole ring; its keys still cover every shard.
    let shard_count = 8;
    let mut per_shard = [0usize; 8];
    for n in 0..80_000u32 {
        per_shard[shard_of(&RawId::from_key(&n.to_le_bytes()), shard_count)] += 1;
    }
    for count in per_shard {
        assert!(count.abs_diff(10_000) < 500, "{per_shard:?}");
    }
}
