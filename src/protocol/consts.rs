//! Named constants of the 2.26 protocol: command numbers, command flags, IO flags, record
//! flags (the errno values of `cmd.status` are in `errno`). Values are the wire values; nothing
//! here may be renumbered.

/// Command numbers (`enum dnet_commands`, starting at 1).
pub mod command {
    pub const LOOKUP: i32 = 1;
    pub const REVERSE_LOOKUP: i32 = 2;
    pub const JOIN: i32 = 3;
    pub const WRITE: i32 = 4;
    pub const READ: i32 = 5;
    pub const LIST_DEPRECATED: i32 = 6;
    pub const EXEC: i32 = 7;
    pub const ROUTE_LIST: i32 = 8;
    pub const STAT_DEPRECATED: i32 = 9;
    pub const NOTIFY: i32 = 10;
    pub const DEL: i32 = 11;
    pub const STAT_COUNT_DEPRECATED: i32 = 12;
    pub const STATUS: i32 = 13;
    pub const READ_RANGE: i32 = 14;
    pub const DEL_RANGE: i32 = 15;
    pub const AUTH: i32 = 16;
    pub const BULK_READ: i32 = 17;
    pub const DEFRAG_DEPRECATED: i32 = 18;
    pub const ITERATOR: i32 = 19;
    pub const INDEXES_UPDATE: i32 = 20;
    pub const INDEXES_INTERNAL: i32 = 21;
    pub const INDEXES_FIND: i32 = 22;
    pub const MONITOR_STAT: i32 = 23;
    pub const UPDATE_IDS: i32 = 24;
    pub const BACKEND_CONTROL: i32 = 25;
    pub const BACKEND_STATUS: i32 = 26;
    pub const SEND: i32 = 27;

    /// Upper-case name as Elliptics prints it in error messages ("Failed to process READ
    /// command"); `None` for numbers outside the table.
    pub fn name(cmd: i32) -> Option<&'static str> {
        Some(match cmd {
            LOOKUP => "LOOKUP",
            REVERSE_LOOKUP => "REVERSE_LOOKUP",
            JOIN => "JOIN",
            WRITE => "WRITE",
            READ => "READ",
            LIST_DEPRECATED => "CHECK",
            EXEC => "EXEC",
            ROUTE_LIST => "ROUTE_LIST",
            STAT_DEPRECATED => "STAT",
            NOTIFY => "NOTIFY",
            DEL => "REMOVE",
            STAT_COUNT_DEPRECATED => "STAT_COUNT",
            STATUS => "STATUS",
            READ_RANGE => "READ_RANGE",
            DEL_RANGE => "DEL_RANGE",
            AUTH => "AUTH",
            BULK_READ => "BULK_READ",
            DEFRAG_DEPRECATED => "DEFRAG",
            ITERATOR => "ITERATOR",
            INDEXES_UPDATE => "INDEXES_UPDATE",
            INDEXES_INTERNAL => "INDEXES_INTERNAL",
            INDEXES_FIND => "INDEXES_FIND",
            MONITOR_STAT => "MONITOR_STAT",
            UPDATE_IDS => "UPDATE_IDS",
            BACKEND_CONTROL => "BACKEND_CONTROL",
            BACKEND_STATUS => "BACKEND_STATUS",
            SEND => "SEND",
            _ => return None,
        })
    }
}

/// `cmd.flags` bits (`DNET_FLAGS_*`, low 32 bits) and command attributes (high 32 bits).
pub mod cmd_flags {
    pub const NEED_ACK: u64 = 1 << 0;
    pub const MORE: u64 = 1 << 1;
    pub const DESTROY: u64 = 1 << 2;
    pub const DIRECT: u64 = 1 << 3;
    pub const NOLOCK: u64 = 1 << 4;
    pub const CHECKSUM: u64 = 1 << 5;
    pub const NOCACHE: u64 = 1 << 6;
    pub const DIRECT_BACKEND: u64 = 1 << 7;
    pub const TRACE_BIT: u64 = 1 << 8;
    pub const REPLY: u64 = 1 << 9;
    pub const ATTR_DROP_NOTIFICATION: u64 = 1 << 32;
    pub const ATTR_BULK_CHECK: u64 = 1 << 32;
    pub const ATTR_SORT: u64 = 1 << 35;
}

/// `io_attr.flags` bits (`DNET_IO_FLAGS_*`).
pub mod io_flags {
    pub const SKIP_SENDING: u32 = 1 << 0;
    pub const APPEND: u32 = 1 << 1;
    pub const PREPARE: u32 = 1 << 4;
    pub const COMMIT: u32 = 1 << 5;
    pub const REMOVED: u32 = 1 << 6;
    pub const OVERWRITE: u32 = 1 << 7;
    pub const NOCSUM: u32 = 1 << 8;
    /// Write: write in place into an uncommitted record. READ_RANGE: counts only (NODATA).
    pub const PLAIN_WRITE: u32 = 1 << 9;
    pub const NODATA: u32 = 1 << 9;
    pub const CACHE: u32 = 1 << 10;
    pub const CACHE_ONLY: u32 = 1 << 11;
    pub const CACHE_REMOVE_FROM_DISK: u32 = 1 << 12;
    pub const COMPARE_AND_SWAP: u32 = 1 << 13;
    /// Read: return sha512 of the data in `parent`. Write: reply with a bare ack.
    pub const CHECKSUM: u32 = 1 << 14;
    pub const WRITE_NO_FILE_INFO: u32 = 1 << 14;
    pub const CAS_TIMESTAMP: u32 = 1 << 15;
    pub const MIX_STATES: u32 = 1 << 16;
    pub const NOCACHE: u32 = 1 << 28;
}

/// Record flags (`DNET_RECORD_FLAGS_*`, identical to eblob's `BLOB_DISK_CTL_*`).
pub mod record_flags {
    pub const REMOVE: u64 = 1 << 0;
    pub const NOCSUM: u64 = 1 << 1;
    pub const COMPRESS: u64 = 1 << 2;
    pub const WRITE_RETURN: u64 = 1 << 3;
    pub const APPEND: u64 = 1 << 4;
    pub const OVERWRITE: u64 = 1 << 5;
    pub const EXTHDR: u64 = 1 << 6;
    pub const UNCOMMITTED: u64 = 1 << 7;
    pub const CHUNKED_CSUM: u64 = 1 << 8;
    /// Our own: the footer is CRC32 per 1 MiB chunk plus a CRC over the chunk CRCs.
    pub const CRC32_CSUM: u64 = 1 << 16;

    /// The flags a client is shown: our own footer kind is reported as eblob's chunked
    /// checksum (both mean "the data has per-chunk checksums"), so the original clients see
    /// the flags the original server reported (0x140 for a plain record). eblob marks a
    /// record written without a checksum chunked too (0x142 for an index table, NOCSUM).
    pub const fn on_wire(flags: u64) -> u64 {
        if flags & (CRC32_CSUM | NOCSUM) != 0 {
            (flags & !CRC32_CSUM) | CHUNKED_CSUM
        } else {
            flags
        }
    }
}

/// The protocol version this implementation presents in the REVERSE_LOOKUP handshake.
/// Peers must agree on major and minor.
pub const PROTOCOL_VERSION: [i32; 4] = [2, 26, 11, 1];
