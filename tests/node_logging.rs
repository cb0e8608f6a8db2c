//! The node's log against a real `dnet_ioserv`: the config's level filters lines (a
//! client's missing key is a DEBUG line, absent at `info`), lines of a request carry its
//! `trace_id` and `trans`, a file sink holds no colour codes, and SIGHUP after the file was
//! moved makes the node write to a new file under the old name (logrotate's habit), and a
//! worker that keeps crashing is named a crash loop where a single loss is not.

mod common;
mod srw_common;

use common::raw::{read_request, RawConn};
use common::TestNode;
use elliptics::client::{ClientConfig, Key, Node, Session};
use std::time::{Duration, Instant};

const SIGHUP: i32 = 1;
const SIGTERM: i32 = 15;

/// Wait up to 10 s for `cond` on the text of `path`.
fn wait_for(path: &std::path::Path, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if cond(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}; {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Restart `node` with its logger at `level`.
fn set_level(node: &mut TestNode, level: &str) {
    let config = std::fs::read_to_string(&node.config_path).expect("config");
    let config = config.replacen("\"level\": \"info\"", &format!("\"level\": \"{level}\""), 1);
    std::fs::write(&node.config_path, config).expect("write config");
    node.restart();
}

/// READ a key nobody wrote, with `trace_id` on the request; returns its `trans`.
fn read_missing(node: &TestNode, trace_id: u64) -> u64 {
    let (mut conn, _) = RawConn::handshaken(node.addr());
    let (mut header, body) = read_request(b"never-written", 1);
    header.trace_id = trace_id;
    let trans = conn.request(header, &body);
    let replies = conn.recv_transaction(trans);
    assert_eq!(replies.last().expect("ack").header.status, -2);
    trans
}

#[test]
fn a_missing_key_is_a_debug_line_with_the_requests_trace_id_and_trans() {
    let mut node = TestNode::start(&[1]);
    read_missing(&node, 0x5eed);
    // At info the client's -ENOENT is not the operator's business.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!node.log().contains("no such key"), "{}", node.log());

    set_level(&mut node, "debug");
    let trace_id = 0x00ab_cdef_1234_5678;
    let trans = read_missing(&node, trace_id);
    let log_path = node.dir.path().join("ioserv.log");
    let text = wait_for(&log_path, "the DEBUG line of the missing key", |t| {
        t.contains("no such key")
    });
    let line = text
        .lines()
        .find(|l| l.contains("no such key"))
        .expect("line");
    assert!(line.contains(" DEBUG: "), "{line}");
    assert!(
        line.contains(&format!("trace_id={trace_id:016x} trans={trans}")),
        "{line}"
    );
    assert!(
        line.contains(&format!(" {trace_id:016x}/")),
        "the request id column: {line}"
    );
    assert!(!text.contains('\x1b'), "no colour codes in a file");
}

#[test]
fn sighup_after_the_log_file_was_moved_writes_to_a_new_file_under_the_old_name() {
    let mut node = TestNode::start(&[1]);
    let log_path = node.dir.path().join("ioserv.log");
    let moved = node.dir.path().join("ioserv.log.1");
    std::fs::rename(&log_path, &moved).expect("move the log");
    node.signal(SIGHUP);
    let fresh = wait_for(&log_path, "a new log file after SIGHUP", |t| {
        t.contains("log files reopened")
    });
    assert!(!fresh.contains("listening on"), "{fresh}");
    node.signal(SIGTERM);
    assert!(
        node.wait_exit(10_000).is_some(),
        "the node exits on SIGTERM"
    );
    let fresh = std::fs::read_to_string(&log_path).expect("new log");
    assert!(fresh.contains("shutting down"), "{fresh}");
    let old = std::fs::read_to_string(&moved).expect("moved log");
    assert!(old.contains("listening on"), "{old}");
    assert!(
        !old.contains("shutting down") && !old.contains("reopened"),
        "{old}"
    );
}

/// The status of an exec of `event` for key "k" (0 when every reply was a success).
fn exec_status(s: &Session, event: &str) -> i32 {
    let entries = s
        .exec_unchecked(Some(&Key::from("k")), event, b"x", -1)
        .wait()
        .expect("exec");
    entries
        .iter()
        .map(|e| e.status)
        .find(|s| *s != 0)
        .unwrap_or(0)
}

#[test]
fn a_worker_crashing_again_within_a_minute_is_logged_as_a_crash_loop() {
    let node = srw_common::srw_node(1);
    srw_common::upload_echo(&node, "crashy", "{}", "{}");
    let client = Node::new(ClientConfig::default());
    client
        .add_remotes(&[node.remote().as_str()])
        .expect("connect");
    let mut s = Session::new(&client);
    s.set_groups(&[1]);
    s.set_timeout(10);
    assert_eq!(exec_status(&s, "crashy@echo"), 0);
    assert!(exec_status(&s, "crashy@crash") < 0);
    let log_path = node.dir.path().join("ioserv.log");
    let first = wait_for(&log_path, "the first loss", |t| t.contains("worker gone"));
    assert!(
        !first.contains("crash loop"),
        "one loss is no loop:\n{first}"
    );
    assert_eq!(exec_status(&s, "crashy@echo"), 0, "a fresh worker serves");
    assert!(exec_status(&s, "crashy@crash") < 0);
    let text = wait_for(&log_path, "the crash loop warning", |t| {
        t.contains("WARNING: worker crash loop")
    });
    let line = text
        .lines()
        .find(|l| l.contains("worker crash loop"))
        .expect("line");
    assert!(
        line.contains("app=crashy") && line.contains("lost=2"),
        "{line}"
    );
}
