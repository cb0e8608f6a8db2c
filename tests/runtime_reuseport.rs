//! SO_REUSEPORT: two threads, each with its own runtime and listener on the same port, both
//! accept connections.

#![allow(clippy::unwrap_used)]

use elliptics::runtime::{self, TcpListener};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const CONNECTIONS: usize = 64;
const IDLE_STOP_MS: u64 = 500;

fn probe() {
    if let Err(e) = runtime::probe() {
        panic!("{e}");
    }
}

/// Serve one-byte echoes on `addr` until no connection arrives for a while; return how many
/// connections this shard accepted.
fn shard(addr: SocketAddr, bound: mpsc::Sender<SocketAddr>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        runtime::block_on(64, async move {
            let listener = TcpListener::bind_reuseport(addr, 128).unwrap();
            bound.send(listener.local_addr().unwrap()).unwrap();
            let mut accepted = 0;
            let idle = Duration::from_millis(IDLE_STOP_MS);
            while let Ok(conn) = runtime::timeout(idle, listener.accept()).await {
                let (stream, _) = conn.unwrap();
                accepted += 1;
                runtime::spawn(async move {
                    let (res, buf) = stream.read(Vec::with_capacity(1)).await;
                    if res.is_ok() {
                        let _ = stream.write_all(vec![bytes::Bytes::from(buf)]).await;
                    }
                });
            }
            accepted
        })
        .unwrap()
    })
}

#[test]
fn two_runtimes_on_one_port_both_accept() {
    probe();
    let (tx, rx) = mpsc::channel();
    let first = shard("127.0.0.1:0".parse().unwrap(), tx.clone());
    let addr = rx.recv().unwrap();
    let second = shard(addr, tx);
    assert_eq!(rx.recv().unwrap(), addr);
    for i in 0..CONNECTIONS {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(&[i as u8]).unwrap();
        let mut back = [0u8; 1];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back[0], i as u8);
    }
    let (a, b) = (first.join().unwrap(), second.join().unwrap());
    assert_eq!(a + b, CONNECTIONS);
    assert!(a > 0 && b > 0, "both shards must accept: {a} and {b}");
}
