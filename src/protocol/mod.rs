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
    clippy::cast_possible_truncation
)]

mod consts;
mod error;
mod header;
mod io_attr;
mod reader;
mod writer;

pub use consts::*;
pub use error::DecodeError;
pub use header::{split_frame, CmdHeader, Frame, HEADER_SIZE_BYTES};
pub use io_attr::{DnetTime, IoAttr, IO_ATTR_SIZE_BYTES};
pub use reader::Reader;
pub use writer::Writer;
