//! Power loss under `sync = 0`: the data file is the durable log and the `.index` may lag.
//! A backend that remembers what each file held at its last fdatasync builds the images a
//! power cut could leave (the synced bytes, plus any subset of later writes, each possibly
//! torn at a sector), and every image must reopen serving every acknowledged record
//! byte-exact and no acknowledged removal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::{attr, key};
use bytes::Bytes;
use elliptics::blob::{BlobLog, BlobOptions};
use elliptics::io::sync::StdFile;
use elliptics::io::IoFile;
use elliptics::protocol::{errno, io_flags};
use futures::executor::{block_on, LocalPool};
use futures::task::LocalSpawnExt;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// What a file held at its last fdatasync and the writes since.
#[derive(Debug, Default, Clone)]
struct Shadow {
    durable: Vec<u8>,
    unsynced: Vec<(u64, Vec<u8>)>,
}

thread_local! {
    static SHADOWS: RefCell<HashMap<PathBuf, Shadow>> = RefCell::new(HashMap::new());
}

fn whole(file: &File) -> Vec<u8> {
    let len = file.metadata().unwrap().len() as usize;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0).unwrap();
    buf
}

/// [`StdFile`] that records fdatasync points (see the module header).
#[derive(Debug)]
struct PowerCut {
    inner: StdFile,
    path: PathBuf,
}

impl IoFile for PowerCut {
    fn from_std(file: File) -> Self {
        let path = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap();
        let content = whole(&file);
        SHADOWS.with(|s| {
            s.borrow_mut().entry(path.clone()).or_insert(Shadow {
                durable: content,
                unsynced: Vec::new(),
            });
        });
        PowerCut {
            inner: StdFile::from_std(file),
            path,
        }
    }
    fn as_std(&self) -> &File {
        self.inner.as_std()
    }
    async fn read_exact_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        self.inner.read_exact_at(buf, offset).await
    }
    async fn write_all_at(&self, bufs: Vec<Bytes>, offset: u64) -> io::Result<()> {
        let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.inner.write_all_at(bufs, offset).await?;
        SHADOWS.with(|s| {
            if let Some(sh) = s.borrow_mut().get_mut(&self.path) {
                sh.unsynced.push((offset, joined));
            }
        });
        Ok(())
    }
    async fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data().await?;
        let content = whole(self.inner.as_std());
        SHADOWS.with(|s| {
            if let Some(sh) = s.borrow_mut().get_mut(&self.path) {
                sh.durable = content;
                sh.unsynced.clear();
            }
        });
        Ok(())
    }
}

/// A power-cut image of `shadow`: durable bytes plus the unsynced writes `keep` picks,
/// each cut to a whole number of 512-byte sectors when `torn` says so.
fn image(shadow: &Shadow, mut pick: impl FnMut() -> u64) -> Vec<u8> {
    let mut out = shadow.durable.clone();
    for (offset, bytes) in &shadow.unsynced {
        let r = pick();
        if r.is_multiple_of(3) {
            continue;
        }
        let len = if r % 3 == 1 {
            bytes.len()
        } else {
            (bytes.len() / 512 * 512).min((r as usize / 3 % 16) * 512)
        };
        let at = *offset as usize;
        if out.len() < at + len {
            out.resize(at + len, 0);
        }
        out[at..at + len].copy_from_slice(&bytes[..len]);
    }
    out
}

/// Per key: the acknowledged state (`None`: removed) and the states of operations started
/// since, which a power cut may or may not have made durable.
type States = HashMap<String, (Option<Vec<u8>>, Vec<Option<Vec<u8>>>)>;
type Model = Rc<RefCell<States>>;

fn start(model: &Model, name: &str, state: Option<Vec<u8>>) {
    let mut m = model.borrow_mut();
    m.entry(name.to_string())
        .or_insert((None, Vec::new()))
        .1
        .push(state);
}

fn acknowledge(model: &Model, name: &str, state: Option<Vec<u8>>) {
    model
        .borrow_mut()
        .insert(name.to_string(), (state, Vec::new()));
}

fn value(task: u32, n: u32) -> Vec<u8> {
    format!("task{task}-op{n}-")
        .repeat(1 + (n as usize * 7 + task as usize) % 40)
        .into_bytes()
}

/// A moment of the run: every file's shadow and what was acknowledged by then.
type Snapshot = (HashMap<PathBuf, Shadow>, States);

/// The files as a power cut now could leave them, and what was acknowledged. The synced
/// point (`data-0.synced`, written without fdatasync: a cut may keep or lose it) goes in as
/// it is now.
fn snapshot(model: &Model) -> Snapshot {
    let mut files = SHADOWS.with(|s| s.borrow().clone());
    let synced: Vec<PathBuf> = files
        .keys()
        .filter(|p| p.ends_with("data-0.0"))
        .map(|p| p.with_file_name("data-0.synced"))
        .collect();
    for p in synced {
        if let Ok(bytes) = std::fs::read(&p) {
            files.insert(
                p,
                Shadow {
                    durable: bytes,
                    unsynced: Vec::new(),
                },
            );
        }
    }
    (files, model.borrow().clone())
}

/// Check `images` power-cut images of the files of `dir` in `snap` against what was
/// acknowledged; returns how many needed records the image's index lacked.
fn check_images(dir: &Path, snap: &Snapshot, images: u64) -> usize {
    let (shadows, model) = snap;
    let mut lagging = 0;
    for seed in 0..images {
        let out = tempfile::tempdir().unwrap();
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut pick = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if seed == 0 {
                0
            } else {
                x
            }
        };
        let mut acked_index_entries = 0;
        for name in ["data-0.0", "data-0.0.index"] {
            let bytes = image(&shadows[&dir.join(name)], &mut pick);
            if name.ends_with("index") {
                acked_index_entries = bytes.len() / 96;
            }
            std::fs::write(out.path().join(name), bytes).unwrap();
        }
        // Every other image keeps the synced point: start-up then trusts the `.index`
        // under it without reading the data file.
        if let Some(point) = shadows.get(&dir.join("data-0.synced")) {
            if seed % 2 == 1 {
                std::fs::write(out.path().join("data-0.synced"), &point.durable).unwrap();
            }
        }
        let log = block_on(BlobLog::<StdFile>::open(BlobOptions::new(
            out.path().join("data"),
        )))
        .unwrap();
        let rebuilt = std::fs::metadata(out.path().join("data-0.0.index"))
            .unwrap()
            .len()
            / 96;
        if rebuilt > acked_index_entries as u64 {
            // Recovery found records of the data file that the image's index lacked.
            lagging += 1;
        }
        for (name, (acked, in_flight)) in model.iter() {
            let got = match block_on(log.read(&key(name), 0, 0, true)) {
                Ok(r) => Some(r.data),
                Err(e) => {
                    assert_eq!(e.errno(), errno::ENOENT, "image {seed}: {name}: {e}");
                    None
                }
            };
            assert!(
                got == *acked || in_flight.contains(&got),
                "image {seed}: {name} reads {:?}, acknowledged {:?}",
                got.map(|v| String::from_utf8_lossy(&v).into_owned()),
                acked
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            );
        }
    }
    lagging
}

/// A fresh directory, a log on the power-cut backend in it, an empty model, no
/// snapshots yet, and the pool to run writers on.
type Setup = (
    tempfile::TempDir,
    Rc<BlobLog<PowerCut>>,
    Model,
    Rc<RefCell<Vec<Snapshot>>>,
    LocalPool,
);

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let log = Rc::new(
        block_on(BlobLog::<PowerCut>::open(BlobOptions::new(
            dir.path().join("data"),
        )))
        .unwrap(),
    );
    (dir, log, Model::default(), Rc::default(), LocalPool::new())
}

#[test]
fn acknowledged_records_survive_any_power_cut_image_with_a_lagging_index() {
    let (dir, log, model, snaps, mut pool) = setup();
    for task in 0..16u32 {
        let (log, model, snaps) = (log.clone(), model.clone(), snaps.clone());
        pool.spawner()
            .spawn_local(async move {
                for n in 0..24u32 {
                    // New keys only: rewrites in flight at the cut have their own test below.
                    let name = format!("t{task}-k{n}");
                    if n % 11 == 10 {
                        let name = format!("t{task}-k{}", n - 3);
                        start(&model, &name, None);
                        if log.remove(&key(&name)).await.is_ok() {
                            acknowledge(&model, &name, None);
                        }
                        continue;
                    }
                    let v = value(task, n);
                    // Some records carry no footer: recovery cannot prove them from the
                    // data file, so their rounds make the index durable.
                    let flags = if (task + n) % 29 == 0 {
                        io_flags::NOCSUM
                    } else {
                        0
                    };
                    let io = attr(&name, flags, 0, &v);
                    start(&model, &name, Some(v.clone()));
                    log.write(&io, Bytes::from(v.clone())).await.unwrap();
                    acknowledge(&model, &name, Some(v));
                    if task == 5 && n % 3 == 0 {
                        // Other tasks are halfway through their writes now.
                        snaps.borrow_mut().push(snapshot(&model));
                    }
                }
            })
            .unwrap();
    }
    pool.run();
    snaps.borrow_mut().push(snapshot(&model));
    let mut lagging = 0;
    for snap in snaps.borrow().iter() {
        lagging += check_images(dir.path(), snap, 6);
    }
    let stats = log.stats();
    assert!(
        stats.fsyncs < 2 * stats.sync_rounds,
        "some rounds must leave the index lagging: {stats:?}"
    );
    assert!(
        lagging > 0,
        "no image had a lagging index: the test proves nothing"
    );
}

/// Eight writers rewrite four keys each, six rounds, with `value(task, k, round)`; every
/// snapshot taken by one writer (and the final state) is checked against power-cut images.
/// Returns the log for further checks.
fn rewrite_under_power_cuts(
    value: fn(u32, u32, usize) -> Vec<u8>,
    images: u64,
) -> Rc<BlobLog<PowerCut>> {
    let (dir, log, model, snaps, mut pool) = setup();
    for task in 0..8u32 {
        let (log, model, snaps) = (log.clone(), model.clone(), snaps.clone());
        pool.spawner()
            .spawn_local(async move {
                for round in 0..6usize {
                    for k in 0..4u32 {
                        let name = format!("t{task}-k{k}");
                        let v = value(task, k, round);
                        let io = attr(&name, 0, 0, &v);
                        start(&model, &name, Some(v.clone()));
                        log.write(&io, Bytes::from(v.clone())).await.unwrap();
                        acknowledge(&model, &name, Some(v));
                        if task == 3 {
                            snaps.borrow_mut().push(snapshot(&model));
                        }
                    }
                }
            })
            .unwrap();
    }
    pool.run();
    snaps.borrow_mut().push(snapshot(&model));
    for snap in snaps.borrow().iter() {
        check_images(dir.path(), snap, images);
    }
    log
}

#[test]
fn a_rewrite_in_flight_at_a_power_cut_leaves_the_acknowledged_value_readable() {
    // Each rewrite is longer than the record holds, so the value moves to a new record and
    // the old copy must go.
    let log = rewrite_under_power_cuts(
        |task, k, round| {
            format!("t{task}-k{k}-round{round}-")
                .repeat(1 + round * 6)
                .into_bytes()
        },
        4,
    );
    assert!(log.stats().sync_rounds > 1);
}

#[test]
fn a_same_size_rewrite_torn_by_a_power_cut_leaves_the_acknowledged_value_readable() {
    // Every value of a key has the same size (and spans sectors), so the record could be
    // rewritten where it is.
    rewrite_under_power_cuts(
        |task, k, round| {
            format!("t{task}-k{k}-round{round}-")
                .repeat(400)
                .into_bytes()[..3000]
                .to_vec()
        },
        6,
    );
}
