//! What the node tests do again and again: read and write one key through a session, start
//! a node with small data files (so that rotation and defragmentation happen within a
//! test), and restart a node until it serves again.

use super::{NodeSpec, TestNode};
use elliptics::client::{Key, Session};
use elliptics::protocol::errno;
use std::time::{Duration, Instant};

/// How long a restarted node may take to listen again.
const RESTART_LISTENING_MS: u64 = 15_000;

/// The value stored under `key`, or the status the read failed with (-ENOENT when the
/// reply carries no value).
pub fn read(s: &Session, key: &str) -> Result<Vec<u8>, i32> {
    let entries = s
        .read_data(&Key::from(key), 0, 0)
        .wait()
        .map_err(|e| e.status)?;
    entries
        .into_iter()
        .find_map(|e| e.payload.map(|p| p.data))
        .ok_or(errno::ENOENT)
}

/// Write `data` under `key`; the status it failed with.
pub fn write(s: &Session, key: &str, data: &[u8]) -> Result<(), i32> {
    s.write_data(&Key::from(key), data, 0)
        .wait()
        .map(|_| ())
        .map_err(|e| e.status)
}

impl NodeSpec {
    /// One backend with data files of `blob_size` (e.g. "64K"), data checksums on, each
    /// write durable before its reply, and `backend_extra` keys (e.g. defrag settings).
    pub fn small_files(blob_size: &str, backend_extra: &[&str]) -> NodeSpec {
        NodeSpec {
            blob_size: blob_size.into(),
            sync_s: 0,
            blob_flags: "0".into(),
            backend_extra: backend_extra.iter().map(|s| s.to_string()).collect(),
            ..NodeSpec::default()
        }
    }
}

impl TestNode {
    /// Restart the node and wait (bounded) for its own "listening" line. A successful TCP
    /// connect proves nothing right after a kill -9: the killed process's listener can
    /// linger while the kernel tears down its io_uring, accept the connect, and then reset
    /// it.
    pub fn restart_until_listening(&mut self) {
        let before = self.log().matches("listening on").count();
        self.restart();
        let deadline = Instant::now() + Duration::from_millis(RESTART_LISTENING_MS);
        while self.log().matches("listening on").count() <= before {
            assert!(self.is_running(), "node exited:\n{}", self.log());
            assert!(Instant::now() < deadline, "not listening:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
