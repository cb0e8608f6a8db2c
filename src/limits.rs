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

/// Default largest value a node accepts (`value_bytes_max`), streamed or not.
pub const VALUE_BYTES_MAX_DEFAULT: u64 = 64 << 30;
/// Hard ceiling for the configurable value limit, and the largest value a record may hold.
pub const VALUE_BYTES_MAX_CEILING: u64 = 1 << 40;
/// A WRITE whose frame payload is larger than this is streamed: its value goes from the
/// socket to its place in the blob a piece at a time instead of being buffered whole.
pub const STREAM_WRITE_THRESHOLD_BYTES: u64 = 4 << 20;
/// A READ whose answer is larger than this is streamed from the file to the socket.
pub const STREAM_READ_THRESHOLD_BYTES: u64 = 4 << 20;
/// Bytes of a streamed value moved at once (socket to file or file to socket): what one
/// streaming connection holds, whatever the value's size.
pub const STREAM_PIECE_BYTES: u64 = 1 << 20;
/// Bytes of streamed WRITEs' pieces the node holds at once, over all of its connections: a
/// stream that finds none free writes out what it holds and then waits for one piece.
pub const STREAM_PIECES_BYTES_MAX: u64 = 64 << 20;

/// Bytes of a streamed value read from the socket in one go: a piece is received in slices
/// of this size, each a ring turn of its own, so a shard streaming several large values
/// still answers its small requests between the slices.
pub const STREAM_SLICE_BYTES: usize = 128 << 10;

const _: () = assert!(FRAME_PAYLOAD_BYTES_MAX_CEILING <= VALUE_BYTES_MAX_CEILING);
const _: () = assert!(VALUE_BYTES_MAX_DEFAULT <= VALUE_BYTES_MAX_CEILING);
const _: () = assert!(STREAM_WRITE_THRESHOLD_BYTES < FRAME_PAYLOAD_BYTES_MAX_DEFAULT);
