//! Keys rewritten over and over while their files rotate: each closed file gets its sorted
//! index (which replaces its `.index`) while the rewrites go on (old copies in it are marked removed after the new copies
//! are durable, some of them while the sorted index is being written), and after a reopen
//! every key reads its last acknowledged value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::Bytes;
use elliptics::blob::sync::Event;
use elliptics::blob::{BlobLog, BlobOptions};
use elliptics::key::RawId;
use elliptics::protocol::{DnetTime, IoAttr};
use elliptics::runtime::{self, UringFile};
use std::cell::Cell;
use std::rc::Rc;

const KEYS: u64 = 300;
const WRITERS: u64 = 30;
const ROUNDS: u64 = 40;

fn io(k: u64, len: usize) -> IoAttr {
    IoAttr {
        id: RawId::from_key(format!("key-{k}").as_bytes()),
        size: len as u64,
        timestamp: DnetTime::EMPTY,
        ..IoAttr::default()
    }
}

/// Sizes change from round to round, so that rewrites under periodic sync (in place when
/// the value fits) also move keys to new records.
fn value(k: u64, round: u64) -> Vec<u8> {
    format!("{k}:{round};")
        .repeat(1 + ((k + round) % 7) as usize)
        .into_bytes()
}

fn opts(dir: &std::path::Path, sync_s: i64) -> BlobOptions {
    let mut o = BlobOptions::new(dir.join("data"));
    o.sync_s = sync_s;
    o.records_in_blob = 700;
    o
}

fn rewrite_while_rotating(sync_s: i64) {
    if runtime::probe().is_err() {
        eprintln!("skipped: no io_uring here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), sync_s);
    runtime::block_on(256, async move {
        let log = Rc::new(BlobLog::<UringFile>::open(o).await.unwrap());
        let done = Rc::new((Cell::new(0u64), Event::default()));
        for w in 0..WRITERS {
            let (log, done) = (log.clone(), done.clone());
            runtime::spawn(async move {
                // Writer w owns keys w, w + WRITERS, ...: each key has one writer, so its
                // last acknowledged value is the one of the last round.
                for round in 0..ROUNDS {
                    for k in (w..KEYS).step_by(WRITERS as usize) {
                        let v = value(k, round);
                        log.write(&io(k, v.len()), Bytes::from(v)).await.unwrap();
                    }
                }
                done.0.set(done.0.get() + 1);
                done.1.notify();
            });
        }
        while done.0.get() < WRITERS {
            let seen = done.1.generation();
            done.1.wait(seen).await;
        }
        log.sync().await.unwrap();
    })
    .unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let indexes = names.iter().filter(|n| n.ends_with(".index")).count();
    let sorted = names
        .iter()
        .filter(|n| n.ends_with(".index.sorted"))
        .count();
    let data = names
        .iter()
        .filter(|n| {
            n.rsplit('.')
                .next()
                .is_some_and(|s| s.parse::<u32>().is_ok())
        })
        .count();
    assert!(
        sorted >= 2 && indexes == 1 && sorted == data - 1,
        "every closed file has one index, its sorted one; the open file its .index: {names:?}"
    );
    let o = opts(dir.path(), sync_s);
    runtime::block_on(256, async move {
        let log = BlobLog::<UringFile>::open(o).await.unwrap();
        for k in 0..KEYS {
            let got = log.read(&io(k, 0).id, 0, 0, true).await;
            let got = got.unwrap_or_else(|e| panic!("key {k}: {e}"));
            assert_eq!(got.data, value(k, ROUNDS - 1), "key {k}");
        }
    })
    .unwrap();
}

#[test]
fn keys_rewritten_across_rotations_under_group_commit_read_their_last_value_after_reopen() {
    rewrite_while_rotating(0);
}

#[test]
fn keys_rewritten_across_rotations_under_periodic_sync_read_their_last_value_after_reopen() {
    rewrite_while_rotating(5);
}
