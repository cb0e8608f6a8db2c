//! The Rust client: [`Node`] (connections, handshake, route table, timeouts, stall
//! handling, reconnects) and [`Session`] (the Elliptics session API), with results that can
//! be waited on from plain threads or awaited from any async runtime.
//!
//! The client owns its network threads: one blocking reader thread per connection, one
//! checker thread and one reconnect thread per `Node`. It never touches the node's
//! io_uring runtime.
//!
//! ```no_run
//! use elliptics::client::{ClientConfig, Key, Node, Session};
//! let node = Node::new(ClientConfig::default());
//! node.add_remotes(&["127.0.0.1:1025:2"]).expect("connect");
//! let mut s = Session::new(&node);
//! s.set_groups(&[1]);
//! s.write_data(&Key::from("key"), b"data", 0).wait().expect("write");
//! let entries = s.read_data(&Key::from("key"), 0, 0).wait().expect("read");
//! ```

mod checker;
mod chunked;
pub mod civil;
mod conn;
pub(crate) use conn::Replies;
mod entry;
mod error;
mod files;
mod find;
mod handshake;
mod index_find;
mod indexes;
mod node;
mod ops;
mod reader;
mod result;
mod routes;
mod service;
mod session;
mod wire;

pub use crate::protocol::sph_flags;
pub use conn::ReplySink;
pub use entry::{check, Entry, ExecPacket, Key, LookupInfo, NodeStatus, ReadData, Results};
pub use error::ClientError;
pub use files::{file_sink, writer_sink, SinkFactory};
pub use find::FindEntry;
pub use handshake::{parse_remote, reverse_lookup_request};
pub use indexes::{FoundIndexes, IndexEntry};
pub use node::{ClientConfig, Node, REPLY_BUFFERED_BYTES_MAX_DEFAULT};
pub use reader::SINK_PIECE_BYTES;
pub use result::{join_all, pending, AsyncResult, Completer};
pub use service::{backend_command, BackendStatus, MONITOR_JSON_BYTES_MAX};
pub use session::Session;
