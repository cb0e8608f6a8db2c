//! `dnet_find` against real nodes: every backend of every node is asked for the id and
//! answers from its own storage, printed in the original tool's format
//! (`tests/data/wire-captures/ioclient-find.txt`).

mod common;

use common::TestNode;
use elliptics::client::Key;
use elliptics::key::RawId;
use std::process::Command;

fn find(node: &TestNode, id: &RawId) -> (String, String, Option<i32>) {
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_find"))
        .args(["-r", &node.remote(), "-I", &id.to_hex()])
        .output()
        .expect("run dnet_find");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn find_prints_where_the_object_is_on_every_backend() {
    // Backend 1 serves group 1, backend 2 group 2; the key is written to group 1 only.
    let node = TestNode::start(&[1, 2]);
    let s = common::session(&node, &[1]);
    s.write_data(&Key::from("somekey"), b"hello elliptics wire test\n", 0)
        .wait()
        .expect("write to group 1");
    let id = RawId::from_key(b"somekey");
    let (stdout, stderr, code) = find(&node, &id);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one line per backend: {stdout}");
    let addr = node.addr();
    let ok = format!(
        "1:3ab1736f1f57...9d700f8f8fdc: FIND-OK object: {addr}, backend: 1, should live at: {addr}, backend: 1, offset: "
    );
    assert!(lines[0].starts_with(&ok), "{}", lines[0]);
    assert!(
        lines[0].contains(", size: 26, mtime: ") && lines[0].contains(" UTC, path: "),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1], "2:3ab1736f1f57...9d700f8f8fdc: FIND object: status: -2",
        "group 2 never got the key"
    );
}

#[test]
fn find_refuses_flags_the_original_did_not_have() {
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_find"))
        .args(["-r", "127.0.0.1:1:2", "-g", "1"])
        .output()
        .expect("run dnet_find");
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid option -- 'g'"), "{stderr}");
    assert!(stderr.contains("-I id"), "usage follows: {stderr}");
}
