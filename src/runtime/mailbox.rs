//! Mailboxes: bounded, lock-free queues from any thread into one runtime, with an eventfd
//! wakeup read on the receiving thread's ring.
//!
//! Wakeups are coalesced: a sender writes the eventfd only when it flips the `notified` flag
//! from false to true, and the receiver clears the flag before its last look at the queue,
//! so a message is never left behind without a wakeup in flight. The eventfd is blocking:
//! io_uring would answer EAGAIN on a non-blocking one instead of waiting.
#![allow(unsafe_code)]

use super::op::Op;
use super::reactor::cqe_result;
use crossbeam_queue::ArrayQueue;
use io_uring::{opcode, types};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

struct Shared<T> {
    queue: ArrayQueue<T>,
    eventfd: Arc<OwnedFd>,
    senders: AtomicUsize,
    notified: AtomicBool,
}

impl<T> Shared<T> {
    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own. A failure can only be
        // EAGAIN (counter saturated), which still leaves the eventfd readable.
        let _ = unsafe { libc::write(self.eventfd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// The sending side; cheap to clone, usable from any thread.
pub struct Sender<T: Send> {
    shared: Arc<Shared<T>>,
}

/// The receiving side; used on the thread whose runtime awaits [`Receiver::recv`].
pub struct Receiver<T: Send> {
    shared: Arc<Shared<T>>,
}

impl<T: Send> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mailbox::Sender")
            .field("len", &self.shared.queue.len())
            .finish()
    }
}

impl<T: Send> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mailbox::Receiver")
            .field("len", &self.shared.queue.len())
            .finish()
    }
}

/// A mailbox holding at most `capacity` messages (at least 1).
///
/// # Panics
/// When the process has no file descriptor left for the eventfd.
pub fn channel<T: Send>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    try_channel(capacity).expect("eventfd for a mailbox")
}

/// Like [`channel`], reporting an eventfd failure instead of panicking.
pub fn try_channel<T: Send>(capacity: usize) -> io::Result<(Sender<T>, Receiver<T>)> {
    // SAFETY: plain eventfd(2) call.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd(2) and is owned by nobody else.
    let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let shared = Arc::new(Shared {
        queue: ArrayQueue::new(capacity.max(1)),
        eventfd: Arc::new(eventfd),
        senders: AtomicUsize::new(1),
        notified: AtomicBool::new(false),
    });
    Ok((
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    ))
}

impl<T: Send> Sender<T> {
    /// Queue `v` without blocking; gives it back when the mailbox is full.
    pub fn try_send(&self, v: T) -> Result<(), T> {
        self.shared.queue.push(v)?;
        if !self.shared.notified.swap(true, Ordering::SeqCst) {
            self.shared.signal();
        }
        Ok(())
    }
}

impl<T: Send> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Send> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.notified.store(true, Ordering::SeqCst);
            self.shared.signal();
        }
    }
}

impl<T: Send> Receiver<T> {
    /// Take a message if one is queued.
    pub fn try_recv(&self) -> Option<T> {
        self.shared.queue.pop()
    }

    /// Wait for the next message; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&self) -> Option<T> {
        loop {
            if let Some(v) = self.shared.queue.pop() {
                return Some(v);
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return self.shared.queue.pop();
            }
            self.shared.notified.store(false, Ordering::SeqCst);
            if let Some(v) = self.shared.queue.pop() {
                return Some(v);
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                continue;
            }
            if let Err(e) = self.wait_eventfd().await {
                tracing::warn!(error = %e, "mailbox eventfd read failed");
                // Fall back to yielding so the loop keeps making progress.
                super::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }

    async fn wait_eventfd(&self) -> io::Result<()> {
        let mut counter = Box::new(0u64);
        let ptr: *mut u64 = &mut *counter;
        let entry =
            opcode::Read::new(types::Fd(self.shared.eventfd.as_raw_fd()), ptr.cast(), 8).build();
        // SAFETY: the entry points at the boxed counter; the op owns it and keeps the eventfd
        // open (through its `Arc`) until the CQE arrives.
        let op = unsafe { Op::submit(entry, (counter, Arc::clone(&self.shared.eventfd))) }
            .map_err(|(e, _)| e)?;
        let (result, _) = op.await;
        match cqe_result(result) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other.map(drop),
        }
    }
}
