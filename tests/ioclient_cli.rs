//! `dnet_ioclient` against a real `dnet_ioserv`: write a file, read it back raw with `-D`,
//! the `-L` block, remove with `-u`, and failures on stderr with a non-zero exit status.

mod common;
use common::ioclient;

use common::TestNode;
use std::process::Command;

#[test]
fn written_file_reads_back_raw_without_newline() {
    let node = TestNode::start(&[1]);
    std::fs::write(node.dir.path().join("TESTKEY"), b"SOME_DATA").expect("file");
    let w = ioclient(&node, &["-W", "TESTKEY"]);
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let r = ioclient(&node, &["-D", "TESTKEY"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(r.stdout, b"SOME_DATA");
}

#[test]
fn lookup_prints_the_storage_block() {
    let node = TestNode::start(&[1]);
    std::fs::write(node.dir.path().join("lk"), b"0123456789").expect("file");
    assert!(ioclient(&node, &["-W", "lk"]).status.success());
    let out = ioclient(&node, &["-L", "lk"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("Storage address: 127.0.0.1:{}", node.port).as_str())
    );
    assert_eq!(lines.get(1).copied(), Some("Group: 1"));
    assert_eq!(lines.get(2).copied(), Some("Backend: 1"));
    assert!(lines.get(3).is_some_and(|l| l.starts_with("File path: ")));
    assert_eq!(lines.get(4).copied(), Some("File info:"));
    assert_eq!(lines.get(5).copied(), Some("\tsize: 10"));
    assert!(lines.get(6).is_some_and(|l| l.starts_with("\toffset: ")));
    assert!(lines
        .get(7)
        .is_some_and(|l| l.starts_with("\tmtime: ")
            && l.len() == "\tmtime: 2026-01-01 00:00:00.000000".len()));
}

#[test]
fn removed_key_fails_with_message_and_nonzero_status() {
    let node = TestNode::start(&[1]);
    std::fs::write(node.dir.path().join("rm"), b"x").expect("file");
    assert!(ioclient(&node, &["-W", "rm"]).status.success());
    assert!(ioclient(&node, &["-u", "rm"]).status.success());
    let out = ioclient(&node, &["-D", "rm"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such file or directory: -2"));
}

#[test]
fn missing_remote_is_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_ioclient"))
        .args(["-g", "1", "-D", "k"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("You must specify remote address"));
}

#[test]
fn exec_without_srw_reports_failure_per_node() {
    let node = TestNode::start(&[1]);
    let out = ioclient(&node, &["-c", "test_app@test_event"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{}: failed to process: \"", node.port)),
        "{err}"
    );
    assert!(err.contains("Failed to process EXEC command"), "{err}");
}
