//! Owner lookup in one group's route table with 10, 1 000 and 100 000 ring points.
#![allow(clippy::unwrap_used)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use elliptics::key::RawId;
use elliptics::routing::{shard_of, RouteTable};

/// `point_count` random-looking points spread over 16 owners, inserted one owner at a time
/// as a node learns them from its peers.
fn table_with_points(point_count: usize) -> RouteTable<u32> {
    let points: Vec<RawId> = (0..point_count)
        .map(|n| RawId::from_key(format!("point-{n}").as_bytes()))
        .collect();
    let mut table = RouteTable::new();
    let chunk_len = point_count.div_ceil(16);
    for (owner, chunk) in points.chunks(chunk_len).enumerate() {
        table.insert_points(chunk, owner as u32).unwrap();
    }
    assert_eq!(table.len(), point_count);
    table
}

fn owner_lookup(c: &mut Criterion) {
    let keys: Vec<RawId> = (0..1024)
        .map(|n| RawId::from_key(format!("key-{n}").as_bytes()))
        .collect();
    let mut group = c.benchmark_group("route owner lookup");
    for point_count in [10usize, 1_000, 100_000] {
        let table = table_with_points(point_count);
        group.bench_with_input(
            BenchmarkId::from_parameter(point_count),
            &table,
            |b, table| {
                let mut next = 0usize;
                b.iter(|| {
                    next = (next + 1) & 1023;
                    black_box(table.owner(black_box(&keys[next])))
                })
            },
        );
    }
    group.finish();
    c.bench_function("shard_of 8 shards", |b| {
        b.iter(|| black_box(shard_of(black_box(&keys[7]), 8)))
    });
}

criterion_group!(benches, owner_lookup);
criterion_main!(benches);
