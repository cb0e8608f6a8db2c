//! A disk that fills up and is freed again: with periodic sync (`sync` > 0) as with
//! `sync: 0`, writes answer -ENOSPC while it is full (never -EIO), work again by themselves
//! once space is back, and every acknowledged record is there, also after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{session, NodeSpec, TestNode};
use elliptics::client::{Key, Session};
use elliptics::protocol::errno;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Bytes of the file that takes space until the test frees it.
const BALLAST_BYTES: usize = 1 << 20;
/// Bytes of each value written.
const VALUE_BYTES: usize = 48 * 1024;
/// How long writes may keep failing after space was freed.
const RECOVERY_WAIT_MS: u64 = 15_000;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    /// `None` when this process cannot mount (not root).
    fn new(size: &str) -> Option<TmpfsMount> {
        let dir = tempfile::tempdir().expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TmpfsMount { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn chunk(i: u32) -> Vec<u8> {
    vec![(i % 251) as u8; VALUE_BYTES]
}

fn write(s: &Session, i: u32) -> Result<(), i32> {
    s.write_data(&Key::from(format!("k{i}").as_str()), &chunk(i), 0)
        .wait()
        .map(drop)
        .map_err(|e| e.status)
}

fn read(s: &Session, i: u32) -> Result<Vec<u8>, i32> {
    let entries = s
        .read_data(&Key::from(format!("k{i}").as_str()), 0, 0)
        .wait()
        .map_err(|e| e.status)?;
    entries
        .into_iter()
        .find_map(|e| e.payload.map(|p| p.data))
        .ok_or(errno::ENOENT)
}

/// Lines of the node's log that say a sync ran into the full disk.
fn sync_failures(node: &TestNode) -> usize {
    node.log()
        .lines()
        .filter(|l| l.contains("sync") && l.contains("No space left"))
        .count()
}

fn fill_free_and_write_again(sync_s: u32) {
    let Some(mount) = TmpfsMount::new("3m") else {
        eprintln!("skipped: cannot mount a size-limited tmpfs here (needs root)");
        return;
    };
    let ballast = mount.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; BALLAST_BYTES]).unwrap();
    let mut node = TestNode::start_with(NodeSpec {
        data_root: Some(mount.path()),
        sync_s,
        // Records carry checksummed footers, so a restart after SIGKILL finds the ones
        // whose index entries were still buffered by walking the data file.
        blob_flags: "150".into(),
        extra_options: vec!["\"shard_count\": 1".into()],
        ..NodeSpec::default()
    });
    let s = session(&node, &[1]);
    let mut acked = Vec::new();
    let mut next = 0u32;
    let first_refusal = loop {
        match write(&s, next) {
            Ok(()) => acked.push(next),
            Err(status) => break status,
        }
        next += 1;
        assert!(next < 200, "a 3 MiB disk fills up");
    };
    assert_eq!(first_refusal, errno::ENOSPC);
    assert!(acked.len() > 5, "only {} writes fit", acked.len());

    // Full, with the periodic sync running into it: still -ENOSPC, never -EIO.
    let deadline = Instant::now() + Duration::from_millis(u64::from(sync_s.max(1)) * 3000);
    while Instant::now() < deadline {
        assert_eq!(write(&s, 10_000), Err(errno::ENOSPC), "{}", node.log());
        std::thread::sleep(Duration::from_millis(200));
    }

    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + Duration::from_millis(RECOVERY_WAIT_MS);
    loop {
        match write(&s, next) {
            Ok(()) => break,
            Err(status) => {
                assert_eq!(status, errno::ENOSPC, "{}", node.log());
                assert!(
                    Instant::now() < deadline,
                    "writes still fail {RECOVERY_WAIT_MS} ms after space was freed:\n{}",
                    node.log()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    acked.push(next);
    for i in next + 1..next + 6 {
        write(&s, i).unwrap();
        acked.push(i);
    }
    for i in &acked {
        assert!(read(&s, *i) == Ok(chunk(*i)), "k{i} reads back");
    }
    let syncs_failed = sync_failures(&node);
    drop(s);
    // SIGKILL and start again on the same data.
    node.restart();
    let s = session(&node, &[1]);
    for i in &acked {
        let got = read(&s, *i);
        assert!(
            got == Ok(chunk(*i)),
            "k{i} after restart: {:?}\n{}",
            got.map(|v| v.len()),
            node.log()
        );
    }
    eprintln!(
        "sync {sync_s}: {} acknowledged, {syncs_failed} sync failures logged",
        acked.len()
    );
    node.kill();
}

#[test]
fn periodic_sync_on_a_disk_that_fills_and_is_freed_recovers_by_itself_and_loses_nothing() {
    fill_free_and_write_again(1);
}

#[test]
fn immediate_sync_on_a_disk_that_fills_and_is_freed_recovers_by_itself_and_loses_nothing() {
    fill_free_and_write_again(0);
}
