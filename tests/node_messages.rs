//! What `dnet_ioserv` says when it cannot start: one line naming the problem, each cause
//! once, no terminal colour codes in a log that is not a terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A generated config for a node on `port` in `dir`, logging to stderr.
fn config(dir: &Path, port: u16) -> Value {
    let text = common::render_config(&common::NodeSpec::default(), dir, port);
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value["logger"]["frontends"][0]["sink"] = json!({"type": "console"});
    value
}

/// How long a node that should refuse to start may run before the test gives up on it.
const EXIT_WAIT_MS: u64 = 30_000;

/// Run the node on `value` (stderr piped, so not a terminal) until it exits.
fn run(dir: &Path, value: &Value) -> Output {
    let path = dir.join("ioserv.json");
    std::fs::write(&path, value.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dnet_ioserv"))
        .env_remove("ELLIPTICS_LOG")
        .arg("-c")
        .arg(&path)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_millis(EXIT_WAIT_MS);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the node kept running:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn stderr_of(out: &Output) -> String {
    assert!(!out.status.success(), "the node started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The last line of stderr: the error the node exits with.
fn final_line(stderr: &str) -> &str {
    stderr.lines().last().unwrap_or_default()
}

#[test]
fn a_missing_config_file_is_reported_once_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_ioserv"))
        .arg("-c")
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.matches("missing.json").count(), 1, "{stderr}");
}

#[test]
fn a_taken_port_is_reported_once_and_the_log_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let stderr = stderr_of(&run(dir.path(), &config(dir.path(), port)));
    let last = final_line(&stderr);
    assert!(
        last.starts_with(&format!("dnet_ioserv: cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert_eq!(
        last.matches(&format!("127.0.0.1:{port}")).count(),
        1,
        "{last}"
    );
    let reason = "another node, or a killed one";
    assert_eq!(stderr.matches(reason).count(), 1, "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in {stderr:?}");
}

#[test]
fn a_data_path_under_a_regular_file_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let mut value = config(dir.path(), common::free_port());
    value["backends"][0]["data"] = json!(file.join("blobs").join("data"));
    let stderr = stderr_of(&run(dir.path(), &value));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{} is a file, not a directory", file.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn a_config_without_backends_is_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut value = config(dir.path(), common::free_port());
    value["backends"] = json!([]);
    let stderr = stderr_of(&run(dir.path(), &value));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("backends: no backend is configured"),
        "{stderr}"
    );
}
