//! Loopback echo through the runtime: round trips per second at 32 connections with 64-byte
//! messages, and the server thread's CPU time per round trip (utime + stime from its
//! `/proc/thread-self/stat`). The client is a second runtime thread with one task per
//! connection, closed loop (one message in flight per connection).
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use elliptics::runtime::{self, mailbox, TcpListener, TcpStream};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 32;
const MESSAGE_BYTES: usize = 64;
const WARMUP_MS: u64 = 500;
const MEASURE_MS: u64 = 3_000;
/// `/proc` reports CPU times in USER_HZ, fixed at 100 per second by the kernel ABI.
const USER_HZ: u64 = 100;

/// utime + stime of the calling thread, in clock ticks.
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

enum Phase {
    Start,
    Stop,
}

fn server(ready: mpsc::Sender<SocketAddr>, phases: mailbox::Receiver<Phase>) -> u64 {
    runtime::block_on(1024, async move {
        let listener = TcpListener::bind_reuseport("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        ready.send(listener.local_addr().unwrap()).unwrap();
        runtime::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                stream.set_nodelay(true).unwrap();
                runtime::spawn(async move {
                    let mut buf = Vec::with_capacity(64 * 1024);
                    loop {
                        buf.clear();
                        let (res, back) = stream.read(buf).await;
                        match res {
                            Ok(n) if n > 0 => {}
                            _ => return,
                        }
                        let out = Bytes::copy_from_slice(&back);
                        buf = back;
                        if stream.write_all(vec![out]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let mut start = 0;
        while let Some(phase) = phases.recv().await {
            match phase {
                Phase::Start => start = thread_cpu_ticks(),
                Phase::Stop => return thread_cpu_ticks() - start,
            }
        }
        0
    })
    .unwrap()
}

async fn client_connection(addr: SocketAddr, count: Rc<std::cell::Cell<u64>>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let msg = Bytes::from(vec![0x5au8; MESSAGE_BYTES]);
    let mut buf = Vec::with_capacity(MESSAGE_BYTES);
    loop {
        if stream.write_all(vec![msg.clone()]).await.is_err() {
            return;
        }
        buf.clear();
        while buf.len() < MESSAGE_BYTES {
            let (res, back) = stream.read(buf).await;
            buf = back;
            match res {
                Ok(n) if n > 0 => {}
                _ => return,
            }
        }
        count.set(count.get() + 1);
    }
}

fn main() {
    runtime::probe().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (phase_tx, phase_rx) = mailbox::channel(4);
    let server = thread::spawn(move || server(ready_tx, phase_rx));
    let addr = ready_rx.recv().unwrap();
    let (round_trips, elapsed) = runtime::block_on(1024, async move {
        let count = Rc::new(std::cell::Cell::new(0u64));
        for _ in 0..CONNECTIONS {
            runtime::spawn(client_connection(addr, Rc::clone(&count)));
        }
        runtime::sleep(Duration::from_millis(WARMUP_MS)).await;
        phase_tx.try_send(Phase::Start).ok().unwrap();
        let (start_count, start) = (count.get(), Instant::now());
        runtime::sleep(Duration::from_millis(MEASURE_MS)).await;
        phase_tx.try_send(Phase::Stop).ok().unwrap();
        (count.get() - start_count, start.elapsed())
    })
    .unwrap();
    let server_ticks = server.join().unwrap();
    let per_sec = round_trips as f64 / elapsed.as_secs_f64();
    let cpu_us = server_ticks as f64 * 1e6 / USER_HZ as f64;
    println!(
        "echo {CONNECTIONS} conns x {MESSAGE_BYTES} B: {round_trips} round trips in {:.2} s = {per_sec:.0}/s; \
         server CPU {cpu_us:.0} us = {:.2} us per round trip",
        elapsed.as_secs_f64(),
        cpu_us / round_trips.max(1) as f64
    );
}
