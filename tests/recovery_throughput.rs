//! `dnet_recovery dc` throughput: 100 000 small keys present only in group 1 are copied to
//! group 2. Ignored by default (run with `--release -- --ignored --nocapture`).

mod cluster_support;

use cluster_support::{free_port, mesh, wait_for, ClusterNode};
use elliptics::client::{ClientConfig, Key, Node, Session};
use std::process::Command;
use std::time::Instant;

const KEY_COUNT: usize = 100_000;

#[test]
#[ignore]
fn dc_copies_100k_small_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut nodes = vec![
        ClusterNode::new(dir.path(), 1, port, &[(1, 1)]),
        ClusterNode::new(dir.path(), 2, port, &[(1, 2)]),
    ];
    mesh(&mut nodes);
    for n in nodes.iter_mut() {
        n.start();
    }
    let client = Node::new(ClientConfig::default());
    client.add_remotes(&[&nodes[0].remote()]).expect("connect");
    wait_for(20, "both nodes", || client.connections().len() == 2);
    let mut session = Session::new(&client);
    session.set_groups(&[1]);
    let keys: Vec<String> = (0..KEY_COUNT).map(|i| format!("small-{i}")).collect();
    for chunk in keys.chunks(1000) {
        let pending: Vec<_> = chunk
            .iter()
            .map(|k| session.write_data(&Key::from(k.as_str()), b"0123456789abcdef", 0))
            .collect();
        for p in pending {
            p.wait().expect("write");
        }
    }
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_recovery"))
        .args([
            "dc",
            "-r",
            &nodes[0].remote(),
            "-g",
            "1,2",
            "-n",
            "8",
            "-w",
            "120",
        ])
        .output()
        .expect("dnet_recovery");
    let secs = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("copied: {KEY_COUNT}")), "{text}");
    println!(
        "dc of {KEY_COUNT} keys: {secs:.2}s, {:.0} keys/s\n{text}",
        KEY_COUNT as f64 / secs
    );
}
