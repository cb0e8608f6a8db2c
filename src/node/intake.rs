//! Memory held for frames still arriving: a connection whose frame is larger than its
//! ordinary read buffer claims the whole frame's bytes from one budget shared by the node's
//! shards before it buffers any of them, and gives them back once the frame is complete (or
//! the connection is gone). A claim that cannot be had waits, without reading, until bytes
//! come free or the connection's stall time runs out; so clients that send the start of
//! large frames and stop hold at most the budget between them, never their announced sizes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a claim waiting for the budget looks again.
const CLAIM_RETRY_MS: u64 = 10;

/// Bytes the node may hold for incomplete large frames, over all of its connections.
#[derive(Debug)]
pub struct FrameBudget {
    used_bytes: AtomicUsize,
    limit_bytes: usize,
}

impl FrameBudget {
    pub fn new(limit_bytes: usize) -> FrameBudget {
        FrameBudget {
            used_bytes: AtomicUsize::new(0),
            limit_bytes,
        }
    }

    /// Bytes claimed now.
    #[cfg(test)]
    fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::Relaxed)
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&t| t <= self.limit_bytes)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One connection's share of the [`FrameBudget`]; given back when dropped.
#[derive(Debug)]
pub struct FrameClaim {
    budget: Arc<FrameBudget>,
    bytes: usize,
}

impl FrameClaim {
    pub fn new(budget: Arc<FrameBudget>) -> FrameClaim {
        FrameClaim { budget, bytes: 0 }
    }

    /// Hold exactly `bytes` from now: less is given back at once; more is taken as soon as
    /// the budget has it, waiting up to `wait`. False when the wait ran out (the claim is
    /// then what it was).
    pub async fn set(&mut self, bytes: usize, wait: Duration) -> bool {
        if bytes <= self.bytes {
            self.budget.give_back(self.bytes - bytes);
            self.bytes = bytes;
            return true;
        }
        let more = bytes - self.bytes;
        let deadline = Instant::now() + wait;
        while !self.budget.try_take(more) {
            if Instant::now() >= deadline {
                return false;
            }
            crate::runtime::sleep(Duration::from_millis(CLAIM_RETRY_MS)).await;
        }
        self.bytes = bytes;
        true
    }

    /// Bytes held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for FrameClaim {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn claims_share_one_budget_and_give_their_bytes_back() {
        let budget = Arc::new(FrameBudget::new(100));
        let mut a = FrameClaim::new(budget.clone());
        let mut b = FrameClaim::new(budget.clone());
        assert_eq!(a.set(60, Duration::ZERO).now_or_never(), Some(true));
        assert_eq!(b.set(60, Duration::ZERO).now_or_never(), Some(false));
        assert_eq!(b.bytes(), 0);
        assert_eq!(b.set(40, Duration::ZERO).now_or_never(), Some(true));
        assert_eq!(budget.used_bytes(), 100);
        assert_eq!(a.set(10, Duration::ZERO).now_or_never(), Some(true));
        assert_eq!(budget.used_bytes(), 50);
        drop(b);
        drop(a);
        assert_eq!(budget.used_bytes(), 0);
    }
}
