//! A write that goes to a new record: its space reserved (2x for a moved APPEND, 4x for a
//! new key), its value merged with the kept bytes of the old one, and its header, value
//! and footer stored in as few writes as the layout allows.

use super::{too_big, Plan, HEAD_BYTES};
use crate::blob::disk_control::DISK_CONTROL_SIZE_BYTES;
use crate::blob::error::BlobError;
use crate::blob::ext_header::{ExtHeader, EXT_HEADER_SIZE_BYTES};
use crate::blob::footer::{self, FooterKind};
use crate::blob::index::Loc;
use crate::blob::log::BlobLog;
use crate::blob::segment::Segment;
use crate::io::IoFile;
use crate::key::RawId;
use crate::protocol::record_flags;
use bytes::Bytes;
use std::rc::Rc;

impl<F: IoFile> BlobLog<F> {
    /// Write `data` as the whole value of `id` in a new record at the end of the open file
    /// (never in place), the copy at `existing` becoming the old one: how a defrag moves a
    /// live value out of a small sealed file. The old copy stays live on disk (held) until
    /// the next sync round has made the new one durable; the caller runs that round.
    pub(crate) async fn rewrite_as_new(
        &self,
        id: &RawId,
        existing: (Loc, Rc<Segment<F>>),
        data: &Bytes,
        ext: &ExtHeader,
        csum_flags: u64,
    ) -> Result<(), BlobError> {
        let plan = Plan {
            offset: 0,
            new_user: data.len() as u64,
            committed_user: existing.0.data_size.saturating_sub(EXT_HEADER_SIZE_BYTES),
            append: false,
            hold_old_copy: true,
        };
        self.write_new_record(id, Some(existing), &plan, data, ext, csum_flags)
            .await?;
        self.commit.next_seq();
        Ok(())
    }

    pub(super) async fn write_new_record(
        &self,
        id: &RawId,
        existing: Option<(Loc, Rc<Segment<F>>)>,
        plan: &Plan,
        data: &Bytes,
        ext: &ExtHeader,
        csum_flags: u64,
    ) -> Result<(Rc<Segment<F>>, Loc), BlobError> {
        let need = plan.new_user + EXT_HEADER_SIZE_BYTES;
        let reserve = match (plan.append, plan.committed_user > 0) {
            (true, true) => need * 2,
            (true, false) => need * 4,
            _ => need,
        };
        let nocsum = csum_flags & record_flags::NOCSUM != 0;
        let mut flags = record_flags::EXTHDR | csum_flags;
        if plan.append {
            flags |= record_flags::APPEND;
        }
        let keep = existing.as_ref().is_some_and(|_| {
            plan.committed_user > 0
                && (plan.offset > 0 || plan.offset + (data.len() as u64) < plan.new_user)
        });
        // The value is the caller's bytes as they are: they go out without a copy.
        let whole = !keep && plan.offset == 0 && data.len() as u64 == plan.new_user;
        let value = if whole {
            data.clone()
        } else {
            Bytes::from(Box::pin(self.merged_value(existing.as_ref(), keep, plan, data)).await?)
        };
        let ext_bytes = ext.encode();
        let foot = if nocsum {
            Vec::new()
        } else {
            footer::build_parts(FooterKind::Crc32, &[&ext_bytes, &value])
        };
        let (dc, busy) = self.reserve_record(id, flags, need, reserve)?;
        let seg = busy.0.clone();
        let (position, disk_size) = (dc.position, dc.disk_size);
        let mut head = Vec::with_capacity(usize::try_from(HEAD_BYTES).unwrap_or(144));
        head.extend_from_slice(&dc.encode());
        head.extend_from_slice(&ext_bytes);
        let written = DISK_CONTROL_SIZE_BYTES + need;
        let foot_at = position + disk_size - foot.len() as u64;
        // Under `sync` > 0 a record that is one run of bytes is stored into the open file's
        // page-cache map (see `page_map`); under `sync: 0` every round's fdatasync would
        // write the zeros ahead of the records to the disk as well.
        let joined = foot.is_empty() || foot_at == position + written;
        let stored = self.opts.sync_s != 0
            && joined
            && seg.append_mapped(position, position + disk_size, &[&head, &value, &foot]);
        if !stored && joined {
            // No slack: the footer (if any) goes out with the record in one write.
            let mut parts = vec![Bytes::from(head), value];
            if !foot.is_empty() {
                parts.push(Bytes::from(foot));
            }
            seg.write_data(parts, position).await?;
        } else if !stored {
            seg.write_data(vec![Bytes::from(head), value], position)
                .await?;
            seg.write_data(vec![Bytes::from(foot)], foot_at).await?;
        }
        if nocsum && written < disk_size {
            self.extend_to(&seg, position + disk_size)?;
        }
        let hold = plan.hold_old_copy || self.opts.sync_s == 0;
        self.new_record_placed(id, &seg, dc, hold).await
    }

    /// The new value of a write that does not replace the whole value: the kept bytes of
    /// the old value (when `keep`), zeros up to the write, then `data` at its offset.
    async fn merged_value(
        &self,
        existing: Option<&(Loc, Rc<Segment<F>>)>,
        keep: bool,
        plan: &Plan,
        data: &Bytes,
    ) -> Result<Vec<u8>, BlobError> {
        let len = usize::try_from(plan.new_user).map_err(|_| too_big())?;
        let mut buf = match existing {
            Some((old, old_seg)) if keep => self.read_value(old_seg, old, false).await?.1,
            _ => Vec::new(),
        };
        buf.resize(len, 0);
        let at = usize::try_from(plan.offset).map_err(|_| too_big())?;
        let dst = buf
            .get_mut(at..at + data.len())
            .ok_or(BlobError::Invalid("write outside its value"))?;
        dst.copy_from_slice(data);
        Ok(buf)
    }
}
