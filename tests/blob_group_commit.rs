//! Durability with `sync = 0`: concurrent writers share fdatasyncs (group commit).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;
use bytes::Bytes;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use std::rc::Rc;

#[test]
fn concurrent_writers_share_fdatasyncs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Rc::new(open(dir.path()));
    let mut pool = LocalPool::new();
    let writers = 64;
    for w in 0..writers {
        let log = log.clone();
        pool.spawner()
            .spawn_local(async move {
                for i in 0..4 {
                    let name = format!("w{w}-{i}");
                    let io = attr(&name, 0, 0, b"payload");
                    log.write(&io, Bytes::from_static(b"payload"))
                        .await
                        .unwrap();
                }
            })
            .unwrap();
    }
    pool.run();
    let stats = log.stats();
    assert_eq!(stats.writes, writers * 4);
    // A round syncs the data file and at most the index too. Serial durable writes would
    // need 256 rounds.
    assert!(
        stats.fsyncs <= 2 * 8,
        "fsyncs {} for {} writes",
        stats.fsyncs,
        stats.writes
    );
    assert!(stats.fsyncs >= 1);
    assert!(stats.sync_rounds <= 8, "{stats:?}");
    drop(pool);
    let log = Rc::try_unwrap(log).unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.stats().records, writers * 4);
}

#[test]
fn deferred_sync_acknowledges_without_fdatasync_until_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.sync_s = 5;
    let log = open_with(o);
    for i in 0..10 {
        write(&log, &format!("k{i}"), b"v");
    }
    assert_eq!(log.stats().fsyncs, 0);
    run(log.sync_if_due()).unwrap();
    assert_eq!(log.stats().fsyncs, 0);
    run(log.sync()).unwrap();
    assert_eq!(log.stats().fsyncs, 2);
}
