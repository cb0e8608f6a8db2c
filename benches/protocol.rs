//! Micro benchmarks of the wire codec: WRITE frame decode, READ reply header encode,
//! REVERSE_LOOKUP reply decode.
#![allow(clippy::unwrap_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use elliptics::key::RawId;
use elliptics::protocol::{
    cmd_flags, command, decode_body, split_frame, AddrContainer, BackendIds, CmdHeader, DnetAddr,
    IdContainer, IoAttr, NodeAnnouncement, IO_ATTR_SIZE_BYTES,
};

fn write_frame_decode(c: &mut Criterion) {
    let io = IoAttr {
        id: RawId::from_key(b"k"),
        size: 4096,
        ..IoAttr::default()
    };
    let header = CmdHeader {
        cmd: command::WRITE,
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

fn read_reply_header_encode(c: &mut Criterion) {
    let request = CmdHeader {
        id: RawId::from_key(b"k"),
        group_id: 1,
        cmd: command::READ,
        backend_id: 1,
        flags: cmd_flags::NEED_ACK,
        trans: 3,
        size: IO_ATTR_SIZE_BYTES as u64,
        ..CmdHeader::default()
    };
    let io = IoAttr {
        id: RawId::from_key(b"k"),
        total_size: 4096,
        size: 4096,
        ..IoAttr::default()
    };
    let mut out = Vec::with_capacity(512);
    c.bench_function("encode READ reply header+io_attr", |b| {
        b.iter(|| {
            out.clear();
            let mut h = *black_box(&request);
            h.flags = (h.flags & !cmd_flags::NEED_ACK) | cmd_flags::REPLY;
            h.size = (IO_ATTR_SIZE_BYTES as u64) + io.size;
            h.encode_into(&mut out);
            black_box(&io).encode_into(&mut out);
            black_box(out.len())
        })
    });
}

fn reverse_lookup_reply_decode(c: &mut Criterion) {
    let payload = NodeAnnouncement {
        addrs: AddrContainer {
            node_addr_num: 1,
            addrs: vec![DnetAddr::from(
                "127.0.0.1:1025".parse::<std::net::SocketAddr>().unwrap(),
            )],
        },
        ids: IdContainer {
            backends: vec![BackendIds {
                backend_id: 1,
                group_id: 1,
                flags: 0,
                ids: vec![RawId::from_key(b"ring")],
            }],
        },
    }
    .encode();
    let header = CmdHeader {
        cmd: command::REVERSE_LOOKUP,
        flags: cmd_flags::NOLOCK | cmd_flags::REPLY,
        size: payload.len() as u64,
        ..CmdHeader::default()
    };
    let mut frame = header.encode().to_vec();
    frame.extend_from_slice(&payload);
    c.bench_function("decode REVERSE_LOOKUP reply (124 B payload)", |b| {
        b.iter(|| {
            let (f, _) = split_frame(black_box(&frame), 1 << 26).unwrap();
            black_box(decode_body(&f.header, f.payload).unwrap())
        })
    });
}

criterion_group!(
    benches,
    write_frame_decode,
    read_reply_header_encode,
    reverse_lookup_reply_decode
);
criterion_main!(benches);
