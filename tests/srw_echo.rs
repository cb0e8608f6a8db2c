//! End to end with real processes: dnet_ioserv with srw, the Rust echo app uploaded with
//! dnet_srw, started, and driven with dnet_ioclient and the Rust client.

mod common;
mod srw_common;

use elliptics::client::Key;
use srw_common::{ioclient, srw, srw_node, text, upload_echo};

const PROFILE: &str = r#"{"isolate": {"type": "process", "args": {"spool": "/tmp"}}}"#;

#[test]
fn echo_app_keyed_broadcast_info_and_stop() {
    let node = srw_node(2);
    upload_echo(&node, "echo", PROFILE, "{}");

    let listed = srw(&node, &["app", "list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "echo\n");

    // Keyed: exactly one reply per group, the payload echoed, then the ack.
    let out = ioclient(&node, &["-c", "echo@echo hello-key"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    let data_lines: Vec<&str> = stdout.lines().filter(|l| l.contains("echo@echo")).collect();
    assert_eq!(data_lines.len(), 1, "{stdout}");
    assert!(
        data_lines[0].ends_with(": echo@echo \"hello-key\""),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.ends_with(": acknowledge"))
            .count(),
        1
    );

    // Without a key: one answer per node (one node here), acknowledged.
    let s = common::session_with_timeout(&node, &[1], 10);
    let all = s
        .exec(None, "echo@echo", b"bcast", -1)
        .wait()
        .expect("broadcast");
    let replies: Vec<_> = all.iter().filter_map(|e| e.payload.as_ref()).collect();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].data, b"bcast");
    assert_eq!(all.iter().filter(|e| e.payload.is_none()).count(), 1);

    // Worker error -> -code.
    let failed = s
        .exec_unchecked(Some(&Key::from("k")), "echo@fail", b"", -1)
        .wait()
        .expect("exec");
    assert!(failed.iter().any(|e| e.status == -5), "{failed:?}");

    // info: the Cocaine shape and our counters.
    let info = s.exec(None, "echo@info", b"", -1).wait().expect("info");
    let body = info
        .iter()
        .find_map(|e| e.payload.as_ref())
        .expect("info reply");
    assert_eq!(body.event, "echo@info");
    let doc: serde_json::Value = serde_json::from_slice(&body.data).expect("json");
    assert_eq!(doc["state"], "running");
    assert_eq!(doc["profile"], "echo");
    assert_eq!(doc["queue"]["capacity"], 100);
    assert_eq!(doc["slaves"]["capacity"], 10);
    assert_eq!(doc["counters"]["echo@echo"]["blocked"], 2);
    assert_eq!(doc["counters"]["echo@fail"]["blocked"], 1);
    assert!(String::from_utf8_lossy(&body.data).starts_with("{\n   \"counters\" : {"));

    // stop-task, then the app is gone.
    let out = ioclient(&node, &["-c", "echo@stop-task"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ioclient(&node, &["-c", "echo@echo again"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(": -2"),
        "{}",
        text(&out)
    );
}

#[test]
fn worker_writes_payload_to_testkey_through_the_client() {
    let node = srw_node(2);
    let env = format!(
        "{{\"ECHO_REMOTE\": \"{}\", \"ECHO_KEY\": \"TESTKEY\"}}",
        node.remote()
    );
    upload_echo(&node, "test_app", PROFILE, &env);
    let out = ioclient(&node, &["-c", "test_app@write SOME_DATA"]);
    assert!(out.status.success(), "{}", text(&out));
    let read = ioclient(&node, &["-D", "TESTKEY"]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout),
        "SOME_DATA",
        "{}",
        text(&read)
    );
}

#[test]
fn events_without_srw_config_answer_enotsup() {
    let node = common::TestNode::start(&[1]);
    let out = ioclient(&node, &["-c", "echo@echo x"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-95"),
        "{}",
        text(&out)
    );
}
