//! kill -9 of a `dnet_ioserv` while its timed defragmentation rewrites files: small data
//! files, a pass every second, and a client that writes, rewrites and removes keys, so the
//! kill lands inside passes. After each restart every acknowledged value reads back exact
//! and no acknowledged remove shows its key again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::kv::read;
use common::{session, NodeSpec, TestNode};
use elliptics::client::Key;
use elliptics::protocol::errno;
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Value number `n` of a key: size and bytes depend on both.
fn value(key: &str, n: u32) -> Vec<u8> {
    let seed = key
        .bytes()
        .fold(n, |a, b| a.wrapping_mul(31) ^ u32::from(b));
    let len = 200 + (seed % 3000) as usize;
    (0..len).map(|j| (j as u32 ^ seed) as u8).collect()
}

/// What the client knows of a key: its acknowledged state (`None`: removed) and the state
/// an operation unanswered at the kill would leave.
#[derive(Debug, Default)]
struct Known {
    acked: HashMap<String, Option<Vec<u8>>>,
    in_flight: Option<(String, Option<Vec<u8>>)>,
}

/// Write new keys of `round`, rewrite them with other sizes and remove some, until an
/// operation fails or `stop` is set.
fn spawn_client(
    node: &TestNode,
    round: u32,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Known> {
    let s = session(node, &[1]);
    std::thread::spawn(move || {
        let mut known = Known::default();
        for i in 0u32.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            // Keys come back in turn: most of each file's records die soon.
            let name = format!("r{round}-k{}", i % 40);
            let state = (i % 7 != 3).then(|| value(&name, i));
            known.in_flight = Some((name.clone(), state.clone()));
            let done = match &state {
                Some(v) => s.write_data(&Key::from(name.as_str()), v, 0).wait().is_ok(),
                None => {
                    let r = s.remove(&Key::from(name.as_str())).wait();
                    r.is_ok() || r.is_err_and(|e| e.status == errno::ENOENT)
                }
            };
            if !done {
                break;
            }
            known.in_flight = None;
            known.acked.insert(name, state);
        }
        known
    })
}

fn check(node: &TestNode, all: &[Known]) {
    let s = session(node, &[1]);
    for known in all {
        for (name, acked) in &known.acked {
            let got = read(&s, name);
            let expected = match acked {
                Some(v) => Ok(v.clone()),
                None => Err(errno::ENOENT),
            };
            let in_flight = known.in_flight.as_ref().filter(|(n, _)| n == name);
            let alt = in_flight.map(|(_, st)| st.clone().ok_or(errno::ENOENT));
            assert!(
                got == expected || alt.as_ref() == Some(&got),
                "{name}: reads {:?}, acknowledged {:?}",
                got.as_ref().map(Vec::len),
                acked.as_ref().map(Vec::len)
            );
        }
    }
}

#[test]
fn kill_9_during_timed_defrags_loses_no_acknowledged_write_and_revives_no_remove() {
    let mut node = TestNode::start_with(NodeSpec::small_files(
        "64K",
        &[
            "\"defrag_timeout\": 1",
            "\"defrag_percentage\": 10",
            "\"defrag_splay\": 12",
        ],
    ));
    let mut rng = rand::thread_rng();
    let mut all = Vec::new();
    let mut passes = 0;
    for round in 0..5 {
        let stop = Arc::new(AtomicBool::new(false));
        let client = spawn_client(&node, round, stop.clone());
        std::thread::sleep(Duration::from_millis(rng.gen_range(1_200..2_500)));
        passes += node.log().matches("defrag pass done").count();
        node.signal(9);
        node.wait_exit(10_000).expect("killed node is reaped");
        stop.store(true, Ordering::Relaxed);
        all.push(client.join().expect("client"));
        node.restart_until_listening();
        check(&node, &all);
    }
    assert!(passes > 0, "no defrag pass ran: the test proves nothing");
    let ops: usize = all.iter().map(|k| k.acked.len()).sum();
    assert!(ops >= 100, "only {ops} keys acknowledged");
}
