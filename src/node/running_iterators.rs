//! The node's running iterators, by id: each one's state (running, paused, cancelled) in
//! an atomic its producer reads, so that PAUSE / CONTINUE / CANCEL from any connection and
//! shard reach it. Node-wide data below the shards; the iterators themselves are `iterator`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(super) const RUNNING: u32 = 0;
pub(super) const PAUSED: u32 = 1;
pub(super) const CANCELLED: u32 = 2;

/// Running iterators of the node, by id. Touched only by ITERATOR commands.
#[derive(Debug, Default)]
pub struct Registry {
    next_id: AtomicU64,
    states: Mutex<HashMap<u64, Arc<AtomicU32>>>,
}

impl Registry {
    pub(super) fn start(&self) -> (u64, Arc<AtomicU32>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let state = Arc::new(AtomicU32::new(RUNNING));
        self.lock().insert(id, state.clone());
        (id, state)
    }

    pub(super) fn finish(&self, id: u64) {
        self.lock().remove(&id);
    }

    pub(super) fn set(&self, id: u64, state: u32) -> bool {
        self.lock()
            .get(&id)
            .map(|s| s.store(state, Ordering::Relaxed))
            .is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<AtomicU32>>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }
}
