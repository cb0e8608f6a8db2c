//! Durability: group commit for `sync = 0` (writers waiting at the same time share one
//! fdatasync round; one round in flight, later arrivals wait for the next) and the periodic
//! sync for `sync = N`. A failed fdatasync poisons the log: writes answer -EIO until reopen.
//! A round whose index write finds the disk full poisons nothing: the entries stay buffered,
//! the files stay dirty, and the next round (once space is back) writes them.
//!
//! Under `sync = 0` the data file is the durable log: a round fdatasyncs the data files it
//! touched, and their `.index` only when recovery could not rebuild the missing entries
//! from the data file (see [`super::segment::Segment::note_index_append`]) or once a second.

use super::defrag_state::{DefragLevel, DefragSchedule, DefragStatus};
use super::error::BlobError;
use super::index::Loc;
use super::log::BlobLog;
use super::segment::Segment;
use super::sync::YieldNow;
use super::DefragStats;
use crate::io::IoFile;
use std::rc::Rc;
use std::time::Instant;

/// Under `sync = 0` a file's `.index` is made durable at least this often while it is
/// written, so that recovery walks at most this much of the data file.
pub const INDEX_SYNC_INTERVAL_MS: u128 = 1000;

/// Turns a sort, defrag or merge waits for the old copies held in its file to be released.
const HOLD_WAIT_TURNS_MAX: usize = 64;

impl<F: IoFile> BlobLog<F> {
    /// After a change numbered `seq`: with `sync_s == 0` wait until it is durable.
    pub(super) async fn made_durable(&self, seq: u64) -> Result<(), BlobError> {
        if self.opts.sync_s != 0 {
            return Ok(());
        }
        let mut yielded = false;
        loop {
            if self.commit.poisoned.get() {
                return Err(BlobError::Poisoned);
            }
            if self.commit.synced_seq.get() >= seq {
                return Ok(());
            }
            if !yielded {
                // Let writers that are ready now finish their bytes and share this sync.
                yielded = true;
                YieldNow::default().await;
                continue;
            }
            if self.commit.in_flight.get() {
                let seen = self.commit.round_done.generation();
                self.commit.round_done.wait(seen).await;
            } else {
                self.sync_round(false).await?;
            }
        }
    }

    /// One group-commit round: fdatasync every file changed since the last round. With
    /// `full` (explicit syncs) every `.index` too; else a file's `.index` only when its
    /// data cannot rebuild it ([`super::segment::Segment::note_index_append`]) or it was last made durable
    /// [`INDEX_SYNC_INTERVAL_MS`] ago, bounding what recovery walks.
    async fn sync_round(&self, full: bool) -> Result<(), BlobError> {
        self.commit.in_flight.set(true);
        self.sync_rounds.set(self.sync_rounds.get() + 1);
        let target = self.commit.written_seq.get();
        // The new copies of these were written before the round began: this round makes
        // them durable, after which the old copies may be marked removed.
        let removals = std::mem::take(&mut *self.deferred_removals.borrow_mut());
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        let mut result = Ok(());
        let mut disk_full = false;
        if self.dir_sync_needed.replace(false) {
            if let Err(e) = self.sync_dir_async().await {
                self.dir_sync_needed.set(true);
                self.commit.poisoned.set(true);
                result = Err(e);
            }
        }
        for seg in dirty.values().filter(|_| result.is_ok()) {
            // The buffered index entries go out by a plain write first: one that finds the
            // disk full keeps them buffered, so the round can simply be tried again.
            if let Err(e) = seg.flush_index().await {
                disk_full = matches!(e, BlobError::NoSpace(_));
                if !disk_full {
                    self.commit.poisoned.set(true);
                }
                result = Err(e);
                break;
            }
            let index_due = full
                || seg.index_sync_needed.get()
                || seg.index_synced_at.get().elapsed().as_millis() >= INDEX_SYNC_INTERVAL_MS;
            let res = if index_due {
                self.fsyncs.set(self.fsyncs.get() + 2);
                seg.sync_all().await
            } else {
                self.fsyncs.set(self.fsyncs.get() + 1);
                seg.sync_data_lazy_index().await
            };
            if let Err(e) = res {
                self.commit.poisoned.set(true);
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            self.commit.synced_seq.set(target);
            self.last_sync.set(Instant::now());
        } else if disk_full {
            self.retry_later(dirty, removals);
            self.commit.in_flight.set(false);
            self.commit.round_done.notify();
            return result;
        }
        self.commit.in_flight.set(false);
        // The writers this round covered are answered first; marking the old copies they
        // replaced needs no fdatasync and holds up no one but this round's leader.
        self.commit.round_done.notify();
        if result.is_ok() {
            self.remove_old_copies(removals).await;
        }
        result
    }

    /// Give a round that found the disk full its files and removals back for the next one.
    fn retry_later(
        &self,
        dirty: std::collections::BTreeMap<u32, Rc<Segment<F>>>,
        removals: Vec<(Rc<Segment<F>>, Loc)>,
    ) {
        let mut now_dirty = self.dirty.borrow_mut();
        for (num, seg) in dirty {
            now_dirty.entry(num).or_insert(seg);
        }
        let mut pending = self.deferred_removals.borrow_mut();
        let later = std::mem::replace(&mut *pending, removals);
        pending.extend(later);
    }

    /// Mark removed the old copies whose new copies are durable now. A file replaced since
    /// (defragmented) no longer holds them. A failure leaves an old copy live on disk, which
    /// recovery settles in favour of the newer copy, so it is only logged. Only the index
    /// entry is marked: the data file's copy of the header stays as it is, since a mark
    /// there would add one scattered page to every later round (recovery takes the newer
    /// copy either way).
    async fn remove_old_copies(&self, removals: Vec<(Rc<Segment<F>>, Loc)>) {
        for (seg, loc) in removals {
            // Released before the mark: a sort of the file under way re-reads the entry
            // the mark notes as changed, and must see it dead by then.
            self.release_old_copy(&loc);
            let current = self.files.borrow().get(&seg.num).cloned();
            match current {
                Some(now) if Rc::ptr_eq(&now, &seg) => {
                    if let Err(e) = self.mark_replaced(&seg, &loc).await {
                        tracing::warn!(file = %seg.path, "marking a rewritten record removed failed: {e}");
                    }
                }
                // Replaced since: sorts and defrags wait for the holds on their file to
                // end, so no copy there is live; count it so that defrag sees its bytes.
                Some(now) => {
                    now.removed.set(now.removed.get() + 1);
                    now.removed_bytes
                        .set(now.removed_bytes.get() + loc.disk_size);
                }
                None => {}
            }
        }
    }

    /// Wait until no old copy in file `num` is held, running the sync round that ends the
    /// holds when none is under way; false if one still is after a bounded number of turns.
    pub(super) async fn holds_ended(&self, num: u32) -> Result<bool, BlobError> {
        for _ in 0..HOLD_WAIT_TURNS_MAX {
            if !self.holds_in(num) {
                return Ok(true);
            }
            if self.commit.in_flight.get() {
                let seen = self.commit.round_done.generation();
                self.commit.round_done.wait(seen).await;
            } else if !self.deferred_removals.borrow().is_empty() {
                self.sync_round(false).await?;
            } else {
                // The last round's leader is still marking the copies it released.
                YieldNow::default().await;
            }
        }
        Ok(!self.holds_in(num))
    }

    fn release_old_copy(&self, loc: &Loc) {
        let mut held = self.old_copies_held.borrow_mut();
        if let std::collections::hash_map::Entry::Occupied(mut e) =
            held.entry((loc.file, loc.position))
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }

    /// Flush everything written so far and write sorted indexes of closed files.
    pub async fn sync(&self) -> Result<(), BlobError> {
        if self.commit.poisoned.get() {
            return Err(BlobError::Poisoned);
        }
        while self.commit.in_flight.get() {
            let seen = self.commit.round_done.generation();
            self.commit.round_done.wait(seen).await;
        }
        self.sync_round(true).await?;
        if self.read_only.get() {
            return Ok(());
        }
        self.sort_closed().await
    }

    /// Write sorted indexes of closed files that no operation is changing. Runs after a
    /// rotation (from the writes that follow it) and from [`Self::sync`]; one at a time.
    pub(super) async fn sort_closed(&self) -> Result<(), BlobError> {
        if self.sorting.replace(true) {
            return Ok(());
        }
        let closed: Vec<_> = self.files.borrow().values().cloned().collect();
        let mut result = Ok(());
        let mut pending = false;
        for seg in closed {
            if seg.closed.get() && !seg.sorted.get() {
                if seg.busy.get() == 0 {
                    if let Err(e) = self.sort_segment(&seg).await {
                        result = Err(e);
                        break;
                    }
                }
                pending |= !seg.sorted.get();
            }
        }
        self.needs_sort.set(pending || result.is_err());
        self.sorting.set(false);
        result
    }

    /// Background upkeep for the owner of the log, off the request path (the node runs it
    /// on the shard's ring every few tens of milliseconds): a step of a key-table rebuild,
    /// the periodic sync when due, and sorted indexes for closed files.
    pub async fn maintain(&self) -> Result<(), BlobError> {
        self.index
            .borrow_mut()
            .rebuild_files_step(super::index::KEYS_PER_REBUILD_STEP);
        self.sync_if_due().await?;
        if self.read_only.get() || !self.needs_sort.get() {
            return Ok(());
        }
        self.sort_closed().await
    }

    /// The defrag turn of the owner's loop: start the pass asked for, or the compact pass
    /// the schedule makes due at local `hour`.
    pub async fn defrag_turn(
        &self,
        schedule: &DefragSchedule,
        hour: u32,
    ) -> Result<Option<DefragStats>, BlobError> {
        if self.defrag.timed_check_due(schedule, hour) {
            self.defrag.request(DefragLevel::Compact);
        }
        let Some(level) = self.defrag.requested.take() else {
            return Ok(None);
        };
        if self.read_only.get() {
            return Ok(None);
        }
        self.run_defrag(level).await.map(Some)
    }

    /// Ask for a defrag pass at `level` (run by the owner's next [`Self::defrag_turn`]).
    pub fn request_defrag(&self, level: DefragLevel) {
        self.defrag.request(level);
    }

    /// Stop the running defrag after the step it is in (its file is left as it was), and
    /// drop a pass asked for but not started.
    pub fn stop_defrag(&self) {
        self.defrag.requested.set(None);
        if self.defrag.running.get().is_some() {
            self.defrag.stop.set(true);
        }
    }

    /// The defrag state and counters, for BACKEND_STATUS and the monitor.
    pub fn defrag_status(&self) -> DefragStatus {
        let wanting = self
            .files
            .borrow()
            .values()
            .filter(|s| self.wants_defrag(s, DefragLevel::Compact))
            .count() as u64;
        let running = self.defrag.state();
        DefragStatus {
            // A pass asked for and not yet started shows as running, as eblob shows it.
            state: match (running, self.defrag.requested.get()) {
                (super::defrag_state::state::NOT_STARTED, Some(DefragLevel::Start)) => {
                    super::defrag_state::state::DATA_SORT
                }
                (super::defrag_state::state::NOT_STARTED, Some(DefragLevel::Compact)) => {
                    super::defrag_state::state::COMPACT
                }
                (s, _) => s,
            },
            runs: self.defrag.runs.get(),
            files_rewritten: self.defrag.files_rewritten.get(),
            bytes_freed: self.defrag.bytes_freed.get(),
            files_wanting: wanting,
        }
    }

    /// With `sync_s > 0`: call often; syncs when `sync_s` seconds passed since the last one.
    pub async fn sync_if_due(&self) -> Result<(), BlobError> {
        let due_s = u64::try_from(self.opts.sync_s).unwrap_or(0);
        if due_s > 0 && self.last_sync.get().elapsed().as_secs() >= due_s {
            return self.sync().await;
        }
        Ok(())
    }
}
