//! The shard runtime: a single-threaded executor over one io_uring per thread, sockets, files,
//! timers and cross-shard mailboxes.
//!
//! Each shard thread calls [`block_on`] once; it creates the thread's ring (SINGLE_ISSUER +
//! DEFER_TASKRUN + COOP_TASKRUN where the kernel has them) and runs the shard's future plus
//! every task it [`spawn`]s. All I/O of the thread goes through that ring:
//! [`TcpListener`]/[`TcpStream`] for the network, [`UringFile`] for the blob log,
//! [`sleep`]/[`timeout`] for time. Threads talk to each other only through [`mailbox`].
//!
//! Cancellation is dropping: a dropped future's in-flight operation is cancelled in the
//! kernel, and its buffers and fds stay owned by the runtime until the kernel reports the
//! operation finished. This module does not know the Elliptics protocol.

mod direct;
mod executor;
mod file;
pub mod mailbox;
mod net;
mod op;
mod probe;
mod reactor;
mod socket;
pub mod sync;
mod time;
mod unix;

pub use executor::{block_on, run_or_spawn, spawn, JoinHandle};
pub use file::UringFile;
pub use net::{TcpListener, TcpStream};
pub use probe::probe;
pub use socket::tcp_port_has_no_listener;
pub use time::{sleep, timeout, Elapsed};
pub use unix::{UnixListener, UnixStream};

use std::io;

/// Why a runtime could not be set up or stopped running.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// io_uring cannot be used in this process; the message says why in words.
    #[error("io_uring is unavailable: {reason}")]
    Unavailable {
        /// What is wrong and what to change.
        reason: String,
        /// The error from `io_uring_setup`.
        #[source]
        source: io::Error,
    },
    /// `block_on` was called on a thread that already runs a runtime.
    #[error("a runtime is already running on this thread")]
    Nested,
    /// The ring failed while running.
    #[error("io_uring failed: {0}")]
    Io(#[source] io::Error),
}

impl RuntimeError {
    /// Classify an `io_uring_setup` failure.
    pub(crate) fn from_setup(source: io::Error) -> Self {
        let reason = match source.raw_os_error() {
            Some(libc::ENOSYS) => {
                "the kernel has no io_uring support (ENOSYS); a Linux 6.1 or newer kernel built \
                 with CONFIG_IO_URING is needed"
                    .to_string()
            }
            Some(libc::EPERM) => "io_uring is forbidden for this process (EPERM): a seccomp or \
                 container policy blocks io_uring_setup, or the sysctl \
                 kernel.io_uring_disabled is set (0 allows io_uring for everyone, 1 only for \
                 the group in kernel.io_uring_group)"
                .to_string(),
            Some(libc::ENOMEM) => "the ring could not be allocated (ENOMEM): the locked-memory \
                 limit (ulimit -l, RLIMIT_MEMLOCK / LimitMEMLOCK=) is too low for the ring size"
                .to_string(),
            Some(libc::EINVAL) => {
                "the kernel rejected the ring parameters (EINVAL): the ring size may be out of \
                 range (1..=32768 entries) or the kernel is too old"
                    .to_string()
            }
            Some(libc::EMFILE | libc::ENFILE) => {
                "no file descriptor is left for the ring (EMFILE/ENFILE)".to_string()
            }
            _ => format!("io_uring_setup failed: {source}"),
        };
        RuntimeError::Unavailable { reason, source }
    }
}
