//! The streams of one log under way (see [`super::stream`] and [`super::stream_read`]):
//! their tickets and what each holds. The log owns this table, and the code that drives
//! the streams sits above both, so the log imports no streaming code.

use super::disk_control::DiskControl;
use super::ext_header::ExtHeader;
use super::footer::FooterKind;
use super::index::Loc;
use super::segment::{Busy, Segment};
use crate::io::IoFile;
use crate::key::RawId;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// The streams of one log under way, by ticket.
#[derive(Debug)]
pub struct StreamTable<F: IoFile> {
    next_ticket: Cell<u64>,
    pub(super) writes: RefCell<HashMap<u64, WriteStream<F>>>,
    pub(super) reads: RefCell<HashMap<u64, ReadStream<F>>>,
}

impl<F: IoFile> Default for StreamTable<F> {
    fn default() -> Self {
        StreamTable {
            next_ticket: Cell::new(1),
            writes: RefCell::new(HashMap::new()),
            reads: RefCell::new(HashMap::new()),
        }
    }
}

impl<F: IoFile> StreamTable<F> {
    pub(super) fn ticket(&self) -> u64 {
        let t = self.next_ticket.get();
        self.next_ticket.set(t.wrapping_add(1));
        t
    }

    /// A streamed READ of `id` is under way: its record must not be overwritten in place.
    pub(super) fn is_reading(&self, id: &RawId) -> bool {
        let reads = self.reads.borrow();
        !reads.is_empty() && reads.values().any(|r| r.id == *id)
    }
}

/// Where a streamed write's bytes go.
#[derive(Debug)]
pub(super) enum Target {
    /// A record of its own, reserved whole: `dc` is its final header (without the
    /// `UNCOMMITTED` flag the disk copy carries until the end); `footer` when it carries a
    /// checksum footer.
    New { dc: DiskControl, footer: bool },
    /// A prepared record, at `offset` of its value; `commit` = the value's size to seal.
    Plain { offset: u64, commit: Option<u64> },
}

/// One streamed write under way.
#[derive(Debug)]
pub(super) struct WriteStream<F: IoFile> {
    pub(super) id: RawId,
    pub(super) seg: Rc<Segment<F>>,
    pub(super) _busy: Busy<F>,
    pub(super) target: Target,
    pub(super) ext: ExtHeader,
    pub(super) value_bytes: u64,
    pub(super) received_bytes: u64,
    pub(super) done: bool,
}

impl<F: IoFile> Drop for WriteStream<F> {
    fn drop(&mut self) {
        if let (Target::New { dc, .. }, false) = (&self.target, self.done) {
            // Nothing names the reserved run: it is dead space for defrag to reclaim.
            self.seg.removed.set(self.seg.removed.get() + 1);
            self.seg
                .removed_bytes
                .set(self.seg.removed_bytes.get() + dc.disk_size);
        }
    }
}

/// One streamed read under way.
#[derive(Debug)]
pub(super) struct ReadStream<F: IoFile> {
    pub(super) id: RawId,
    pub(super) seg: Rc<Segment<F>>,
    pub(super) _busy: Busy<F>,
    pub(super) loc: Loc,
    /// The footer to verify against, with its kind (none for NOCSUM or when not asked).
    pub(super) check: Option<(FooterKind, Vec<u8>)>,
    /// Next and end position, in the record's data numbering (ext header at 0).
    pub(super) next: u64,
    pub(super) end: u64,
}
