//! The load generator behind `dnet_bench`: it speaks the Elliptics 2.26 protocol to any
//! 2.26 node and measures request rate, latency percentiles and errors by errno.
//!
//! This module owns the benchmark configuration ([`BenchConfig`]), the run ([`run`]) and
//! its result ([`Report`]). One thread drives every connection with non-blocking sockets
//! (mio/epoll), closed loop: each connection keeps `pipeline` requests in flight, and a
//! slot sends its next request as soon as the previous one completes. Request frames are
//! encoded once per operation and only their key, group and transaction bytes are patched
//! per request, so the request path does not allocate.
//!
//! Routing is the client's: the REVERSE_LOOKUP handshake (version 2.26.11.1) gives each
//! node's ring points per group; a request goes to the owner of its key in the group.
//! WRITE, DEL and EXEC go to every group (as `write_data`/`remove` do) and complete when
//! every group answered; READ and LOOKUP go to one group, rotating over the groups.

mod driver;
mod frames;
mod handshake;
mod hist;
mod interval;
mod keys;
mod report;

pub use driver::run;
pub use frames::RequestTemplates;
pub use handshake::{handshake, NodeInfo};
pub use hist::Histogram;
pub use interval::{IntervalLine, IntervalLog, Ledger};
pub use keys::{KeyDistribution, KeySpace, Mix, Rng, KEYSPACE_MAX};
pub use report::{OpReport, Report};

use std::net::SocketAddr;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A parameter is out of range or malformed.
    #[error("bad benchmark parameter: {0}")]
    Config(String),
    /// Connecting or the handshake failed.
    #[error("{addr}: {why}")]
    Connect { addr: SocketAddr, why: String },
    /// The node's handshake reply broke the protocol.
    #[error("{addr}: handshake failed: {why}")]
    Handshake { addr: SocketAddr, why: String },
    /// The event loop itself failed.
    #[error("event loop: {0}")]
    Io(#[from] std::io::Error),
    /// No group in the session has a node owning any key.
    #[error("no route to group {group}: no connected node has a backend in it")]
    NoRoute { group: u32 },
}

/// One benchmark operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Write,
    Read,
    Lookup,
    Remove,
    Exec,
}

impl Op {
    /// Every operation, in index order.
    pub const ALL: [Op; 5] = [Op::Write, Op::Read, Op::Lookup, Op::Remove, Op::Exec];

    /// Position in [`Op::ALL`].
    pub fn index(self) -> usize {
        match self {
            Op::Write => 0,
            Op::Read => 1,
            Op::Lookup => 2,
            Op::Remove => 3,
            Op::Exec => 4,
        }
    }

    /// Lower-case name as the CLI and the report spell it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Read => "read",
            Op::Lookup => "lookup",
            Op::Remove => "remove",
            Op::Exec => "exec",
        }
    }

    /// Parse a name ("del" is accepted for remove).
    pub fn parse(text: &str) -> Result<Op, BenchError> {
        Ok(match text {
            "write" | "set" => Op::Write,
            "read" | "get" => Op::Read,
            "lookup" => Op::Lookup,
            "remove" | "del" => Op::Remove,
            "exec" => Op::Exec,
            other => {
                return Err(BenchError::Config(format!(
                    "unknown operation '{other}' (write, read, lookup, remove, exec)"
                )))
            }
        })
    }

    /// Whether the request goes to every session group.
    pub fn to_all_groups(self) -> bool {
        matches!(self, Op::Write | Op::Remove | Op::Exec)
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Nodes to connect to (each is handshaken; its ring points route keys).
    pub remotes: Vec<SocketAddr>,
    /// Session groups.
    pub groups: Vec<u32>,
    pub mix: Mix,
    /// Value size of WRITE and payload size of EXEC.
    pub value_size_bytes: usize,
    /// When above `value_size_bytes`: WRITEs pick among log-spaced sizes up to this.
    pub value_size_max_bytes: usize,
    pub keyspace: u64,
    pub key_prefix: String,
    pub distribution: KeyDistribution,
    /// Connections per node.
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Measured time (ignored when `requests` is set, except as a hard cap).
    pub duration_ms: u64,
    /// Stop after this many measured operations.
    pub requests: Option<u64>,
    /// Unmeasured time before the measurement starts.
    pub warmup_ms: u64,
    /// Write every key once (pipelined, unmeasured) before the warm-up.
    pub fill: bool,
    /// `app@event` of the exec operation.
    pub exec_event: String,
    /// `io_attr.flags` of WRITE/READ/DEL.
    pub io_flags: u32,
    pub seed: u64,
    pub connect_timeout_ms: u64,
    /// A server process whose CPU time is sampled over the measured window (and whose
    /// resident memory each interval reports).
    pub server_pid: Option<u32>,
    /// Print one [`IntervalLine`] (JSON) per this many milliseconds of the measurement.
    pub interval_ms: Option<u64>,
    /// The server's data directory, whose bytes and files each interval reports.
    pub server_data_dir: Option<std::path::PathBuf>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            remotes: Vec::new(),
            groups: vec![1],
            mix: Mix::only(Op::Write),
            value_size_bytes: 100,
            value_size_max_bytes: 0,
            keyspace: 100_000,
            key_prefix: "bench-key-".into(),
            distribution: KeyDistribution::Uniform,
            connections: 50,
            pipeline: 1,
            duration_ms: 5_000,
            requests: None,
            warmup_ms: 500,
            fill: false,
            exec_event: "bench@echo".into(),
            io_flags: 0,
            seed: 1,
            connect_timeout_ms: 5_000,
            server_pid: None,
            interval_ms: None,
            server_data_dir: None,
        }
    }
}
