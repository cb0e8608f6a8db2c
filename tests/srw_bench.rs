//! Exec round trips next to READ, same node, same run (ignored by default; run with
//! `cargo test --test srw_bench -- --ignored --nocapture`). A 100-byte echo through the
//! Rust echo worker and a 100-byte READ, with 1 and 32 concurrent callers, for a short
//! fixed time each; prints round trips/s and p50/p99.

mod common;
mod srw_common;

use elliptics::client::{ClientConfig, Key, Node, Session};
use srw_common::{srw_node, upload_echo};
use std::time::{Duration, Instant};

const RUN_TIME: Duration = Duration::from_secs(3);

fn measure(label: &str, callers: usize, op: impl Fn(usize) + Sync) {
    let start = Instant::now();
    let mut all: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..callers)
            .map(|c| {
                let op = &op;
                scope.spawn(move || {
                    let mut lat = Vec::new();
                    let mut i = 0usize;
                    while start.elapsed() < RUN_TIME {
                        let t = Instant::now();
                        op(c * 1_000_000 + i);
                        lat.push(t.elapsed());
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("caller"))
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{label:<22} callers={callers:<3} {:>8.0} ops/s  p50={:>7.1}us  p99={:>7.1}us  (n={})",
        all.len() as f64 / secs,
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        all.len()
    );
}

#[test]
#[ignore]
fn exec_echo_and_read_round_trips() {
    let node = srw_node(2);
    upload_echo(
        &node,
        "bench",
        r#"{"pool-limit": 2, "concurrency": 32, "queue-limit": 1000}"#,
        "{}",
    );
    let n = Node::new(ClientConfig::default());
    n.add_remotes(&[node.remote().as_str()]).expect("connect");
    let mut s = Session::new(&n);
    s.set_groups(&[1]);
    s.set_timeout(10);
    let payload = [b'x'; 100];
    for i in 0..64 {
        s.write_data(&Key::from(format!("r{i}").as_str()), &payload, 0)
            .wait()
            .expect("write");
    }
    for callers in [1usize, 32] {
        measure("exec echo 100 B", callers, |i| {
            let key = Key::from(format!("e{}", i % 64).as_str());
            let r = s.exec(Some(&key), "bench@echo", &payload, -1).wait();
            assert!(r.is_ok(), "{r:?}");
        });
        measure("read 100 B", callers, |i| {
            let key = Key::from(format!("r{}", i % 64).as_str());
            let r = s.read_data(&key, 0, 0).wait();
            assert!(r.is_ok(), "{r:?}");
        });
    }
}
