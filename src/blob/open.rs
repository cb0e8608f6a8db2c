//! Opening a log: lock it, finish a defrag a crash interrupted, take in each sealed file's
//! sorted index ([`super::load`]), recover the other files from their index and data tail
//! ([`super::recovery`]), keep the newest copy of keys found twice, then mark the older
//! copies removed and sort closed files that lack a sorted index.

use super::error::BlobError;
use super::load::Stale;
use super::log::BlobLog;
use super::segment::{self, Segment};
use super::sync::{GroupCommit, KeyLocks};
use super::{recovery, BlobOptions};
use crate::io::IoFile;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

impl<F: IoFile> BlobLog<F> {
    /// Lock the log, load sorted indexes of closed files, recover the tail of the others.
    pub async fn open(opts: BlobOptions) -> Result<Self, BlobError> {
        let lock = segment::lock(&opts.data_prefix, opts.shard)?;
        if !opts.read_only {
            super::defrag_commit::finish_interrupted(&opts)?;
        }
        let mut nums = segment::list_files(&opts.data_prefix, opts.shard)?;
        let fresh = nums.is_empty();
        if fresh {
            nums.push(0);
        }
        let log = Self::empty(opts, lock);
        let mut stale = Vec::new();
        if let Some(&top) = nums.last() {
            if !fresh && log.sealed_index_of(top) {
                // The last file is sealed: writes go to a new one.
                nums.push(top + 1);
            }
        }
        let last = nums.last().copied().unwrap_or(0);
        log.expect_sealed_keys(&nums);
        for num in nums {
            log.load_file(num, last, &mut stale).await?;
        }
        log.settle_duplicates(&mut stale);
        log.index.borrow_mut().shrink_after_load();
        if !log.opts.read_only {
            log.finish_open(fresh, stale).await?;
        }
        Ok(log)
    }

    /// A log holding no file yet.
    fn empty(opts: BlobOptions, lock: std::fs::File) -> Self {
        BlobLog {
            read_only: Cell::new(opts.read_only),
            opts,
            _lock: lock,
            files: RefCell::new(BTreeMap::new()),
            index: RefCell::new(super::index::KeyIndex::default()),
            locks: KeyLocks::default(),
            commit: GroupCommit::default(),
            dirty: RefCell::new(BTreeMap::new()),
            last_sync: Cell::new(Instant::now()),
            writes: Cell::new(0),
            fsyncs: Cell::new(0),
            sync_rounds: Cell::new(0),
            needs_sort: Cell::new(false),
            sorting: Cell::new(false),
            defrag_stop: Cell::new(super::defrag_state::DefragStop::Never),
            deferred_removals: RefCell::new(Vec::new()),
            old_copies_held: RefCell::new(std::collections::HashMap::new()),
            dir_sync_needed: Cell::new(false),
            defrag: super::defrag_state::DefragControl::default(),
            streams: super::stream::StreamTable::default(),
        }
    }

    /// Take in file `num` (`last`: the open one): sealed on its sorted index when it has
    /// one that checks out, else recovered from its `.index` and data.
    async fn load_file(&self, num: u32, last: u32, stale: &mut Stale<F>) -> Result<(), BlobError> {
        let (prefix, shard, ro) = (&self.opts.data_prefix, self.opts.shard, self.opts.read_only);
        let seg = match self.open_sealed(num, num != last)? {
            Some(seg) => match super::load::load_sorted(&seg)? {
                Some((sealed, summary)) => {
                    self.load_sealed_entries(&seg, sealed, summary, stale);
                    self.files.borrow_mut().insert(num, seg);
                    return Ok(());
                }
                None => {
                    drop(seg);
                    self.set_aside_bad_sorted(num)?;
                    Rc::new(Segment::open(prefix, shard, num, ro)?)
                }
            },
            None => Rc::new(Segment::open(prefix, shard, num, ro)?),
        };
        let trusted = if num == last {
            let at = super::checkpoint::path(prefix, shard);
            super::checkpoint::durable_entries(&at, num)
        } else {
            0
        };
        let e = recovery::scan(&seg, num == last, !ro, u64::from(trusted)).await?;
        self.apply_entries(&seg, &e.entries, stale);
        let written = e.entries.len() - e.unwritten;
        seg.buffer_index_entries(e.entries.get(written..).unwrap_or_default());
        seg.closed.set(num != last);
        self.files.borrow_mut().insert(num, seg);
        Ok(())
    }

    /// After the load: make a new directory durable, mark older copies removed, sort the
    /// closed files that lack a sorted index.
    async fn finish_open(&self, fresh: bool, stale: Stale<F>) -> Result<(), BlobError> {
        if fresh {
            segment::sync_dir(&self.opts.data_prefix)?;
        }
        for (seg, loc) in stale {
            self.mark_removed(&seg, &loc).await?;
        }
        let closed: Vec<_> = self.files.borrow().values().cloned().collect();
        for seg in closed {
            if seg.closed.get() && !seg.sorted.get() {
                self.sort_segment(&seg).await?;
            }
        }
        Ok(())
    }
}
