//! Timeouts and cancellation: dropped reads, timed-out reads and a dropped listener with
//! accepted-but-untaken connections must leave no fd behind and must not crash.

#![allow(clippy::unwrap_used)]

use elliptics::runtime::{self, TcpListener, TcpStream};
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const DROPPED_READS: usize = 10_000;
const CONNECTIONS: usize = 100;

/// Tests here count the process's fds, so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn probe() -> std::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = runtime::probe() {
        panic!("{e}");
    }
    guard
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A std listener that accepts `n` connections and holds them until told to close.
fn silent_peer(n: usize) -> (SocketAddr, mpsc::Sender<()>, thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (close_tx, close_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let conns: Vec<_> = (0..n).map(|_| listener.accept().unwrap().0).collect();
        let _ = close_rx.recv();
        drop(conns);
    });
    (addr, close_tx, peer)
}

#[test]
fn timed_out_read_leaves_connection_usable() {
    let _serial = probe();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        go_rx.recv().unwrap();
        s.write_all(b"late hello").unwrap();
        s
    });
    runtime::block_on(32, async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        let read = stream.read(Vec::with_capacity(64));
        let res = runtime::timeout(Duration::from_millis(50), read).await;
        assert!(res.is_err(), "a silent peer must time out");
        go_tx.send(()).unwrap();
        let (res, buf) = stream.read(Vec::with_capacity(64)).await;
        assert_eq!(res.unwrap(), 10);
        assert_eq!(&buf, b"late hello");
    })
    .unwrap();
    drop(peer.join().unwrap());
}

#[test]
fn dropping_ten_thousand_pending_reads_leaks_no_fd() {
    let _serial = probe();
    let before = open_fds();
    let (addr, close_tx, peer) = silent_peer(CONNECTIONS);
    runtime::block_on(256, async move {
        let mut streams = Vec::new();
        for _ in 0..CONNECTIONS {
            streams.push(Rc::new(TcpStream::connect(addr).await.unwrap()));
        }
        // Half the reads are dropped by their timeout, half by aborting their task.
        let mut handles = Vec::new();
        for i in 0..DROPPED_READS {
            let stream = Rc::clone(&streams[i % CONNECTIONS]);
            if i % 2 == 0 {
                handles.push(runtime::spawn(async move {
                    let read = stream.read(Vec::with_capacity(16));
                    let res = runtime::timeout(Duration::from_millis(20), read).await;
                    assert!(res.is_err());
                }));
            } else {
                handles.push(runtime::spawn(async move {
                    let _ = stream.read(Vec::with_capacity(16)).await;
                    unreachable!("the peer never writes");
                }));
            }
        }
        runtime::sleep(Duration::from_millis(5)).await;
        for (i, h) in handles.iter().enumerate() {
            if i % 2 == 1 {
                h.abort();
            }
        }
        // Every read ends, by its timeout or its abort; a loaded machine may take a while.
        for _ in 0..1_000 {
            if handles.iter().all(|h| h.is_finished()) {
                break;
            }
            runtime::sleep(Duration::from_millis(10)).await;
        }
        assert!(handles.iter().all(|h| h.is_finished()));
        drop(streams);
    })
    .unwrap();
    close_tx.send(()).unwrap();
    peer.join().unwrap();
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn dropped_listener_closes_connections_accepted_after_cancel() {
    let _serial = probe();
    let before = open_fds();
    let (addr_tx, addr_rx) = mpsc::channel();
    let (connected_tx, connected_rx) = mpsc::channel::<()>();
    let clients = thread::spawn(move || {
        let addr: SocketAddr = addr_rx.recv().unwrap();
        let conns: Vec<_> = (0..8)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        connected_tx.send(()).unwrap();
        conns
    });
    runtime::block_on(32, async move {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let listener = TcpListener::bind_reuseport(any, 64).unwrap();
        // Arm the multishot accept, then give up on it.
        let res = runtime::timeout(Duration::from_millis(10), listener.accept()).await;
        assert!(res.is_err());
        addr_tx.send(listener.local_addr().unwrap()).unwrap();
        while connected_rx.try_recv().is_err() {
            runtime::sleep(Duration::from_millis(2)).await;
        }
        // Let the kernel post the accept completions, then drop them untaken.
        runtime::sleep(Duration::from_millis(20)).await;
        drop(listener);
    })
    .unwrap();
    drop(clients.join().unwrap());
    assert_eq!(open_fds(), before, "accepted fds leaked");
}

#[test]
fn nested_block_on_is_refused() {
    let _serial = probe();
    runtime::block_on(8, async {
        let inner = runtime::block_on(8, async {});
        assert!(matches!(inner, Err(runtime::RuntimeError::Nested)));
    })
    .unwrap();
}
