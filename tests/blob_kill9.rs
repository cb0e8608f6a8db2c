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

fn second_value_of(i: u64) -> Vec<u8> {
    format!("second-{i}-")
        .repeat(2 + (i % 7) as usize)
        .into_bytes()
}

/// The child side: only acts when started by the parent test below. It prints an intent
/// line (lower case) before and an acknowledgement (upper case) after each change.
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
    let mut say = |line: String| {
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    for i in 0u64.. {
        write(&log, &format!("key{i}"), &value_of(i));
        say(format!("W {i}"));
        if defrag {
            // Rewrite keys of sealed files with a new value and remove some of them, so
            // that old files shrink; every tenth key stays cold until it is rewritten long
            // after (by then defrag has moved it out of its small file). Sort closed files
            // and defragment, all between acknowledged changes.
            let rewrite = [(20, i.checked_sub(20).filter(|j| j % 10 != 0 && j % 10 != 4))];
            let cold = [(100, i.checked_sub(100).filter(|j| j % 10 == 0))];
            for (_, j) in rewrite.into_iter().chain(cold) {
                let Some(j) = j else { continue };
                say(format!("v {j}"));
                write(&log, &format!("key{j}"), &second_value_of(j));
                say(format!("V {j}"));
            }
            if let Some(k) = i
                .checked_sub(30)
                .filter(|k| [1, 2, 3, 5].contains(&(k % 10)))
            {
                say(format!("r {k}"));
                run(log.remove(&key(&format!("key{k}")))).unwrap();
                say(format!("R {k}"));
            }
            run(log.maintain()).unwrap();
            if i % 3 == 0 {
                let stats = run(log.defrag()).unwrap();
                say(format!("M {}", stats.records_moved));
            }
        }
        if i % 10 == 9 {
            say(format!("r {}", i - 5));
            run(log.remove(&key(&format!("key{}", i - 5)))).unwrap();
            say(format!("R {}", i - 5));
        }
    }
}

/// What a key may read back as after the kill: each a value, or `None` for not found.
type Outcomes = HashMap<u64, Vec<Option<Vec<u8>>>>;

/// Take one line of the child's; returns the records a defrag moved, if it says so.
fn record(acked: &mut Outcomes, line: &str) -> u64 {
    let mut parts = line.split_whitespace();
    let (Some(op), Some(Ok(i))) = (parts.next(), parts.next().map(str::parse::<u64>)) else {
        return 0;
    };
    if op == "M" {
        return i;
    }
    let now = acked.entry(i).or_default();
    match op {
        "W" => *now = vec![Some(value_of(i))],
        "V" => *now = vec![Some(second_value_of(i))],
        "R" => *now = vec![None],
        // In flight at the kill: the change may or may not have landed.
        "v" => now.push(Some(second_value_of(i))),
        "r" => now.push(None),
        _ => {}
    }
    0
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

#[test]
fn acknowledged_writes_and_removes_under_periodic_sync_survive_a_kill_9_during_defrags() {
    kill_9_and_check(60, true);
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
    let mut acked = Outcomes::new();
    let mut moved = 0;
    let started = Instant::now();
    while acked.len() < 300 && started.elapsed() < Duration::from_secs(20) {
        let Some(Ok(line)) = lines.next() else { break };
        moved += record(&mut acked, &line);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines already in the pipe were acknowledged before the kill, too.
    for line in lines.map_while(Result::ok) {
        moved += record(&mut acked, &line);
    }
    assert!(
        !defrag || moved > 0,
        "defrag moved no record out of a small file before the kill"
    );
    assert!(
        acked.len() >= 20,
        "child acknowledged only {} writes",
        acked.len()
    );
    let log = open_with(crash_opts(dir.path(), sync_s));
    for (i, may) in &acked {
        let got = read_all(&log, &format!("key{i}"));
        let got = match got {
            Ok(v) => Some(v),
            Err(e) => {
                assert_eq!(e.errno(), errno::ENOENT, "key{i}");
                None
            }
        };
        assert!(
            may.contains(&got),
            "key{i} read back as {:?}, expected one of {:?}",
            got.as_deref().map(String::from_utf8_lossy),
            may.iter()
                .map(|v| v.as_deref().map(String::from_utf8_lossy))
                .collect::<Vec<_>>()
        );
    }
    write(&log, "after-crash", b"ok");
    assert_eq!(read_all(&log, "after-crash").unwrap(), b"ok");
}
