//! Index entries not yet written to a file's `.index`.
//!
//! An append writes only the data file (whose record header carries the same 96 bytes as
//! the index entry); the entry waits here and goes out in one write with its neighbours:
//! when [`PENDING_ENTRIES_MAX`] are waiting, before every fdatasync of the file (so under
//! `sync = 0` an acknowledged record always has a durable index entry), and when the file
//! is dropped. Recovery scans the data file past the last index entry to find records whose
//! entries were still waiting at a crash.
//!
//! The buffer holds the entries of slots `flushed_slots ..`, back to back, in the `.index`
//! layout ([`super::disk_control`]). A flush writes a copy of it; an entry changed while
//! that write is in flight is changed in the buffer and written again by the same flush.

use super::disk_control::DISK_CONTROL_SIZE_BYTES;
use super::sync::Event;
use std::cell::{Cell, RefCell};

/// Entries buffered before an append flushes them on its own.
pub const PENDING_ENTRIES_MAX: usize = 256;

const ENTRY_BYTES: usize = DISK_CONTROL_SIZE_BYTES as usize;

/// The unwritten tail of one `.index` (see the module header).
#[derive(Debug, Default)]
pub struct PendingIndex {
    bytes: RefCell<Vec<u8>>,
    /// Entries before this slot are in the file.
    flushed_slots: Cell<u32>,
    /// A flush is writing a copy of the buffer.
    flushing: Cell<bool>,
    /// An entry of the buffer changed since the running flush copied it.
    changed: Cell<bool>,
    /// Fired when a flush ends.
    done: Event,
}

/// One flush step: what to write where, or what to wait for.
#[derive(Debug)]
pub enum FlushStep {
    Idle,
    /// Another flush runs: wait for `done` past this generation, then retry.
    Wait(u64),
    Write {
        bytes: Vec<u8>,
        offset_bytes: u64,
    },
}

impl PendingIndex {
    /// Start with `slots` entries already in the file.
    pub fn reset(&self, slots: u32) {
        self.bytes.borrow_mut().clear();
        self.flushed_slots.set(slots);
    }

    /// Buffer the entry of `slot` (the next one after those buffered); true when the buffer
    /// is full enough to be flushed.
    pub fn push(&self, slot: u32, entry: &[u8; ENTRY_BYTES]) -> bool {
        let mut bytes = self.bytes.borrow_mut();
        debug_assert_eq!(
            u64::from(slot),
            u64::from(self.flushed_slots.get()) + (bytes.len() / ENTRY_BYTES) as u64
        );
        bytes.extend_from_slice(entry);
        bytes.len() >= PENDING_ENTRIES_MAX * ENTRY_BYTES
    }

    /// Slots before this one are in the file.
    pub fn flushed_slots(&self) -> u32 {
        self.flushed_slots.get()
    }

    /// One past the last buffered slot.
    pub fn buffered_end(&self) -> u32 {
        let n = self.bytes.borrow().len() / ENTRY_BYTES;
        self.flushed_slots.get() + u32::try_from(n).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.borrow().is_empty()
    }

    /// Overwrite `len` bytes at `offset_in_entry` of a buffered entry; false when `slot`
    /// is already in the file (the caller writes there instead).
    pub fn patch(&self, slot: u32, offset_in_entry: usize, src: &[u8]) -> bool {
        let Some(rel) = slot.checked_sub(self.flushed_slots.get()) else {
            return false;
        };
        let Ok(rel) = usize::try_from(rel) else {
            return false;
        };
        let at = rel * ENTRY_BYTES + offset_in_entry;
        let mut bytes = self.bytes.borrow_mut();
        let Some(dst) = bytes.get_mut(at..at + src.len()) else {
            return false;
        };
        dst.copy_from_slice(src);
        if self.flushing.get() {
            self.changed.set(true);
        }
        true
    }

    /// The next step of a flush of everything buffered now.
    pub fn begin(&self) -> FlushStep {
        if self.flushing.get() {
            return FlushStep::Wait(self.done.generation());
        }
        let bytes = self.bytes.borrow();
        if bytes.is_empty() {
            return FlushStep::Idle;
        }
        self.flushing.set(true);
        self.changed.set(false);
        FlushStep::Write {
            bytes: bytes.clone(),
            offset_bytes: u64::from(self.flushed_slots.get()) * DISK_CONTROL_SIZE_BYTES,
        }
    }

    /// End a flush of `written` bytes; true when they are in the file unchanged (they
    /// leave the buffer), false when they must be written again.
    pub fn finish(&self, written: usize, ok: bool) -> bool {
        self.flushing.set(false);
        let clean = ok && !self.changed.get();
        if clean {
            let mut bytes = self.bytes.borrow_mut();
            let n = written.min(bytes.len());
            bytes.drain(..n);
            let slots = u32::try_from(n / ENTRY_BYTES).unwrap_or(0);
            self.flushed_slots.set(self.flushed_slots.get() + slots);
        }
        self.done.notify();
        clean
    }

    pub fn wait(&self, seen: u64) -> super::sync::EventWait<'_> {
        self.done.wait(seen)
    }

    /// The buffered entries and the file offset they belong at (for a blocking flush when
    /// the file is dropped).
    pub fn take_all(&self) -> (Vec<u8>, u64) {
        let at = u64::from(self.flushed_slots.get()) * DISK_CONTROL_SIZE_BYTES;
        (std::mem::take(&mut *self.bytes.borrow_mut()), at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(b: u8) -> [u8; ENTRY_BYTES] {
        [b; ENTRY_BYTES]
    }

    #[test]
    fn entry_changed_during_a_flush_is_written_again() {
        let p = PendingIndex::default();
        p.reset(3);
        p.push(3, &entry(1));
        p.push(4, &entry(2));
        let FlushStep::Write {
            bytes,
            offset_bytes,
        } = p.begin()
        else {
            panic!("expected a write");
        };
        assert_eq!(offset_bytes, 3 * 96);
        assert!(matches!(p.begin(), FlushStep::Wait(_)));
        assert!(p.patch(4, 64, &[9; 8]));
        assert!(
            !p.finish(bytes.len(), true),
            "changed entry must be rewritten"
        );
        let FlushStep::Write { bytes, .. } = p.begin() else {
            panic!("expected a second write");
        };
        assert_eq!(bytes[96 + 64], 9);
        assert!(p.finish(bytes.len(), true));
        assert!(p.is_empty());
        assert!(
            !p.patch(4, 0, &[1]),
            "flushed slots are patched in the file"
        );
        assert!(matches!(p.begin(), FlushStep::Idle));
    }

    #[test]
    fn failed_flush_keeps_the_entries() {
        let p = PendingIndex::default();
        p.push(0, &entry(5));
        let FlushStep::Write { bytes, .. } = p.begin() else {
            panic!("expected a write");
        };
        assert!(!p.finish(bytes.len(), false));
        assert!(!p.is_empty());
        assert!(p.patch(0, 0, &[1]));
    }

    #[test]
    fn buffer_reports_full_at_the_limit() {
        let p = PendingIndex::default();
        for slot in 0..PENDING_ENTRIES_MAX as u32 - 1 {
            assert!(!p.push(slot, &entry(0)));
        }
        assert!(p.push(PENDING_ENTRIES_MAX as u32 - 1, &entry(0)));
    }
}
