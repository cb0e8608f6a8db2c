//! A short load measurement of the client against one real `dnet_ioserv` (ignored by
//! default; run with `cargo test --release --test client_throughput -- --ignored --nocapture`).
//! It asserts every operation succeeded and prints ops/s for sequential and pipelined use.

mod common;

use common::TestNode;
use elliptics::client::{join_all, ClientConfig, Key, Node, Session};
use std::time::Instant;

const OPS: usize = 2000;
const IN_FLIGHT: usize = 64;
const VALUE_SIZE_BYTES: usize = 1024;

#[test]
#[ignore = "measurement; run explicitly"]
fn sequential_and_pipelined_ops_per_second() {
    let node = TestNode::start(&[1]);
    let client = Node::new(ClientConfig::default());
    client.add_remotes(&[&node.remote()]).expect("connect");
    let mut s = Session::new(&client);
    s.set_groups(&[1]);
    let value = vec![0x5au8; VALUE_SIZE_BYTES];
    let keys: Vec<Key> = (0..OPS)
        .map(|i| Key::from(format!("load-{i}").as_str()))
        .collect();

    let t = Instant::now();
    for k in &keys {
        s.write_data(k, &value, 0).wait().expect("write");
    }
    let write_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for k in &keys {
        let e = s.read_data(k, 0, 0).wait().expect("read");
        assert_eq!(
            e.iter()
                .find_map(|e| e.payload.as_ref())
                .map(|p| p.data.len()),
            Some(VALUE_SIZE_BYTES)
        );
    }
    let read_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for batch in keys.chunks(IN_FLIGHT) {
        let all = join_all(batch.iter().map(|k| s.read_data(k, 0, 0)).collect())
            .wait()
            .expect("batch");
        assert!(all.iter().all(|r| r.is_ok()));
    }
    let pipelined_s = t.elapsed().as_secs_f64();
    println!(
        "{OPS} x {VALUE_SIZE_BYTES} B: sequential write {:.0} ops/s, sequential read {:.0} ops/s, \
         pipelined read ({IN_FLIGHT} in flight) {:.0} ops/s",
        OPS as f64 / write_s,
        OPS as f64 / read_s,
        OPS as f64 / pipelined_s
    );
}
