//! `dnet_recovery dc` between two nodes (group 1 and group 2): keys present only in group 1
//! are copied to group 2.
//!
//! - dc copies only the replicas that are missing or older, the newest one, while the
//!   iterators still stream in (runs in CI).
//! - A dc run killed with SIGKILL part-way and started again with the same arguments
//!   continues after what it had finished (it iterates only the rest) and leaves every key
//!   in both groups (runs in CI).
//! - Throughput, ignored by default (`cargo test --release --test recovery_throughput --
//!   --ignored --nocapture`): 100 000 keys of 16 bytes (keys/s), and 10 000 keys of 64 KiB
//!   against the bandwidth of a plain loopback socket copy measured in the same run.

mod common;

use common::cluster::{two_groups, wait_for, ClusterNode, RawConn};
use elliptics::client::{Key, Node, Session};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

/// Write `count` keys named `prefix-N` with `value` to group 1 only.
fn fill_group_1(client: &Node, prefix: &str, count: usize, value: &[u8]) -> Vec<String> {
    fill(client, &[1], prefix, count, value)
}

/// Write `count` keys named `prefix-N` with `value` to `groups`.
fn fill(client: &Node, groups: &[u32], prefix: &str, count: usize, value: &[u8]) -> Vec<String> {
    let mut session = Session::new(client);
    session.set_groups(groups);
    let keys: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
    for chunk in keys.chunks(500) {
        let pending: Vec<_> = chunk
            .iter()
            .map(|k| session.write_data(&Key::from(k.as_str()), value, 0))
            .collect();
        for p in pending {
            p.wait().expect("write");
        }
    }
    keys
}

fn recovery_command(remote: &str, state_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnet_recovery"));
    cmd.args(["dc", "-r", remote, "-g", "1,2", "-w", "120", "-D"])
        .arg(state_dir)
        .args(extra);
    cmd
}

/// A number from the summary line: the digits after `name`.
fn field(text: &str, name: &str) -> u64 {
    let at = text
        .find(name)
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    text[at + name.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("number")
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_killed_dc_run_started_again_continues_where_it_stopped() {
    const KEYS: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = tempfile::tempdir().expect("state dir");
    let (nodes, client) = two_groups(dir.path());
    let keys = fill_group_1(&client, "resume", KEYS, b"0123456789abcdef");
    // Small batches one at a time: the run lasts long enough to be cut.
    let args = ["-n", "1", "-b", "2"];
    let mut first = recovery_command(&nodes[0].remote(), state_dir.path(), &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnet_recovery");
    wait_for(120, "the first run to save its progress", || {
        std::fs::read_dir(state_dir.path())
            .map(|d| {
                d.flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "state"))
            })
            .unwrap_or(false)
    });
    first.kill().expect("kill -9");
    let _ = first.wait();

    let out = recovery_command(
        &nodes[0].remote(),
        state_dir.path(),
        &["-n", "4", "-b", "256"],
    )
    .output()
    .expect("dnet_recovery");
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}");
    let resumed = field(&text, "resumed after");
    assert!(resumed > 0, "the second run continues: {text}");
    assert!(
        field(&text, "keys scanned:") < KEYS as u64 * 2,
        "the second run iterates only what was left: {text}"
    );
    assert_eq!(field(&text, "failed:"), 0, "{text}");
    assert_eq!(
        std::fs::read_dir(state_dir.path()).expect("dir").count(),
        0,
        "a finished run leaves no state file"
    );
    let mut g2 = RawConn::dial(nodes[1].addr());
    for k in &keys {
        let id = elliptics::key::RawId::from_key(k.as_bytes());
        assert_eq!(g2.read(id, 2).0, 0, "{k} is in group 2");
    }
    // And a third run finds nothing left to copy.
    let out = recovery_command(&nodes[0].remote(), state_dir.path(), &[])
        .output()
        .expect("dnet_recovery");
    assert_eq!(field(&stdout_of(&out), "copied:"), 0);
}

#[test]
fn dc_copies_only_what_differs_while_the_iterators_stream() {
    // More keys than the iterators show before the first copy, so copies start while
    // the iterators are still sending.
    const SAME: usize = 12_000;
    const ONLY_1: usize = 300;
    const NEWER_IN_2: usize = 100;
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = tempfile::tempdir().expect("state dir");
    let (nodes, client) = two_groups(dir.path());
    fill(&client, &[1, 2], "same", SAME, b"identical value");
    let only_1 = fill(&client, &[1], "only1", ONLY_1, b"group 1 only");
    let newer = fill(&client, &[1], "newer", NEWER_IN_2, b"old");
    // A second later: group 2's replicas are newer and longer.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fill(&client, &[2], "newer", NEWER_IN_2, b"newer and longer");

    let out = recovery_command(&nodes[0].remote(), state_dir.path(), &["-b", "64"])
        .output()
        .expect("dnet_recovery");
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        field(&text, "copied:"),
        (ONLY_1 + NEWER_IN_2) as u64,
        "identical replicas are not copied: {text}"
    );
    assert_eq!(
        field(&text, "keys scanned:"),
        (2 * SAME + ONLY_1 + 2 * NEWER_IN_2) as u64
    );
    let mut g1 = RawConn::dial(nodes[0].addr());
    let mut g2 = RawConn::dial(nodes[1].addr());
    for k in &only_1 {
        let id = elliptics::key::RawId::from_key(k.as_bytes());
        assert_eq!(g2.read(id, 2).0, 0, "{k} copied to group 2");
    }
    for k in &newer {
        let id = elliptics::key::RawId::from_key(k.as_bytes());
        let (s1, v1) = g1.read(id, 1);
        let (s2, v2) = g2.read(id, 2);
        assert_eq!((s1, s2), (0, 0), "{k}");
        assert!(
            v1.ends_with(b"newer and longer"),
            "{k}: group 1 got the newer replica"
        );
        assert!(
            v2.ends_with(b"newer and longer"),
            "{k}: group 2 kept its newer replica"
        );
    }
}

/// Run a full dc over `key_count` keys; (seconds, summary).
fn timed_dc(nodes: &[ClusterNode], state_dir: &Path, key_count: usize) -> (f64, String) {
    let started = Instant::now();
    let out = recovery_command(&nodes[0].remote(), state_dir, &["-n", "8"])
        .output()
        .expect("dnet_recovery");
    let secs = started.elapsed().as_secs_f64();
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("copied: {key_count}")), "{text}");
    (secs, text)
}

#[test]
#[ignore]
fn dc_copies_100k_small_keys() {
    const KEY_COUNT: usize = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let (nodes, client) = two_groups(dir.path());
    fill_group_1(&client, "small", KEY_COUNT, b"0123456789abcdef");
    let (secs, text) = timed_dc(&nodes, dir.path(), KEY_COUNT);
    println!(
        "dc of {KEY_COUNT} keys of 16 bytes: {secs:.2}s, {:.0} keys/s\n{text}",
        KEY_COUNT as f64 / secs
    );
}

/// Bytes per second of one plain TCP copy of `total` bytes over 127.0.0.1.
fn loopback_copy_bytes_per_s(total: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0usize;
        while got < total {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "closed early");
            got += n;
        }
    });
    let chunk = vec![7u8; 1 << 16];
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut sent = 0usize;
    while sent < total {
        s.write_all(&chunk).expect("write");
        sent += chunk.len();
    }
    reader.join().expect("reader");
    total as f64 / started.elapsed().as_secs_f64()
}

#[test]
#[ignore]
fn dc_copies_10k_keys_of_64k_near_loopback_bandwidth() {
    const KEY_COUNT: usize = 10_000;
    const VALUE_BYTES: usize = 64 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let (nodes, client) = two_groups(dir.path());
    fill_group_1(&client, "large", KEY_COUNT, &vec![0x5a; VALUE_BYTES]);
    let total = KEY_COUNT * VALUE_BYTES;
    let socket = loopback_copy_bytes_per_s(total);
    let (secs, text) = timed_dc(&nodes, dir.path(), KEY_COUNT);
    let dc = total as f64 / secs;
    let socket_again = loopback_copy_bytes_per_s(total);
    let mib = |b: f64| b / (1024.0 * 1024.0);
    println!(
        "dc of {KEY_COUNT} keys of 64 KiB: {secs:.2}s, {:.0} MiB/s; loopback socket copy: {:.0} \
         MiB/s before, {:.0} MiB/s after; ratio {:.2}\n{text}",
        mib(dc),
        mib(socket),
        mib(socket_again),
        dc / ((socket + socket_again) / 2.0)
    );
}
