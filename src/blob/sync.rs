//! Single-threaded async coordination for the log: a broadcast [`Event`], per-key write
//! locks ([`KeyLocks`]) and the group-commit bookkeeping ([`GroupCommit`]).
//!
//! Everything here is used by one thread from many tasks, so it is built on `Cell` and
//! `RefCell`; no borrow is held across an `.await`.

use super::key_hash::KeyHasher;
use crate::key::RawId;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A broadcast event: `wait(seen)` resolves once `notify` ran after generation `seen`.
#[derive(Debug, Default)]
pub struct Event {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Event {
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    pub fn notify(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Resolve when the generation differs from `seen`.
    pub fn wait(&self, seen: u64) -> EventWait<'_> {
        EventWait { event: self, seen }
    }
}

/// Future of [`Event::wait`].
#[derive(Debug)]
pub struct EventWait<'a> {
    event: &'a Event,
    seen: u64,
}

impl Future for EventWait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.event.generation.get() != self.seen {
            return Poll::Ready(());
        }
        self.event.waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

/// Per-key exclusive locks for writers and removers.
#[derive(Debug, Default)]
pub struct KeyLocks {
    /// Per held key: `EXCLUSIVE` for a writer, else the number of readers.
    held: RefCell<HashMap<RawId, i32, KeyHasher>>,
    released: Event,
}

/// Marks a key held by a writer in [`KeyLocks`].
const EXCLUSIVE: i32 = -1;

impl KeyLocks {
    /// Nobody holds `key` now.
    pub fn is_free(&self, key: &RawId) -> bool {
        let held = self.held.borrow();
        held.is_empty() || !held.contains_key(key)
    }

    /// A writer holds `key` now.
    pub fn held_exclusive(&self, key: &RawId) -> bool {
        let held = self.held.borrow();
        !held.is_empty() && held.get(key) == Some(&EXCLUSIVE)
    }

    /// Wait until `key` is free, then hold it alone until the guard drops (writers, removes).
    pub async fn lock(&self, key: RawId) -> KeyGuard<'_> {
        loop {
            let seen = self.released.generation();
            {
                let mut held = self.held.borrow_mut();
                if let std::collections::hash_map::Entry::Vacant(e) = held.entry(key) {
                    e.insert(EXCLUSIVE);
                    return KeyGuard {
                        locks: self,
                        key,
                        shared: false,
                    };
                }
            }
            self.released.wait(seen).await;
        }
    }

    /// Wait until no writer holds `key`, then share it with other readers until the guard
    /// drops: a read never sees a record that an in-place overwrite is halfway through.
    pub async fn lock_shared(&self, key: RawId) -> KeyGuard<'_> {
        loop {
            let seen = self.released.generation();
            {
                let mut held = self.held.borrow_mut();
                let readers = held.entry(key).or_insert(0);
                if *readers != EXCLUSIVE {
                    *readers = readers.saturating_add(1);
                    return KeyGuard {
                        locks: self,
                        key,
                        shared: true,
                    };
                }
            }
            self.released.wait(seen).await;
        }
    }
}

/// Holds one key of [`KeyLocks`], alone or shared.
#[derive(Debug)]
pub struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: RawId,
    shared: bool,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.held.borrow_mut();
        // One lookup in the common case; a reader that is not the last puts the rest back.
        let last = match held.remove(&self.key) {
            Some(readers) if self.shared && readers > 1 => {
                held.insert(self.key, readers - 1);
                false
            }
            _ => true,
        };
        drop(held);
        if last {
            self.locks.released.notify();
        }
    }
}

/// Group commit state: writes get a sequence number when their bytes are written; one
/// fdatasync round at a time covers every sequence number handed out before it started.
#[derive(Debug, Default)]
pub struct GroupCommit {
    /// Last sequence number handed to a finished write.
    pub written_seq: Cell<u64>,
    /// Every write up to this number is durable.
    pub synced_seq: Cell<u64>,
    /// A sync round is running.
    pub in_flight: Cell<bool>,
    /// A sync failed: refuse writes until reopened.
    pub poisoned: Cell<bool>,
    /// Fired when a round ends.
    pub round_done: Event,
}

impl GroupCommit {
    /// Hand out the next sequence number.
    pub fn next_seq(&self) -> u64 {
        let s = self.written_seq.get() + 1;
        self.written_seq.set(s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use std::rc::Rc;

    #[test]
    fn second_locker_of_a_key_waits_for_the_first() {
        let mut pool = LocalPool::new();
        let locks = Rc::new(KeyLocks::default());
        let order = Rc::new(RefCell::new(Vec::new()));
        let gate = Rc::new(Event::default());
        for i in 0..2 {
            let (locks, order, gate) = (locks.clone(), order.clone(), gate.clone());
            pool.spawner()
                .spawn_local(async move {
                    let _g = locks.lock(RawId::ZERO).await;
                    order.borrow_mut().push(i);
                    if i == 0 {
                        gate.wait(0).await;
                    }
                    order.borrow_mut().push(i + 10);
                })
                .unwrap();
        }
        pool.run_until_stalled();
        assert_eq!(*order.borrow(), vec![0]);
        gate.notify();
        pool.run_until_stalled();
        assert_eq!(*order.borrow(), vec![0, 10, 1, 11]);
    }
}

/// Yield once to the executor: pending on the first poll (waking itself), ready after.
#[derive(Debug, Default)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
