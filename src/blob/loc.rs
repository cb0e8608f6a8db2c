//! Where a record lives ([`Loc`]): the value every key table maps a key to, hot or sealed,
//! and the location a sealed file's index entry describes. Below the tables that hold it.

use super::disk_control::DiskControl;

/// Where a record lives and what its header says (40 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Offset of the record header in the data file.
    pub position: u64,
    /// Client bytes including the ext header.
    pub data_size: u64,
    /// Bytes the record occupies in the data file.
    pub disk_size: u64,
    /// Data file number N.
    pub file: u32,
    /// Entry number in the file's `.index`.
    pub index_slot: u32,
    /// `record_flags::*` (all defined flags fit in 32 bits).
    pub flags: u32,
}

/// The location a sealed file's entry `slot` describes.
pub(super) fn loc_of(file: u32, slot: u32, dc: &DiskControl) -> Loc {
    Loc {
        position: dc.position,
        data_size: dc.data_size,
        disk_size: dc.disk_size,
        file,
        index_slot: slot,
        flags: u32::try_from(dc.flags & 0xffff_ffff).unwrap_or(0),
    }
}
