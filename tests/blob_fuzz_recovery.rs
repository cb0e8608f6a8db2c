//! Seeded random damage to data and index files: opening never panics or fails, and every
//! read either returns exactly the value that was written or an error. `SEED=<n>` replays.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

const FILES: [&str; 2] = ["data-0.0", "data-0.0.index"];

fn values() -> Vec<(String, Vec<u8>)> {
    (0..6)
        .map(|i| (format!("f{i}"), vec![b'0' + i as u8; 40 + i * 31]))
        .collect()
}

fn damage(dir: &Path, rng: &mut StdRng) {
    for _ in 0..rng.gen_range(1..=4) {
        let path = dir.join(FILES[rng.gen_range(0..2)]);
        let mut bytes = std::fs::read(&path).unwrap();
        match rng.gen_range(0..4) {
            0 | 1 if !bytes.is_empty() => {
                let at = rng.gen_range(0..bytes.len());
                bytes[at] ^= 1 << rng.gen_range(0..8);
            }
            2 if !bytes.is_empty() => {
                let len = rng.gen_range(0..bytes.len());
                bytes.truncate(len);
            }
            _ => {
                let extra: Vec<u8> = (0..rng.gen_range(1..200)).map(|_| rng.gen()).collect();
                bytes.extend_from_slice(&extra);
            }
        }
        std::fs::write(&path, bytes).unwrap();
    }
}

#[test]
fn random_damage_never_serves_wrong_bytes() {
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let pristine = tempfile::tempdir().unwrap();
    {
        let log = open(pristine.path());
        for (k, v) in values() {
            write(&log, &k, &v);
        }
    }
    for round in 0..150u64 {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(round));
        let dir = tempfile::tempdir().unwrap();
        for f in FILES {
            std::fs::copy(pristine.path().join(f), dir.path().join(f)).unwrap();
        }
        damage(dir.path(), &mut rng);
        let log = run(Log::open(opts(dir.path())))
            .unwrap_or_else(|e| panic!("seed {} round {round}: open failed: {e}", seed));
        for (k, v) in values() {
            if let Ok(got) = read_all(&log, &k) {
                assert_eq!(got, v, "seed {seed} round {round}: {k} served wrong bytes");
            }
        }
        write(&log, "new", b"still writable");
        assert_eq!(read_all(&log, "new").unwrap(), b"still writable");
    }
}
