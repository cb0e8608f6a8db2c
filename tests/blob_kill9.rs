//! A writer process killed with SIGKILL mid-stream: on reopen every acknowledged write is
//! there with its exact bytes, every acknowledged remove is gone, and the log takes writes.
//! Under `sync: 0` (acknowledged once durable) and under periodic sync (acknowledged once in
//! the page cache, new records stored through the open file's map past a run of zeros), and
//! with defrags running between the writes (files rewritten, index sorting, old copies of
//! rewritten keys), so that the kill lands anywhere in a defrag too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;
use elliptics::blob::BlobOptions;
use elliptics::protocol::errno;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "BLOB_KILL9_CHILD_DIR";
const SYNC_ENV: &str = "BLOB_KILL9_SYNC_S";
const DEFRAG_ENV: &str = "BLOB_KILL9_DEFRAG";

fn crash_opts(dir: &Path, sync_s: i64) -> BlobOptions {
    let mut o = opts(dir);
    o.records_in_blob = 50;
    o.sync_s = sync_s;
    o
}

fn value_of(i: u64) -> Vec<u8> {
    format!("value-{i}-")
        .repeat(1 + (i % 40) as usize)
        .into_bytes()
}

/// The child side: only acts when started by the parent test below.
#[test]
fn kill9_child_writer_loop() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let sync_s = std::env::var(SYNC_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let defrag = std::env::var(DEFRAG_ENV).is_ok();
    let log = open_with(crash_opts(Path::new(&dir), sync_s));
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let name = format!("key{i}");
        write(&log, &name, &value_of(i));
        writeln!(out, "W {i}").unwrap();
        if defrag && i >= 20 && i % 10 != 4 {
            // Rewrite an older key with the value it has (its old copy sits in a sealed
            // file), sort closed files and defragment, all between acknowledged writes.
            write(&log, &format!("key{}", i - 20), &value_of(i - 20));
            run(log.maintain()).unwrap();
            if i % 3 == 0 {
                run(log.defrag()).unwrap();
            }
        }
        if i % 10 == 9 {
            writeln!(out, "r {}", i - 5).unwrap();
            out.flush().unwrap();
            run(log.remove(&key(&format!("key{}", i - 5)))).unwrap();
            writeln!(out, "R {}", i - 5).unwrap();
        }
        out.flush().unwrap();
    }
}

fn record(acked: &mut HashMap<u64, Option<bool>>, op: &str, i: u64) {
    let state = match op {
        "W" => Some(true),
        "R" => Some(false),
        _ => None,
    };
    acked.insert(i, state);
}

#[test]
fn acknowledged_writes_survive_a_kill_9() {
    kill_9_and_check(0, false);
}

#[test]
fn acknowledged_writes_under_periodic_sync_survive_a_kill_9() {
    kill_9_and_check(60, false);
}

#[test]
fn acknowledged_writes_and_removes_survive_a_kill_9_during_defrags() {
    kill_9_and_check(0, true);
}

fn kill_9_and_check(sync_s: i64, defrag: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill9_child_writer_loop",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .env(SYNC_ENV, sync_s.to_string())
        .envs(defrag.then_some((DEFRAG_ENV, "1")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Some(true): written; Some(false): removed; None: a remove was in flight.
    let mut acked: HashMap<u64, Option<bool>> = HashMap::new();
    let started = Instant::now();
    while acked.len() < 300 && started.elapsed() < Duration::from_secs(20) {
        let Some(Ok(line)) = lines.next() else { break };
        let mut parts = line.split_whitespace();
        let (Some(op), Some(Ok(i))) = (parts.next(), parts.next().map(str::parse::<u64>)) else {
            continue;
        };
        record(&mut acked, op, i);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines already in the pipe were acknowledged before the kill, too.
    for line in lines.map_while(Result::ok) {
        let mut parts = line.split_whitespace();
        if let (Some(op), Some(Ok(i))) = (parts.next(), parts.next().map(str::parse::<u64>)) {
            record(&mut acked, op, i);
        }
    }
    assert!(
        acked.len() >= 20,
        "child acknowledged only {} writes",
        acked.len()
    );
    let log = open_with(crash_opts(dir.path(), sync_s));
    for (i, live) in &acked {
        let got = read_all(&log, &format!("key{i}"));
        match live {
            Some(true) => assert_eq!(got.unwrap(), value_of(*i), "key{i}"),
            Some(false) => assert_eq!(errno_of(got), errno::ENOENT, "key{i}"),
            None => {
                if let Ok(v) = got {
                    assert_eq!(v, value_of(*i), "key{i}");
                }
            }
        }
    }
    write(&log, "after-crash", b"ok");
    assert_eq!(read_all(&log, "after-crash").unwrap(), b"ok");
}
