//! Echo over the io_uring runtime: many blocking std clients against one runtime server,
//! and a large vectored write.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use elliptics::runtime::{self, TcpListener, TcpStream};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;

const CLIENTS: usize = 50;
const MESSAGES_PER_CLIENT: usize = 1_000;

fn probe() {
    if let Err(e) = runtime::probe() {
        panic!("{e}");
    }
}

async fn echo_connection(stream: TcpStream) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let (res, back) = stream.read(buf).await;
        buf = back;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let out = Bytes::copy_from_slice(&buf);
        if stream.write_all(vec![out]).await.is_err() {
            return;
        }
    }
}

/// Run an echo server on its own thread until `accepts` connections have come and gone.
fn spawn_echo_server(accepts: usize) -> (SocketAddr, thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        runtime::block_on(256, async move {
            let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let listener = TcpListener::bind_reuseport(addr, 1024).unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let mut handles = Vec::new();
            let done = Rc::new(std::cell::Cell::new(0usize));
            for _ in 0..accepts {
                let (stream, _peer) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let done = Rc::clone(&done);
                handles.push(runtime::spawn(async move {
                    echo_connection(stream).await;
                    done.set(done.get() + 1);
                }));
            }
            while done.get() < accepts {
                runtime::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .unwrap();
    });
    (rx.recv().unwrap(), handle)
}

#[test]
fn fifty_clients_get_every_message_echoed_byte_exact() {
    probe();
    let (addr, server) = spawn_echo_server(CLIENTS);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let mut back = [0u8; 64];
                for m in 0..MESSAGES_PER_CLIENT {
                    let msg = format!("client {c:03} message {m:05} ........");
                    s.write_all(msg.as_bytes()).unwrap();
                    let got = &mut back[..msg.len()];
                    s.read_exact(got).unwrap();
                    assert_eq!(got, msg.as_bytes());
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
}

#[test]
fn vectored_write_of_several_mib_arrives_complete() {
    probe();
    const PART_BYTES: usize = 1 << 20;
    const PARTS: usize = 6;
    let parts: Vec<Bytes> = (0..PARTS)
        .map(|p| {
            Bytes::from(
                (0..PART_BYTES)
                    .map(|i| (i * 7 + p * 13) as u8)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let expected: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let reader = thread::spawn(move || {
        let (mut s, _) = std_listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    runtime::block_on(64, async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(parts).await.unwrap();
        stream.shutdown().unwrap();
    })
    .unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "payload differs");
}
