//! The Elliptics 2.26 wire protocol: byte-exact encoders and pure, panic-free decoders.
//!
//! Every message on a connection is a frame:
//!
//! ```text
//! +---------------------------+----------------------------+
//! | dnet_cmd header (120 B)   | payload (header.size bytes)|
//! +---------------------------+----------------------------+
//! ```
//!
//! This module owns layouts and constants only. It does no IO, keeps no state, and never
//! allocates on the strength of a length it has not checked against a limit.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

mod addr;
mod backend_status;
mod body;
mod consts;
mod control;
pub mod errno;
mod error;
mod file_info;
mod handshake;
mod header;
mod id_container;
mod index_table;
mod indexes;
mod io_attr;
mod iterator;
mod reader;
mod sph;
mod writer;

pub use addr::{
    AddrContainer, DnetAddr, ADDR_CONTAINER_HEADER_SIZE_BYTES, AF_INET, AF_INET6,
    DNET_ADDR_SIZE_BYTES, SOCKADDR_SIZE_BYTES,
};
pub use backend_status::{
    backend_state, defrag_state, BackendStatus, BackendStatusList, BACKEND_STATUS_SIZE_BYTES,
};
pub use body::{decode_body, Body};
pub use consts::*;
pub use control::{
    backend_command, monitor_categories, status_flags, Auth, BackendControl, MonitorStatRequest,
    NodeStatus, AUTH_SIZE_BYTES, BACKEND_CONTROL_SIZE_BYTES, MONITOR_STAT_REQUEST_SIZE_BYTES,
    NODE_STATUS_SIZE_BYTES,
};
pub use errno::Errno;
pub use error::DecodeError;
pub use file_info::{
    FileInfo, LookupReply, FILE_INFO_SIZE_BYTES, FILE_PATH_BYTES_MAX, LOOKUP_REPLY_FIXED_SIZE_BYTES,
};
pub use handshake::{
    check_reverse_lookup_reply, decode_reverse_lookup_reply, reverse_lookup_request,
    HandshakeError, HandshakeVersion, NodeAnnouncement, SHARD_COUNT_OFFSET_BYTES,
};
pub use header::{cmd_offset, split_frame, CmdHeader, Frame, HEADER_SIZE_BYTES};
pub use id_container::{
    BackendIds, IdContainer, BACKEND_IDS_FLAG_DISABLE, BACKEND_IDS_SIZE_BYTES,
    ID_CONTAINER_HEADER_SIZE_BYTES,
};
pub use index_table::{
    decode_find_results, encode_find_results, index_shard_of, index_table_id, object_table_id,
    FoundObject, IndexTable, TableEntry, TableError, INDEX_TABLE_MAGIC,
};
pub use indexes::{
    decode_indexes_reply, encode_indexes_reply, entry_flags as index_entry_flags,
    request_flags as index_request_flags, IndexesReplyEntry, IndexesRequest, IndexesRequestEntry,
    INDEXES_REPLY_ENTRY_SIZE_BYTES, INDEXES_REPLY_SIZE_BYTES, INDEXES_REQUEST_ENTRY_SIZE_BYTES,
    INDEXES_REQUEST_SIZE_BYTES,
};
pub use io_attr::{DnetTime, IoAttr, IO_ATTR_SIZE_BYTES};
pub use iterator::{
    iflags, iterator_action, iterator_type, IteratorRange, IteratorRequest, IteratorResponse,
    ServerSendRequest, ITERATOR_RANGE_SIZE_BYTES, ITERATOR_REQUEST_SIZE_BYTES,
    ITERATOR_RESPONSE_SIZE_BYTES, SERVER_SEND_REQUEST_SIZE_BYTES,
};
pub use reader::Reader;
pub use sph::{sph_flags, ExecPayload, Sph, SPH_SIZE_BYTES};
pub use writer::Writer;

/// Check a count read from the wire before anything is allocated for it: it must be
/// non-negative and `count * elem_size_bytes` must fit in the `remaining_bytes` present.
pub(crate) fn count_within(
    field: &'static str,
    count: i64,
    elem_size_bytes: usize,
    remaining_bytes: usize,
) -> Result<usize, DecodeError> {
    let n = usize::try_from(count).map_err(|_| DecodeError::InvalidValue {
        field,
        value: count,
    })?;
    let need = n.checked_mul(elem_size_bytes);
    match need {
        Some(bytes) if bytes <= remaining_bytes => Ok(n),
        _ => Err(DecodeError::TooLarge {
            field,
            len: u64::try_from(n)
                .unwrap_or(u64::MAX)
                .saturating_mul(elem_size_bytes as u64),
            max: remaining_bytes as u64,
        }),
    }
}
