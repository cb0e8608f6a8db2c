//! Defragmentation: rewrite a sealed data file without its removed records.
//!
//! The file's sorted index is walked in key order; each live record is copied verbatim
//! (header position rewritten) to `P-S.N.defrag`, its header to `P-S.N.defrag.index.sorted`
//! (so the copy is sorted by key as it is written: the file keeps one index). The copy goes
//! [`STEP_BYTES_MAX`] bytes per turn, then yields to the shard's requests. Both files are
//! made durable, then the marker `P-S.N.defrag.done` is created: that is the commit point.
//! The renames over the old files follow and the marker goes. At open, a marker means
//! "finish the renames", no marker means "delete the temporaries". Reads and writes go on
//! while the copy runs; removes that land meanwhile are re-applied to the copy (and made
//! durable) before the swap, and the swap itself runs without an `.await`. An old copy of
//! a rewritten key whose new copy may not be durable yet is kept live in the copy, and the
//! swap waits for the sync round that ends its hold (the copy then drops it): a copy left
//! live in the new file would be out of reach of the mark that the round makes.

use super::defrag_commit::drop_temporaries;
use super::defrag_copy::{Copy, Copying, NewFiles, BUSY_WAIT_TURNS_MAX};
use super::defrag_state::DefragLevel;
pub use super::defrag_state::DefragStop;
use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::log::BlobLog;
use super::recovery::read_entries;
use super::segment::Segment;
use super::sync::YieldNow;
use super::DefragStats;
use crate::io::IoFile;
use crate::protocol::record_flags;
use std::rc::Rc;

/// Bytes of records copied per turn before yielding to requests.
pub const STEP_BYTES_MAX: usize = 1 << 20;

/// Sorted-index entries read per turn.
const CHUNK_ENTRIES: u64 = 4096;

/// Rounds of re-applying removes that landed during the copy before a file is left for
/// the next pass.
const CHECK_ROUNDS_MAX: usize = 8;

/// Largest record a defrag copies (a bigger header is damage, not data).
const RECORD_BYTES_MAX: u64 = super::write::VALUE_SIZE_BYTES_MAX + (1 << 20);

impl<F: IoFile> BlobLog<F> {
    /// Rewrite every sealed file that holds removed records (`dnet_ioclient -d start`).
    pub async fn defrag(&self) -> Result<DefragStats, BlobError> {
        self.run_defrag(DefragLevel::Start).await
    }

    /// Rewrite sealed files whose removed share reached `defrag_percentage`.
    pub async fn defrag_if_needed(&self) -> Result<DefragStats, BlobError> {
        self.run_defrag(DefragLevel::Compact).await
    }

    /// One defrag pass at `level`, a file at a time; nothing when one is running.
    pub async fn run_defrag(&self, level: DefragLevel) -> Result<DefragStats, BlobError> {
        self.check_writable()?;
        if self.defrag.running.get().is_some() {
            return Ok(DefragStats::default());
        }
        self.defrag.running.set(Some(level));
        let mut stats = DefragStats::default();
        let result = self.defrag_pass(level, &mut stats).await;
        self.defrag.running.set(None);
        self.defrag.stop.set(false);
        self.defrag.runs.set(self.defrag.runs.get() + 1);
        self.defrag
            .files_rewritten
            .set(self.defrag.files_rewritten.get() + stats.files_rewritten);
        self.defrag.bytes_freed.set(
            self.defrag.bytes_freed.get() + stats.bytes_before.saturating_sub(stats.bytes_after),
        );
        result.map(|()| stats)
    }

    /// The least removed share (percent) of a file that `level` rewrites.
    fn min_percent(&self, level: DefragLevel) -> u32 {
        match level {
            DefragLevel::Start => 0,
            DefragLevel::Compact => self.opts.defrag_percentage.max(1),
        }
    }

    /// Whether sealed file `seg` is one `level` rewrites.
    pub(super) fn wants_defrag(&self, seg: &Segment<F>, level: DefragLevel) -> bool {
        let used = seg.tail_bytes.get().max(1);
        let share = seg.removed_bytes.get().saturating_mul(100) / used;
        seg.closed.get()
            && seg.sorted.get()
            && seg.removed.get() > 0
            && share >= u64::from(self.min_percent(level))
    }

    async fn defrag_pass(
        &self,
        level: DefragLevel,
        stats: &mut DefragStats,
    ) -> Result<(), BlobError> {
        // Files closed but not yet sorted are sorted first (their one index is the input).
        self.sort_closed().await?;
        let nums: Vec<u32> = self.files.borrow().keys().copied().collect();
        for num in nums {
            if self.defrag.stop.get() || self.read_only.get() {
                break;
            }
            let Some(seg) = self.files.borrow().get(&num).cloned() else {
                continue;
            };
            // A small file's live records move to the open file first: the copy below
            // then finds nothing live and deletes the file.
            if self.wants_merge(&seg) {
                stats.records_moved += self.move_live(&seg).await?;
            }
            if self.wants_defrag(&seg, level) {
                self.defrag_segment(&seg, stats).await?;
            }
        }
        Ok(())
    }

    /// Sealed file `num` holds a record changed in place and not committed yet.
    fn uncommitted_in(&self, num: u32) -> bool {
        self.index
            .borrow()
            .any_hot(|l| l.file == num && u64::from(l.flags) & record_flags::UNCOMMITTED != 0)
    }

    /// The record of sealed file `num` described by `dc` must be in its copy.
    fn copy_wanted(&self, num: u32, dc: &DiskControl) -> bool {
        match self.index.borrow().get(&dc.key) {
            Some(l) if l.file == num && l.position == dc.position => true,
            _ => self.old_copy_held(num, dc.position),
        }
    }

    /// The whole record `dc` of `seg`, read from the map when it can be.
    async fn read_record(&self, seg: &Segment<F>, dc: &DiskControl) -> Result<Vec<u8>, BlobError> {
        let fits = dc.disk_size >= DISK_CONTROL_SIZE_BYTES
            && dc.disk_size <= RECORD_BYTES_MAX
            && dc
                .position
                .checked_add(dc.disk_size)
                .is_some_and(|e| e <= seg.tail_bytes.get());
        if !fits {
            return Err(BlobError::Corrupt {
                path: seg.path.to_string(),
                reason: format!("index entry at {} is out of the file", dc.position),
            });
        }
        if let Some(res) = seg.read_mapped(dc.position, dc.disk_size, |b| b.to_vec()) {
            return res;
        }
        seg.read_data(dc.disk_size, dc.position).await
    }

    async fn defrag_segment(
        &self,
        seg: &Rc<Segment<F>>,
        stats: &mut DefragStats,
    ) -> Result<(), BlobError> {
        let num = seg.num;
        if self.uncommitted_in(num) {
            // Its entries are not final (and RAM holds their state): the next pass takes it.
            return Ok(());
        }
        let _copying = Copying::start(seg);
        // In-place overwrites already under way finish before the copy reads the file.
        for _ in 0..BUSY_WAIT_TURNS_MAX {
            if seg.busy.get() == 0 {
                break;
            }
            YieldNow::default().await;
        }
        if seg.busy.get() > 0 {
            return Ok(());
        }
        let mut copy: Copy<F> = Copy::new(NewFiles::create(&self.opts, num)?);
        if !self.copy_live(seg, &mut copy).await? {
            drop(copy);
            return drop_temporaries(&self.opts, num);
        }
        copy.flush().await?;
        self.settle_copy(seg, copy, stats).await
    }

    /// Copy the live records of `seg` into `copy`, a chunk of its index at a time; `false`
    /// when a stop was asked for.
    async fn copy_live(&self, seg: &Rc<Segment<F>>, copy: &mut Copy<F>) -> Result<bool, BlobError> {
        let num = seg.num;
        let entries = u64::from(seg.index_slots.get());
        let mut slot = 0u64;
        while slot < entries {
            if self.defrag.stop.get() {
                return Ok(false);
            }
            let n = CHUNK_ENTRIES.min(entries - slot);
            let buf = read_entries(seg, slot, n).await?;
            for i in 0..usize::try_from(n).unwrap_or(0) {
                let Some(old) = DiskControl::decode_at(&buf, i) else {
                    break;
                };
                if old.flags & record_flags::REMOVE != 0 || !self.copy_wanted(num, &old) {
                    continue;
                }
                let record = self.read_record(seg, &old).await?;
                if copy.push(&old, record) >= STEP_BYTES_MAX {
                    copy.flush().await?;
                    YieldNow::default().await;
                }
            }
            slot += n;
            YieldNow::default().await;
        }
        Ok(true)
    }

    /// Once the copy is durable, drop the records removed meanwhile from it (a few rounds)
    /// and swap it in; a file whose records keep being removed is left for the next pass.
    async fn settle_copy(
        &self,
        seg: &Rc<Segment<F>>,
        mut copy: Copy<F>,
        stats: &mut DefragStats,
    ) -> Result<(), BlobError> {
        let num = seg.num;
        for _ in 0..CHECK_ROUNDS_MAX {
            copy.files.sync().await?;
            // An old copy held here is dead once its round ends: kept live in the copy, no
            // mark would reach it there, so the swap waits for the holds to end.
            self.holds_ended(num).await?;
            let newly: Vec<usize> = copy
                .placed
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    !p.dropped
                        && !self.copy_wanted(
                            num,
                            &DiskControl {
                                position: p.old_position,
                                ..p.dc
                            },
                        )
                })
                .map(|(i, _)| i)
                .collect();
            if newly.is_empty() && !self.uncommitted_in(num) && !self.holds_in(num) {
                // Commit point and swap: no `.await` from here to the end.
                return self.swap_in(seg, &copy.placed, copy.end(), stats);
            }
            for i in newly {
                let Some(p) = copy.placed.get_mut(i) else {
                    continue;
                };
                p.dropped = true;
                p.dc.flags |= record_flags::REMOVE;
                let dc = p.dc;
                copy.files.put_header(&dc, i).await?;
            }
        }
        // Removes keep landing on this file: leave it for the next pass.
        drop(copy);
        drop_temporaries(&self.opts, num)
    }
}
