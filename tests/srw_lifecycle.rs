//! Workers that never become ready, handlers that never answer, and workers that flood
//! their output, with real worker processes. Each client waits up to 60 s; the node must
//! answer long before that (the log line that reports failing the event proves the node,
//! not the client's timer, produced the status).

mod common;
mod srw_common;

use elliptics::client::{Key, Session};
use srw_common::{echo_worker_bin, ioclient, srw_node, text, upload_echo, upload_script};

const CLIENT_TIMEOUT_S: u64 = 60;

fn status_of(s: &Session, key: &str, event: &str) -> i32 {
    let entries = s
        .exec_unchecked(Some(&Key::from(key)), event, b"x", -1)
        .wait()
        .expect("exec");
    entries
        .iter()
        .map(|e| e.status)
        .find(|s| *s != 0)
        .unwrap_or(0)
}

fn start(node: &common::TestNode, app: &str) {
    let out = ioclient(node, &["-c", &format!("{app}@start-task")]);
    assert!(out.status.success(), "start-task: {}", text(&out));
}

#[test]
fn worker_that_exits_at_start_fails_events_with_its_exit_status_in_the_log() {
    let node = srw_node(1);
    let script = "#!/bin/sh\necho 'ImportError: No module named nothing_here' >&2\nexit 3\n";
    upload_script(&node, "dies", "{}", "{}", script);
    start(&node, "dies");
    let s = common::session_with_timeout(&node, &[1], CLIENT_TIMEOUT_S);
    // -ENOEXEC, not the client's -ETIMEDOUT: the node answered.
    assert_eq!(status_of(&s, "a", "dies@event"), -8);
    assert_eq!(status_of(&s, "b", "dies@event"), -8);
    let log = node.log();
    assert!(
        log.contains("worker failed to start: exited before the handshake (exit status: 3)"),
        "{log}"
    );
    assert!(
        log.contains("ImportError: No module named nothing_here"),
        "{log}"
    );
    assert!(log.contains("respawn in"), "{log}");

    // A Python worker whose import fails is the same failed start.
    let script = "#!/usr/bin/env python3\nimport module_that_is_not_installed\n";
    upload_script(&node, "pyfail", "{}", "{}", script);
    start(&node, "pyfail");
    assert_eq!(status_of(&s, "c", "pyfail@event"), -8);
    let log = node.log();
    assert!(log.contains("ModuleNotFoundError"), "{log}");
}

#[test]
fn worker_that_never_handshakes_fails_queued_events_at_the_startup_timeout() {
    let node = srw_node(1);
    upload_script(
        &node,
        "mute",
        r#"{"startup-timeout": 1}"#,
        "{}",
        "#!/bin/sh\nexec sleep 100000\n",
    );
    start(&node, "mute");
    let s = common::session_with_timeout(&node, &[1], CLIENT_TIMEOUT_S);
    assert_eq!(status_of(&s, "a", "mute@event"), -110);
    let log = node.log();
    let line = log
        .lines()
        .find(|l| l.contains("worker failed to start: no handshake within startup-timeout"))
        .unwrap_or_else(|| panic!("no start failure in the log:\n{log}"));
    assert!(line.contains("failed_events=1"), "{line}");
}

#[test]
fn handler_that_never_answers_gets_etimedout_from_the_profile_timeout() {
    let node = srw_node(1);
    upload_echo(
        &node,
        "slow",
        r#"{"timeout": 1, "concurrency": 1, "pool-limit": 1}"#,
        "{}",
    );
    let s = common::session_with_timeout(&node, &[1], CLIENT_TIMEOUT_S);
    assert_eq!(status_of(&s, "a", "slow@hang"), -110);
    let log = node.log();
    assert!(
        log.contains("requests not answered within the profile's timeout"),
        "{log}"
    );
    // The slot is free again and the worker still serves.
    assert_eq!(status_of(&s, "b", "slow@echo"), 0);
}

/// Peak resident set of `pid` in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn worker_flooding_its_output_leaves_node_memory_and_log_bounded() {
    let node = srw_node(1);
    // 64 MiB without a newline, then 16 MiB of two-byte lines, then the echo worker.
    let script = format!(
        "#!/bin/sh\nhead -c 67108864 /dev/zero | tr '\\0' x\nyes | head -c 16777216\nexec {} \"$@\"\n",
        echo_worker_bin().display()
    );
    upload_script(&node, "loud", "{}", "{}", &script);
    start(&node, "loud");
    let s = common::session_with_timeout(&node, &[1], CLIENT_TIMEOUT_S);
    // Served only after the worker has written everything.
    assert_eq!(status_of(&s, "k", "loud@echo"), 0);
    let peak_kb = peak_rss_kb(node.pid().expect("pid"));
    assert!(peak_kb < 48 * 1024, "node peak RSS {peak_kb} kB");
    let log_bytes = node.log().len();
    eprintln!("node peak RSS {peak_kb} kB, log {log_bytes} bytes");
    assert!(log_bytes < 1 << 20, "log grew to {log_bytes} bytes");
    let log = node.log();
    assert!(
        log.contains("more bytes of this line dropped"),
        "{}",
        &log[..log.len().min(4000)]
    );
    assert!(
        log.contains("dropping lines from the log"),
        "{}",
        &log[..log.len().min(4000)]
    );
}
