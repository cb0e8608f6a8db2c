//! `start-multiple-task` (spec §7, cocaine-worker §4.2): an app started with a task id sends
//! every event to a **named worker** `<task_id>-<app>-<index>`, where `index` is the
//! caller's `src_key % pool` (or round-robin when `src_key` is -1) and `pool` is the
//! profile's `pool-limit`. The name is the worker's `--uuid`; the worker is spawned on
//! demand the first time an event names it and lives on shard `index % shard_count`, so
//! each name exists once per node.
//!
//! This module owns the naming rule and the round-robin counter; the queueing itself is
//! [`AppPool`](super::pool::AppPool)'s.

use std::cell::Cell;

/// Task id used when `start-multiple-task` carries no data.
pub const DEFAULT_TASK_ID: &str = "default";

/// The named-worker rule of one app on one shard.
#[derive(Debug)]
pub struct MultipleTask {
    pub task_id: String,
    /// Number of named workers (`pool-limit`), at least 1.
    pub pool_size: usize,
    next_index: Cell<u64>,
}

/// Where one event goes: the worker's name and its index in the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedWorker {
    pub name: String,
    pub index: usize,
}

impl MultipleTask {
    /// The rule for task id `data` (empty gives [`DEFAULT_TASK_ID`]) and `pool_limit`.
    pub fn new(data: &[u8], pool_limit: usize) -> MultipleTask {
        let task_id = if data.is_empty() {
            DEFAULT_TASK_ID.to_string()
        } else {
            String::from_utf8_lossy(data).into_owned()
        };
        MultipleTask {
            task_id,
            pool_size: pool_limit.max(1),
            next_index: Cell::new(0),
        }
    }

    /// The worker of `app` that serves an event whose caller sent `src_key`.
    pub fn worker_for(&self, app: &str, src_key: i32) -> NamedWorker {
        let pool = u64::try_from(self.pool_size).unwrap_or(1).max(1);
        let index = if src_key == -1 {
            let n = self.next_index.get();
            self.next_index.set(n.wrapping_add(1));
            n % pool
        } else {
            u64::from(src_key.unsigned_abs()) % pool
        };
        let index = usize::try_from(index).unwrap_or(0);
        NamedWorker {
            name: format!("{}-{app}-{index}", self.task_id),
            index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn src_key_picks_the_worker_modulo_the_pool() {
        let t = MultipleTask::new(b"job7", 3);
        assert_eq!(t.worker_for("app", 4).name, "job7-app-1");
        assert_eq!(t.worker_for("app", 4).index, 1);
        assert_eq!(t.worker_for("app", 0).name, "job7-app-0");
        assert_eq!(t.worker_for("app", 5).name, "job7-app-2");
    }

    #[test]
    fn src_key_minus_one_goes_round_robin() {
        let t = MultipleTask::new(b"", 2);
        let names: Vec<String> = (0..5).map(|_| t.worker_for("a", -1).name).collect();
        assert_eq!(
            names,
            [
                "default-a-0",
                "default-a-1",
                "default-a-0",
                "default-a-1",
                "default-a-0"
            ]
        );
    }

    #[test]
    fn zero_pool_limit_still_names_one_worker() {
        let t = MultipleTask::new(b"t", 0);
        assert_eq!(t.worker_for("a", 9).name, "t-a-0");
    }
}
