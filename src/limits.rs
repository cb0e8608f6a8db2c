//! Every compiled-in limit, with its unit last, and the relations between them.

use crate::protocol::{HEADER_SIZE_BYTES, IO_ATTR_SIZE_BYTES};

/// Default largest accepted frame payload (`dnet_cmd.size`); configurable per node.
pub const FRAME_PAYLOAD_BYTES_MAX_DEFAULT: u64 = 64 << 20;
/// Hard ceiling for the configurable frame payload limit.
pub const FRAME_PAYLOAD_BYTES_MAX_CEILING: u64 = 1 << 31;
/// Bytes one node holds for incomplete large frames over all its connections (raised to
/// one largest frame when `frame_payload_bytes_max` is larger).
pub const INCOMPLETE_FRAMES_BYTES_MAX: u64 = 256 << 20;

const _: () = assert!(FRAME_PAYLOAD_BYTES_MAX_DEFAULT <= FRAME_PAYLOAD_BYTES_MAX_CEILING);
const _: () =
    assert!((HEADER_SIZE_BYTES + IO_ATTR_SIZE_BYTES) as u64 <= FRAME_PAYLOAD_BYTES_MAX_DEFAULT);
