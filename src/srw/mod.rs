//! Server-side processing (srw): apps stored in the storage itself, unpacked into a spool
//! directory, run as worker processes speaking the Cocaine worker protocol v1 over unix
//! sockets, fed by `app@event` EXEC commands.
//!
//! Ownership: each shard owns a [`ShardSrw`]: its exec queues and its share of each app's
//! worker pool ([`pool::AppPool`]), plus the table of blocked jobs waiting for REPLY/FINISH
//! packets. The node glue (`node::exec`) parses EXEC, routes a keyed event to the shard that
//! owns the key, and fans node-wide events (start-task, stop-task, info) out to every
//! shard. Layouts: [`frame`] (worker wire), [`store`] (records in the store), [`spool`]
//! (packages on disk). Design decision: worker response chunks are forwarded verbatim (v1
//! frameworks do not msgpack-wrap them), unlike 2015 srw which unpacked 0.11-era chunks.

pub mod chan;
mod flat;
pub mod frame;
pub mod info;
mod lifecycle;
pub mod output;
pub mod pool;
mod pool_frames;
pub mod process;
pub mod spool;
pub mod store;
pub mod task;
mod worker_conn;

use crate::config::SrwConfig;
use pool::{AppPool, PreparedApp, Reply};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

/// Errors of app management and the worker engine.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SrwError {
    #[error("bad name {0:?}: use a non-empty name without '@', '/', spaces or a leading dot")]
    BadName(String),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("bad manifest: {0}")]
    Manifest(String),
    #[error("bad profile: {0}")]
    Profile(String),
    #[error("bad package: {0}")]
    Package(String),
    #[error("bad {what} in the store: {problem}")]
    Record { what: &'static str, problem: String },
    #[error("{0}")]
    Io(String),
    #[error("cannot start worker {0}")]
    Spawn(String),
}

/// The srw state of one shard.
#[derive(Debug)]
pub struct ShardSrw {
    pub spool: PathBuf,
    pub runtime: PathBuf,
    pub shard: usize,
    pub shard_count: usize,
    apps: RefCell<HashMap<String, Rc<AppPool>>>,
    jobs: RefCell<HashMap<i32, chan::Sender<Reply>>>,
    next_job: Cell<i32>,
}

impl ShardSrw {
    /// The srw state for `shard`, with the spool and runtime directories of `config`
    /// (created when missing, and made absolute: a worker runs in its app's spool
    /// directory, so a relative slave path or socket path would not resolve there).
    pub fn new(config: &SrwConfig, shard: usize, shard_count: usize) -> Result<ShardSrw, SrwError> {
        let mut dirs = Vec::with_capacity(2);
        for dir in [&config.spool, &config.runtime] {
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::canonicalize(dir))
                .map(|abs| dirs.push(abs))
                .map_err(|e| SrwError::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        let [spool, runtime] = <[PathBuf; 2]>::try_from(dirs)
            .map_err(|_| SrwError::Io("spool and runtime directories".to_string()))?;
        Ok(ShardSrw {
            spool,
            runtime,
            shard,
            shard_count: shard_count.max(1),
            apps: RefCell::new(HashMap::new()),
            jobs: RefCell::new(HashMap::new()),
            next_job: Cell::new(0),
        })
    }

    /// The running app `name` on this shard.
    pub fn app(&self, name: &str) -> Option<Rc<AppPool>> {
        self.apps.borrow().get(name).cloned()
    }

    /// Every app running on this shard.
    pub fn apps(&self) -> Vec<Rc<AppPool>> {
        self.apps.borrow().values().cloned().collect()
    }

    /// Start `app` here unless it already runs.
    pub fn start_app(&self, app: PreparedApp) -> Result<(), SrwError> {
        if self.apps.borrow().contains_key(&app.name) {
            return Ok(());
        }
        let name = app.name.clone();
        let pool = AppPool::start(app, &self.runtime, self.shard, self.shard_count)?;
        self.apps.borrow_mut().insert(name, pool);
        Ok(())
    }

    /// Stop `name` here; false when it was not running.
    pub fn stop_app(&self, name: &str) -> bool {
        let pool = self.apps.borrow_mut().remove(name);
        match pool {
            Some(p) => {
                p.stop();
                true
            }
            None => false,
        }
    }

    /// Node shutdown: stop every app, give the workers a moment to exit, kill the rest.
    pub async fn shutdown(&self) {
        let pools: Vec<Rc<AppPool>> = self.apps.borrow_mut().drain().map(|(_, p)| p).collect();
        for p in &pools {
            p.stop();
        }
        for _ in 0..50 {
            if pools.iter().all(|p| p.workers.borrow().is_empty()) {
                break;
            }
            crate::runtime::sleep(std::time::Duration::from_millis(40)).await;
        }
        for p in &pools {
            p.kill_all();
        }
    }

    /// Register a blocked job; its key is unique node-wide (2, 3, … interleaved by shard).
    pub fn register_job(&self, reply: chan::Sender<Reply>) -> i32 {
        let n = self.next_job.get();
        self.next_job.set(n.wrapping_add(1) & 0x00ff_ffff);
        let count = i32::try_from(self.shard_count).unwrap_or(1);
        let shard = i32::try_from(self.shard).unwrap_or(0);
        let key = 2 + n.saturating_mul(count).saturating_add(shard);
        self.jobs.borrow_mut().insert(key, reply);
        key
    }

    pub fn finish_job(&self, key: i32) {
        self.jobs.borrow_mut().remove(&key);
    }

    /// The waiting exec of job `key`.
    pub fn job(&self, key: i32) -> Option<chan::Sender<Reply>> {
        self.jobs.borrow().get(&key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_spool_and_runtime_become_absolute() {
        let base = PathBuf::from(format!("target/srw-relative-{}", std::process::id()));
        let config = SrwConfig {
            spool: base.join("spool"),
            runtime: base.join("ipc"),
            ignored_keys: Vec::new(),
        };
        let srw = ShardSrw::new(&config, 0, 1).expect("srw state");
        assert!(srw.spool.is_absolute() && srw.spool.ends_with("spool"));
        assert!(srw.runtime.is_absolute() && srw.runtime.ends_with("ipc"));
        assert!(srw.spool.is_dir() && srw.runtime.is_dir());
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
