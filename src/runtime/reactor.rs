//! The reactor: this thread's io_uring and the op slab that owns every in-flight operation.
//!
//! Every submitted operation gets a slot in a [`Slab`]; its key is the SQE's `user_data`.
//! The slot lives until the operation's final CQE arrives, whatever happens to the future
//! that submitted it. A future dropped while its operation is in flight hands its buffers
//! and fds to the slot (it becomes an *orphan*) and submits an `AsyncCancel`; the resources
//! are freed only when the target's own CQE arrives, and a result that carries a new fd
//! (accept) is closed then. Completions are drained from the CQ into a queue by
//! [`turn`] and dispatched there, never from inside the submit path; dispatch only records
//! results and wakes tasks, it never polls.
//!
//! This module must not know about sockets or files; it only moves SQEs and CQEs.
#![allow(unsafe_code)]

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use slab::Slab;
use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::task::Waker;
use std::time::{Duration, Instant};

/// `user_data` of the `AsyncCancel` SQEs themselves; their CQEs are ignored.
const CANCEL_USER_DATA: u64 = u64::MAX;
/// io-wq workers one thread's ring may run for file I/O at once.
const IOWQ_BOUNDED_WORKERS_MAX: u32 = 2;
/// How long the end of a runtime waits for orphaned operations before leaking them.
const SHUTDOWN_DRAIN_MS: u64 = 2_000;

/// What a dropped future leaves behind: its resources, and what to do with late results.
struct Orphan {
    _resources: Box<dyn Any>,
    on_result: fn(i32),
}

/// Results delivered but not yet taken by the future.
enum Ready {
    None,
    One(i32, u32),
    Many(VecDeque<(i32, u32)>),
}

pub(super) struct OpSlot {
    pub(super) waker: Option<Waker>,
    ready: Ready,
    /// The final CQE (one without `IORING_CQE_F_MORE`) has arrived.
    pub(super) finished: bool,
    orphan: Option<Orphan>,
}

impl OpSlot {
    fn push_result(&mut self, result: i32, flags: u32) {
        self.ready = match std::mem::replace(&mut self.ready, Ready::None) {
            Ready::None => Ready::One(result, flags),
            Ready::One(r, f) => Ready::Many(VecDeque::from([(r, f), (result, flags)])),
            Ready::Many(mut q) => {
                q.push_back((result, flags));
                Ready::Many(q)
            }
        };
    }

    pub(super) fn pop_result(&mut self) -> Option<(i32, u32)> {
        match std::mem::replace(&mut self.ready, Ready::None) {
            Ready::None => None,
            Ready::One(r, f) => Some((r, f)),
            Ready::Many(mut q) => {
                let first = q.pop_front();
                if !q.is_empty() {
                    self.ready = Ready::Many(q);
                }
                first
            }
        }
    }
}

/// One thread's ring and its op slab.
pub(crate) struct Reactor {
    ring: IoUring,
    pub(super) ops: Slab<OpSlot>,
    /// CQEs copied out of the ring, waiting to be dispatched (capacity kept across turns).
    completed: Vec<(u64, i32, u32)>,
    /// Wakers collected by one turn, called after the reactor is released (capacity kept).
    wakers: Vec<Waker>,
}

thread_local! {
    static REACTOR: RefCell<Option<Reactor>> = const { RefCell::new(None) };
}

fn no_runtime() -> io::Error {
    io::Error::other("no io_uring runtime on this thread (call runtime::block_on first)")
}

/// Build a ring with the single-issuer task-run flags, or without them on older kernels.
pub(crate) fn build_ring(entries: u32) -> io::Result<IoUring> {
    let cq_entries = entries.saturating_mul(4);
    let tuned = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .setup_cqsize(cq_entries)
        .build(entries);
    match tuned {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            IoUring::builder().setup_cqsize(cq_entries).build(entries)
        }
        other => other,
    }
}

/// Install a fresh reactor on this thread. Fails if one is already installed.
pub(crate) fn install(entries: u32) -> io::Result<()> {
    let ring = build_ring(entries)?;
    // Page-cache writes the kernel cannot do without blocking (ext4 appends, a streamed
    // value's pieces) run in this thread's io-wq workers; left unbounded they become one
    // thread per queued write, all competing with the shard threads for the cores. A
    // kernel without the limit keeps its default.
    let mut workers = [IOWQ_BOUNDED_WORKERS_MAX, 0];
    let _ = ring.submitter().register_iowq_max_workers(&mut workers);
    REACTOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a runtime is already running on this thread",
            ));
        }
        *slot = Some(Reactor {
            ring,
            ops: Slab::with_capacity(256),
            completed: Vec::with_capacity(entries as usize),
            wakers: Vec::with_capacity(entries as usize),
        });
        Ok(())
    })
}

/// Whether a reactor is installed on this thread.
pub(crate) fn is_installed() -> bool {
    REACTOR.with(|cell| cell.try_borrow().map(|r| r.is_some()).unwrap_or(true))
}

pub(super) fn with<R>(f: impl FnOnce(&mut Reactor) -> R) -> io::Result<R> {
    REACTOR
        .try_with(|cell| cell.try_borrow_mut().ok()?.as_mut().map(f))
        .ok()
        .flatten()
        .ok_or_else(no_runtime)
}

impl Reactor {
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry pushed here points only at memory owned by an op slot (or
            // by the future that owns the slot and hands it to the slot when dropped), which
            // outlives the operation: the slot is freed only after the final CQE.
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            // The SQ is full: hand it to the kernel now and retry.
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.reap(),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Copy all available CQEs into the completion queue (no dispatch).
    fn reap(&mut self) {
        let completed = &mut self.completed;
        completed.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
    }

    pub(super) fn submit_op(&mut self, entry: squeue::Entry) -> io::Result<usize> {
        let key = self.ops.insert(OpSlot {
            waker: None,
            ready: Ready::None,
            finished: false,
            orphan: None,
        });
        let entry = entry.user_data(key as u64);
        if let Err(e) = self.push(&entry) {
            self.ops.remove(key);
            return Err(e);
        }
        Ok(key)
    }

    /// Record one CQE; collect the waker to call once the reactor is released.
    fn dispatch(&mut self, user_data: u64, result: i32, flags: u32, wake: &mut Vec<Waker>) {
        if user_data == CANCEL_USER_DATA {
            return;
        }
        let key = user_data as usize;
        let Some(slot) = self.ops.get_mut(key) else {
            return;
        };
        let last = !cqueue::more(flags);
        if let Some(orphan) = &slot.orphan {
            (orphan.on_result)(result);
            if last {
                self.ops.remove(key);
            }
            return;
        }
        slot.push_result(result, flags);
        slot.finished |= last;
        if let Some(w) = slot.waker.take() {
            wake.push(w);
        }
    }

    /// The future of `key` is gone: free the slot now if it is finished, else orphan it.
    pub(super) fn abandon(&mut self, key: usize, resources: Box<dyn Any>, on_result: fn(i32)) {
        let Some(slot) = self.ops.get_mut(key) else {
            return;
        };
        while let Some((result, _)) = slot.pop_result() {
            on_result(result);
        }
        if slot.finished {
            self.ops.remove(key);
            return;
        }
        slot.orphan = Some(Orphan {
            _resources: resources,
            on_result,
        });
        slot.waker = None;
        let cancel = opcode::AsyncCancel::new(key as u64)
            .build()
            .user_data(CANCEL_USER_DATA);
        // If even the cancel cannot be queued the op still completes by itself eventually;
        // the orphan keeps its resources until then.
        let _ = self.push(&cancel);
    }
}

/// One loop turn: submit everything queued, wait for at least one completion when `wait`,
/// then drain the CQ and dispatch. Wakers run after the reactor is released.
pub(crate) fn turn(wait: bool) -> io::Result<()> {
    let mut wakers = with(|r| std::mem::take(&mut r.wakers))?;
    let turned = with(|r| -> io::Result<()> {
        let to_submit = r.ring.submission().len() as u32;
        let min_complete = u32::from(wait && r.ring.completion().is_empty());
        // SAFETY: plain io_uring_enter on our own ring; no extra argument is passed.
        let entered = unsafe {
            r.ring.submitter().enter::<libc::sigset_t>(
                to_submit,
                min_complete,
                io_uring::EnterFlags::GETEVENTS.bits(),
                None,
            )
        };
        match entered {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::ETIME)
                ) => {}
            Err(e) => return Err(e),
        }
        r.reap();
        let mut completed = std::mem::take(&mut r.completed);
        for (user_data, result, flags) in completed.drain(..) {
            r.dispatch(user_data, result, flags, &mut wakers);
        }
        r.completed = completed;
        Ok(())
    });
    for w in wakers.drain(..) {
        w.wake();
    }
    let _ = with(|r| r.wakers = wakers);
    turned??;
    Ok(())
}

/// Uninstall this thread's reactor after giving orphaned operations time to complete.
/// Operations that still do not complete are leaked with the ring, never freed early.
pub(crate) fn shutdown() {
    let deadline = Instant::now() + Duration::from_millis(SHUTDOWN_DRAIN_MS);
    loop {
        let pending = with(|r| {
            // Ask the kernel to cancel everything that is still live.
            let live: Vec<usize> = r.ops.iter().map(|(k, _)| k).collect();
            for key in live {
                let cancel = opcode::AsyncCancel::new(key as u64)
                    .build()
                    .user_data(CANCEL_USER_DATA);
                let _ = r.push(&cancel);
            }
            let ts = types::Timespec::from(Duration::from_millis(10));
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = r.ring.submitter().submit_with_args(1, &args);
            r.reap();
            let mut sink = Vec::new();
            let mut completed = std::mem::take(&mut r.completed);
            for (user_data, result, flags) in completed.drain(..) {
                r.dispatch(user_data, result, flags, &mut sink);
            }
            r.ops.len()
        })
        .unwrap_or(0);
        if pending == 0 || Instant::now() >= deadline {
            break;
        }
    }
    let reactor = REACTOR.with(|cell| cell.borrow_mut().take());
    if let Some(r) = reactor {
        if !r.ops.is_empty() {
            tracing::warn!(
                ops = r.ops.len(),
                "io_uring operations still in flight at shutdown"
            );
            // The kernel may still write into these buffers: leak them with the ring.
            std::mem::forget(r);
        }
    }
}

/// Turn a negative CQE result into an `io::Error`.
pub(crate) fn cqe_result(result: i32) -> io::Result<u32> {
    if result < 0 {
        Err(io::Error::from_raw_os_error(-result))
    } else {
        Ok(result.unsigned_abs())
    }
}
