//! Large values against a running node, over the raw protocol (no client library):
//!
//! - `roundtrip`: WRITE one value of `--bytes` streamed from a generator as a single frame,
//!   READ it back comparing every byte, and copy the same bytes over a plain loopback
//!   socket; alternating `--rounds` times, it prints each throughput and the ratios.
//! - `p99`: `--writers` connections stream values of `--bytes` in a loop while `--readers`
//!   connections READ a 100-byte key; it prints the small READs' latency percentiles.
//!   With `--sink` the writers stream into a socket of the tool itself instead: the
//!   latency the load alone leaves (its threads, its copies), without the node's part.
//!
//! `cargo run --release --example large_value -- --addr 127.0.0.1:1025 roundtrip --bytes 1G`

use clap::{Parser, Subcommand};
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, command, CmdHeader, IoAttr, HEADER_SIZE_BYTES};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes generated and sent (or read and compared) per call.
const PIECE_BYTES: usize = 1 << 20;
const IO_ATTR_BYTES: u64 = 208;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, default_value_t = 1)]
    group: u32,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    Roundtrip {
        /// Value size, e.g. 1G, 256M.
        #[arg(long, value_parser = size_arg)]
        bytes: u64,
        #[arg(long, default_value_t = 1)]
        rounds: u32,
    },
    P99 {
        #[arg(long, value_parser = size_arg, default_value = "256M")]
        bytes: u64,
        #[arg(long, default_value_t = 16)]
        writers: usize,
        #[arg(long, default_value_t = 50)]
        readers: usize,
        /// Seconds to measure.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// The writers stream the same bytes into a socket of this process that drops
        /// them, not into the node: the small READs' latency with every cost of the load
        /// but none of the node's streaming work.
        #[arg(long)]
        sink: bool,
    },
}

fn size_arg(s: &str) -> Result<u64, String> {
    let (num, shift) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<u64>()
        .map(|n| n << shift)
        .map_err(|e| e.to_string())
}

/// The pattern every piece of a value is made from.
fn base_piece() -> &'static [u8] {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        (0..PIECE_BYTES as u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
            .collect()
    })
}

/// Bytes `from..from + out.len()` of value `seed` (`from` a multiple of the piece size, as
/// every caller's is): the pattern, each piece xored with its number and the seed.
fn fill(seed: u64, from: u64, out: &mut [u8]) {
    debug_assert_eq!(from % PIECE_BYTES as u64, 0);
    let k = ((from / PIECE_BYTES as u64) ^ seed) as u8;
    for (o, b) in out.iter_mut().zip(base_piece()) {
        *o = b ^ k;
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut id = RawId::ZERO;
    for (i, v) in [2i32, 26, 11, 1].iter().enumerate() {
        id.0[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    let h = CmdHeader {
        id,
        cmd: command::REVERSE_LOOKUP,
        flags: cmd_flags::DIRECT | cmd_flags::NOLOCK,
        ..CmdHeader::default()
    };
    s.write_all(&h.encode()).expect("handshake");
    let (reply, _) = recv(&mut s);
    assert_eq!(reply.status, 0, "handshake refused");
    s
}

/// One whole reply frame (small replies only).
fn recv(s: &mut TcpStream) -> (CmdHeader, Vec<u8>) {
    let mut head = [0u8; HEADER_SIZE_BYTES];
    s.read_exact(&mut head).expect("reply header");
    let h = CmdHeader::decode(&head).expect("header");
    assert!(h.size < 1 << 24, "small reply expected");
    let mut body = vec![0u8; h.size as usize];
    s.read_exact(&mut body).expect("reply body");
    (h, body)
}

/// Read replies until the last one of the transaction; its status.
fn final_status(s: &mut TcpStream) -> i32 {
    loop {
        let (h, _) = recv(s);
        if h.flags & cmd_flags::MORE == 0 {
            return h.status;
        }
    }
}

fn request(key: &str, group: u32, cmd: i32, size: u64, io: &IoAttr) -> Vec<u8> {
    let id = RawId::from_key(key.as_bytes());
    let h = CmdHeader {
        id,
        group_id: group,
        cmd,
        flags: cmd_flags::NEED_ACK,
        size: IO_ATTR_BYTES + size,
        trans: 1,
        ..CmdHeader::default()
    };
    let mut io = *io;
    io.id = id;
    io.parent = id;
    let mut out = h.encode().to_vec();
    out.extend_from_slice(&io.encode());
    out
}

/// WRITE `bytes` of value `seed` as one frame; the status.
fn write_value(s: &mut TcpStream, key: &str, group: u32, seed: u64, bytes: u64) -> i32 {
    let io = IoAttr {
        size: bytes,
        ..IoAttr::default()
    };
    s.write_all(&request(key, group, command::WRITE, bytes, &io))
        .expect("send");
    let mut piece = vec![0u8; PIECE_BYTES];
    let mut at = 0;
    while at < bytes {
        let n = (bytes - at).min(PIECE_BYTES as u64) as usize;
        fill(seed, at, &mut piece[..n]);
        s.write_all(&piece[..n]).expect("send value");
        at += n as u64;
    }
    final_status(s)
}

/// READ `key` whole, comparing with value `seed`; the bytes read.
fn read_value(s: &mut TcpStream, key: &str, group: u32, seed: u64) -> u64 {
    s.write_all(&request(key, group, command::READ, 0, &IoAttr::default()))
        .expect("send");
    let mut head = [0u8; HEADER_SIZE_BYTES];
    s.read_exact(&mut head).expect("reply");
    let h = CmdHeader::decode(&head).expect("header");
    assert_eq!(h.status, 0, "READ failed");
    let mut attr = [0u8; IO_ATTR_BYTES as usize];
    s.read_exact(&mut attr).expect("io_attr");
    let total = h.size - IO_ATTR_BYTES;
    let (mut got, mut want) = (vec![0u8; PIECE_BYTES], vec![0u8; PIECE_BYTES]);
    let mut at = 0;
    while at < total {
        let n = (total - at).min(PIECE_BYTES as u64) as usize;
        s.read_exact(&mut got[..n]).expect("value");
        fill(seed, at, &mut want[..n]);
        assert!(got[..n] == want[..n], "bytes at {at} differ");
        at += n as u64;
    }
    total
}

/// Copy `bytes` generated the same way over a plain loopback socket; seconds taken.
fn loopback_copy(bytes: u64) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let (mut got, mut want) = (vec![0u8; PIECE_BYTES], vec![0u8; PIECE_BYTES]);
        let mut at = 0u64;
        while at < bytes {
            let n = (bytes - at).min(PIECE_BYTES as u64) as usize;
            s.read_exact(&mut got[..n]).expect("copy");
            fill(7, at, &mut want[..n]);
            assert!(got[..n] == want[..n]);
            at += n as u64;
        }
    });
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut piece = vec![0u8; PIECE_BYTES];
    let mut at = 0;
    while at < bytes {
        let n = (bytes - at).min(PIECE_BYTES as u64) as usize;
        fill(7, at, &mut piece[..n]);
        s.write_all(&piece[..n]).expect("copy");
        at += n as u64;
    }
    reader.join().expect("reader");
    started.elapsed().as_secs_f64()
}

fn roundtrip(addr: SocketAddr, group: u32, bytes: u64, rounds: u32) {
    let mib = bytes as f64 / f64::from(1u32 << 20);
    let mut s = connect(addr);
    for round in 0..rounds {
        let copy_s = loopback_copy(bytes);
        let started = Instant::now();
        assert_eq!(write_value(&mut s, "large-value", group, 11, bytes), 0);
        let write_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        assert_eq!(read_value(&mut s, "large-value", group, 11), bytes);
        let read_s = started.elapsed().as_secs_f64();
        println!(
            "round {round}: {mib:.0} MiB loopback copy {:.0} MiB/s, WRITE {:.0} MiB/s ({write_s:.2} s, {:.2}x), READ {:.0} MiB/s ({read_s:.2} s, {:.2}x)",
            mib / copy_s,
            mib / write_s,
            copy_s / write_s,
            mib / read_s,
            copy_s / read_s,
        );
    }
}

/// The large values streamed during a `p99` run, and where to.
struct Load {
    bytes: u64,
    writers: usize,
    /// Stream into this discarding socket instead of the node.
    sink: Option<SocketAddr>,
}

/// A socket that reads and drops whatever each connection sends.
fn start_sink() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("sink");
    let addr = listener.local_addr().expect("sink addr");
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; PIECE_BYTES];
                while s.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    addr
}

/// Stream value `seed` of `bytes` into the sink, as [`write_value`] sends it to a node.
fn sink_value(s: &mut TcpStream, seed: u64, bytes: u64) {
    let mut piece = vec![0u8; PIECE_BYTES];
    let mut at = 0;
    while at < bytes {
        let n = (bytes - at).min(PIECE_BYTES as u64) as usize;
        fill(seed, at, &mut piece[..n]);
        s.write_all(&piece[..n]).expect("send to the sink");
        at += n as u64;
    }
}

fn p99(addr: SocketAddr, group: u32, load: &Load, readers: usize, seconds: u64) {
    let (bytes, writers, sink) = (load.bytes, load.writers, load.sink);
    let mut s = connect(addr);
    let io = IoAttr {
        size: 100,
        ..IoAttr::default()
    };
    s.write_all(&request("small-100", group, command::WRITE, 100, &io))
        .expect("send");
    s.write_all(&[5u8; 100]).expect("send");
    assert_eq!(final_status(&mut s), 0);
    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = (0..writers)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut done = 0u64;
                if let Some(sink) = sink {
                    let mut s = TcpStream::connect(sink).expect("connect to the sink");
                    while !stop.load(Ordering::Relaxed) {
                        sink_value(&mut s, w as u64, bytes);
                        done += bytes;
                    }
                    return done;
                }
                let mut s = connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(
                        write_value(&mut s, &format!("large-{w}"), group, w as u64, bytes),
                        0
                    );
                    done += bytes;
                }
                done
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let small: Vec<_> = (0..readers)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    s.write_all(&request(
                        "small-100",
                        group,
                        command::READ,
                        0,
                        &IoAttr::default(),
                    ))
                    .expect("send");
                    assert_eq!(final_status(&mut s), 0);
                    lat.push(started.elapsed());
                    std::thread::sleep(Duration::from_millis(2));
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<Duration> = small
        .into_iter()
        .flat_map(|t| t.join().expect("reader"))
        .collect();
    let written: u64 = streams.into_iter().map(|t| t.join().expect("writer")).sum();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{} small READs while {writers} connections streamed {} MiB: p50 {:?} p99 {:?} p99.9 {:?} max {:?}",
        lat.len(),
        written >> 20,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        lat[lat.len() - 1]
    );
}

fn main() {
    let args = Args::parse();
    match args.mode {
        Mode::Roundtrip { bytes, rounds } => roundtrip(args.addr, args.group, bytes, rounds),
        Mode::P99 {
            bytes,
            writers,
            readers,
            seconds,
            sink,
        } => {
            let load = Load {
                bytes,
                writers,
                sink: sink.then(start_sink),
            };
            p99(args.addr, args.group, &load, readers, seconds)
        }
    }
}
