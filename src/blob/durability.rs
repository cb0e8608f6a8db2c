//! Durability: group commit for `sync = 0` (writers waiting at the same time share one
//! fdatasync round; one round in flight, later arrivals wait for the next) and the periodic
//! sync for `sync = N`. A failed fdatasync poisons the log: writes answer -EIO until reopen.

use super::error::BlobError;
use super::log::BlobLog;
use super::sync::YieldNow;
use crate::io::IoFile;
use std::time::Instant;

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
                self.sync_round().await?;
            }
        }
    }

    /// One group-commit round: fdatasync every file changed since the last round.
    async fn sync_round(&self) -> Result<(), BlobError> {
        self.commit.in_flight.set(true);
        let target = self.commit.written_seq.get();
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        let mut result = Ok(());
        for seg in dirty.values() {
            self.fsyncs.set(self.fsyncs.get() + 2);
            if let Err(e) = seg.sync_all().await {
                self.commit.poisoned.set(true);
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            self.commit.synced_seq.set(target);
            self.last_sync.set(Instant::now());
        }
        self.commit.in_flight.set(false);
        self.commit.round_done.notify();
        result
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
        self.sync_round().await?;
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

    /// Periodic upkeep for the owner of the log: sync when due, sort closed files, and
    /// defragment files whose removed share reached `defrag_percentage`.
    pub async fn maintain(&self) -> Result<(), BlobError> {
        self.sync_if_due().await?;
        if self.read_only.get() {
            return Ok(());
        }
        self.sort_closed().await?;
        self.defrag_if_needed().await.map(|_| ())
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
