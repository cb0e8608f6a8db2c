//! Elliptics, rebuilt: a distributed hash-table storage node with server-side processing,
//! wire-compatible with Elliptics 2.26, running one single-threaded io_uring shard per core.
//!
//! Architecture map:
//! - [`protocol`]: the 2.26 wire layouts, pure encode/decode.
//! - [`key`]: 64-byte ring ids, sha512 key hashing, namespaces.
//! - [`limits`]: every compiled-in limit.
//! - [`address`], [`config`], [`history`]: how a node is described and where its ring points live.
//! - [`routing`]: route tables and owner lookup; which shard owns a key.
//! - [`io`]: the I/O boundary; [`runtime`]: the per-shard io_uring executor.
//! - [`blob`]: the per-shard blob log (eblob format).
//! - [`node`]: the storage node (`dnet_ioserv`).
//! - [`client`]: the Rust client (`Node`, `Session`).
//! - [`bench`](mod@bench): the 2.26 load generator behind `dnet_bench`.
//! - [`srw`]: server-side processing (apps in the store, worker pools per shard);
//!   [`worker`]: the Rust worker SDK.
//!
//! Glossary: a *frame* is a header plus payload on the wire; a *request* is a decoded
//! command; a *record* is a value on disk; a *shard* is one core's thread with its ring,
//! its share of the key space, its blob logs and its exec queue.

pub mod address;
pub mod bench;
pub mod blob;
pub mod cache;
pub mod client;
pub mod config;
pub mod history;
pub mod io;
pub mod key;
pub mod limits;
pub mod log;
pub mod node;
pub mod protocol;
pub mod recovery;
pub mod routing;
pub mod runtime;
pub mod srw;
pub mod worker;
