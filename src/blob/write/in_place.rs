//! A write that fits its record, done in place: the whole value rewritten (through the
//! page-cache map when it can), or a part of it with the footer rebuilt after.

use super::{flags32, header_of, too_big, Plan, WholeValue};
use crate::blob::disk_control::DISK_CONTROL_SIZE_BYTES;
use crate::blob::error::BlobError;
use crate::blob::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use crate::blob::index::Loc;
use crate::blob::log::{BlobLog, Busy};
use crate::blob::segment::Segment;
use crate::io::IoFile;
use crate::key::RawId;
use crate::protocol::record_flags;
use bytes::Bytes;
use std::rc::Rc;

impl<F: IoFile> BlobLog<F> {
    pub(super) async fn write_in_place(
        &self,
        id: &RawId,
        seg: &Rc<Segment<F>>,
        old: &Loc,
        plan: &Plan,
        data: &Bytes,
        ext: &ExtHeader,
    ) -> Result<Loc, BlobError> {
        let _busy = Busy::new(seg);
        let mut flags = (u64::from(old.flags) & !record_flags::UNCOMMITTED) | record_flags::EXTHDR;
        if plan.append {
            flags |= record_flags::APPEND;
        }
        let new = Loc {
            data_size: plan.new_user + EXT_HEADER_SIZE_BYTES,
            flags: flags32(flags),
            ..*old
        };
        if plan.offset == 0 && plan.new_user == data.len() as u64 {
            self.overwrite_whole(seg, &new, data, ext).await?;
        } else {
            Box::pin(self.overwrite_part(seg, old, plan, data, ext)).await?;
            Box::pin(self.write_footer(seg, &new)).await?;
        }
        // A same-size overwrite leaves the header and the index entry as they were.
        if new != *old {
            seg.write_header(&header_of(id, &new), new.index_slot)
                .await?;
            self.index.borrow_mut().insert(*id, new);
        }
        self.touch(seg);
        Ok(new)
    }

    /// Replace the whole value of `new`'s record: every data byte is in hand, so the footer
    /// is computed here (not read back) and, when it follows the data, goes out with it in
    /// one store into the page-cache map or else one write.
    async fn overwrite_whole(
        &self,
        seg: &Segment<F>,
        new: &Loc,
        data: &Bytes,
        ext: &ExtHeader,
    ) -> Result<(), BlobError> {
        let whole = WholeValue::new(new, ext, data);
        // Under `sync: 0` every write waits for an fdatasync, which write-protects the
        // mapped pages again: a store would fault each time, and saves nothing there.
        if self.opts.sync_s != 0 && whole.store_mapped(seg, data) {
            return Ok(());
        }
        whole.write(seg, data).await
    }

    /// Write part of a value in place (at an offset, or shorter than what stays): the
    /// bytes between the old end and the write become zeros; the footer is rebuilt after.
    async fn overwrite_part(
        &self,
        seg: &Segment<F>,
        old: &Loc,
        plan: &Plan,
        data: &Bytes,
        ext: &ExtHeader,
    ) -> Result<(), BlobError> {
        let base = old.position + DISK_CONTROL_SIZE_BYTES;
        let ext_bytes = Bytes::copy_from_slice(&ext.encode());
        let mut bufs = vec![ext_bytes];
        let mut at = base + EXT_HEADER_SIZE_BYTES;
        if plan.offset > plan.committed_user {
            let gap = usize::try_from(plan.offset - plan.committed_user).map_err(|_| too_big())?;
            seg.write_data(vec![Bytes::from(vec![0u8; gap])], at + plan.committed_user)
                .await?;
        }
        if plan.offset == 0 {
            bufs.push(data.clone());
        } else {
            seg.write_data(std::mem::take(&mut bufs), base).await?;
            at += plan.offset;
            bufs.push(data.clone());
        }
        let start = if plan.offset == 0 { base } else { at };
        seg.write_data(bufs, start).await
    }
}
