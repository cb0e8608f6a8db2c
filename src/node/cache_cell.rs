//! One shard's cache of one backend ([`CacheCell`]): the cache itself and the waker of its
//! write-back loop. The state only; serving requests from it is `cache_io`, writing dirty
//! entries back is `cache_sync`.

use crate::cache::ShardCache;
use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};

/// One shard's cache of one backend, with the waker of its write-back loop.
#[derive(Debug)]
pub struct CacheCell {
    pub cache: RefCell<ShardCache>,
    woken: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl CacheCell {
    pub fn new(cache: ShardCache) -> Self {
        Self {
            cache: RefCell::new(cache),
            woken: Cell::new(false),
            waker: RefCell::new(None),
        }
    }

    /// Wake the write-back loop when entries were evicted dirty.
    pub(super) fn kick_if_evicted(&self) {
        let evicted = self.cache.try_borrow().is_ok_and(|c| c.has_evicted_dirty());
        if evicted {
            self.woken.set(true);
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    pub(super) async fn woken(&self) {
        std::future::poll_fn(|cx| {
            if self.woken.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}
