//! A shard's own per-key exclusion for the read-modify-write of index tables. A table's
//! key belongs to one shard, so every update of it runs on that shard's thread; the lock
//! only orders the updates that interleave at their awaits there. It is thread-local:
//! nothing is shared with other shards.

use crate::key::RawId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::task::{Poll, Waker};

thread_local! {
    /// Keys held on this shard, with the tasks waiting for each.
    static HELD: RefCell<HashMap<RawId, Vec<Waker>>> = RefCell::new(HashMap::new());
}

/// Held while a table is read, changed and written; released on drop.
#[derive(Debug)]
pub struct KeyGuard {
    id: RawId,
}

/// Wait until no other task of this shard holds `id`, then hold it.
pub async fn lock(id: RawId) -> KeyGuard {
    std::future::poll_fn(|cx| {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            match held.get_mut(&id) {
                Some(waiters) => {
                    waiters.push(cx.waker().clone());
                    Poll::Pending
                }
                None => {
                    held.insert(id, Vec::new());
                    Poll::Ready(KeyGuard { id })
                }
            }
        })
    })
    .await
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let waiters = HELD.with(|held| held.borrow_mut().remove(&self.id));
        // Every waiter tries again; the first to run takes the key.
        for w in waiters.into_iter().flatten() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    #[test]
    fn read_modify_writes_that_yield_in_between_lose_no_update() {
        let count = crate::runtime::block_on(8, async {
            let value = Rc::new(Cell::new(0u32));
            let finished = Rc::new(Cell::new(0u32));
            for _ in 0..8 {
                let (value, finished) = (value.clone(), finished.clone());
                crate::runtime::spawn(async move {
                    let _held = lock(RawId([7; 64])).await;
                    let read = value.get();
                    // A disk read or write in between: other tasks run meanwhile.
                    crate::runtime::sleep(Duration::from_millis(1)).await;
                    value.set(read + 1);
                    finished.set(finished.get() + 1);
                });
            }
            while finished.get() < 8 {
                crate::runtime::sleep(Duration::from_millis(1)).await;
            }
            value.get()
        })
        .expect("runtime");
        assert_eq!(count, 8);
    }
}
