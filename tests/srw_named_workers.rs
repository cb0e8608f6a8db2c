//! `start-multiple-task` end to end: events reach the named workers
//! `<task_id>-<app>-<index>` (index = src_key % pool-limit, round-robin for -1), each
//! spawned with its name as `--uuid`, and a bad idle-timeout is refused.

mod common;
mod srw_common;

use elliptics::client::{Key, Session};
use srw_common::{echo_worker_bin, upload_script};
use std::collections::BTreeSet;
use std::path::Path;

const PROFILE: &str = r#"{"pool-limit": 3, "idle-timeout": 0}"#;

/// A slave that appends its `--uuid` to `$UUID_LOG`, then runs the echo worker.
fn logging_script() -> String {
    format!(
        "#!/bin/sh\nprev=\nfor a in \"$@\"; do\n  if [ \"$prev\" = --uuid ]; then echo \"$a\" >> \"$UUID_LOG\"; fi\n  prev=\"$a\"\ndone\nexec {} \"$@\"\n",
        echo_worker_bin().display()
    )
}

fn spawned(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn echo(s: &Session, key: &str, src_key: i32) -> Vec<u8> {
    let out = s
        .exec(Some(&Key::from(key)), "multi@echo", key.as_bytes(), src_key)
        .wait()
        .expect("exec");
    out.into_iter()
        .find_map(|e| e.payload)
        .expect("a reply")
        .data
}

#[test]
fn events_go_to_named_workers_by_src_key_and_round_robin() {
    let node = srw_common::srw_node(2);
    let log = node.dir.path().join("uuids.log");
    let env = format!(
        "{{\"UUID_LOG\": {}}}",
        serde_json::json!(log.display().to_string())
    );
    upload_script(&node, "multi", PROFILE, &env, &logging_script());
    let s = common::session_with_timeout(&node, &[1], 10);
    s.exec(None, "multi@start-multiple-task", b"job7", -1)
        .wait()
        .expect("start-multiple-task");
    assert!(spawned(&log).is_empty(), "no worker before the first event");

    // src_key 4 and 7 both name index 1 (pool 3): one worker, whatever the key's shard.
    assert_eq!(echo(&s, "alpha", 4), b"alpha");
    assert_eq!(echo(&s, "beta", 7), b"beta");
    assert_eq!(spawned(&log), ["job7-multi-1"]);

    // src_key 3 names index 0.
    assert_eq!(echo(&s, "gamma", 3), b"gamma");
    // -1 goes round-robin: three events reach all three names.
    for k in ["r1", "r2", "r3"] {
        assert_eq!(echo(&s, k, -1), k.as_bytes());
    }
    let names: BTreeSet<String> = spawned(&log).into_iter().collect();
    let expected: BTreeSet<String> = (0..3).map(|i| format!("job7-multi-{i}")).collect();
    assert_eq!(names, expected);
    assert_eq!(spawned(&log).len(), 3, "each named worker spawned once");
}

#[test]
fn short_idle_timeout_refuses_start_multiple_task() {
    let node = srw_common::srw_node(1);
    let script = format!("#!/bin/sh\nexec {} \"$@\"\n", echo_worker_bin().display());
    upload_script(&node, "idle", r#"{"idle-timeout": 60}"#, "{}", &script);
    let s = common::session_with_timeout(&node, &[1], 10);
    let out = s
        .exec_unchecked(None, "idle@start-multiple-task", b"t", -1)
        .wait()
        .expect("exec");
    assert!(out.iter().any(|e| e.status == -22), "{out:?}");
}
