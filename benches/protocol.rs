//! Micro benchmarks of the wire codec.
#![allow(clippy::unwrap_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use elliptics::key::RawId;
use elliptics::protocol::{split_frame, CmdHeader, IoAttr};

fn write_frame_decode(c: &mut Criterion) {
    let io = IoAttr {
        id: RawId::from_key(b"k"),
        size: 4096,
        ..IoAttr::default()
    };
    let header = CmdHeader {
        cmd: 4,
        size: 208 + 4096,
        ..CmdHeader::default()
    };
    let mut frame = header.encode().to_vec();
    frame.extend_from_slice(&io.encode());
    frame.resize(frame.len() + 4096, 7);
    c.bench_function("decode WRITE frame header+io_attr", |b| {
        b.iter(|| {
            let (f, used) = split_frame(black_box(&frame), 1 << 26).unwrap();
            let (io, data) = IoAttr::decode_with_data(f.payload).unwrap();
            black_box((io, data.len(), used))
        })
    });
}

criterion_group!(benches, write_frame_decode);
criterion_main!(benches);
