//! The executor: this thread's local tasks, their run queue, wakers, and the loop that
//! alternates between running tasks and turning the reactor.
//!
//! Tasks are `!Send` futures kept in a slab. A waker is a plain token (slab index plus a
//! generation taken from a process-wide counter); it holds no pointer, so a stale or even a
//! foreign-thread wake can at worst be ignored, never touch freed memory. Wakeups from other
//! threads must go through a mailbox (eventfd), not through these wakers.
#![allow(unsafe_code)]

use super::reactor;
use super::RuntimeError;
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

const _: () = assert!(
    usize::BITS == 64,
    "task tokens pack index and generation in 64 bits"
);

/// Token of the future passed to `block_on`.
const MAIN_TOKEN: usize = 0;
/// How many tasks run before the reactor is turned again (fairness against I/O).
const TASKS_PER_TURN: usize = 256;

static NEXT_GENERATION: AtomicU32 = AtomicU32::new(1);

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

struct TaskSlot {
    generation: u32,
    /// `None` while the task is being polled.
    future: Option<LocalFuture>,
    queued: bool,
    aborted: bool,
}

struct Executor {
    active: Cell<bool>,
    tasks: RefCell<Slab<TaskSlot>>,
    run_queue: RefCell<VecDeque<usize>>,
    main_woken: Cell<bool>,
}

thread_local! {
    static EXECUTOR: Executor = const {
        Executor {
            active: Cell::new(false),
            tasks: RefCell::new(Slab::new()),
            run_queue: RefCell::new(VecDeque::new()),
            main_woken: Cell::new(false),
        }
    };
}

fn token(index: usize, generation: u32) -> usize {
    ((generation as usize) << 32) | (index + 1)
}

fn split(token: usize) -> (usize, u32) {
    ((token & 0xffff_ffff).wrapping_sub(1), (token >> 32) as u32)
}

fn schedule(token: usize) {
    let _ = EXECUTOR.try_with(|ex| {
        if token == MAIN_TOKEN {
            ex.main_woken.set(true);
            return;
        }
        let (index, generation) = split(token);
        let Ok(mut tasks) = ex.tasks.try_borrow_mut() else {
            // Cannot check for a duplicate now; a duplicate entry only costs a spurious poll.
            ex.run_queue.borrow_mut().push_back(token);
            return;
        };
        if let Some(slot) = tasks.get_mut(index) {
            if slot.generation == generation && !slot.queued {
                slot.queued = true;
                ex.run_queue.borrow_mut().push_back(token);
            }
        }
    });
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_raw, drop_raw);

fn clone_raw(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}
fn wake_raw(data: *const ()) {
    schedule(data as usize);
}
fn drop_raw(_: *const ()) {}

fn waker_for(token: usize) -> Waker {
    // SAFETY: the data pointer is never dereferenced; it carries an integer token, and every
    // vtable function is trivially thread-safe (clone copies, drop does nothing, wake looks
    // the token up in the calling thread's executor and ignores it if unknown).
    unsafe { Waker::from_raw(RawWaker::new(token as *const (), &VTABLE)) }
}

/// Handle to a spawned task. Dropping it detaches the task; [`JoinHandle::abort`] drops the
/// task's future at the next opportunity.
#[derive(Debug)]
pub struct JoinHandle {
    token: usize,
}

impl JoinHandle {
    /// Cancel the task: its future is dropped now (or right after its current poll).
    pub fn abort(&self) {
        let (index, generation) = split(self.token);
        let removed = EXECUTOR.try_with(|ex| {
            let mut tasks = ex.tasks.try_borrow_mut().ok()?;
            let slot = tasks.get_mut(index)?;
            if slot.generation != generation {
                return None;
            }
            slot.aborted = true;
            // A task being polled has no future in its slot; it is dropped after the poll.
            let future = slot.future.take()?;
            tasks.remove(index);
            Some(future)
        });
        // Dropped here, outside the borrow: the drop may cancel I/O or spawn.
        drop(removed);
    }

    /// Whether the task has completed or been aborted.
    pub fn is_finished(&self) -> bool {
        let (index, generation) = split(self.token);
        EXECUTOR
            .try_with(|ex| match ex.tasks.borrow().get(index) {
                Some(slot) => slot.generation != generation || slot.aborted,
                None => true,
            })
            .unwrap_or(true)
    }
}

/// Spawn a `!Send` future on this thread's runtime. It runs until it completes, is aborted,
/// or the runtime's `block_on` returns.
///
/// # Panics
/// When no runtime is running on this thread.
pub fn spawn<F: Future<Output = ()> + 'static>(fut: F) -> JoinHandle {
    spawn_boxed(Box::pin(fut))
}

/// Poll `fut` once right here, inside the caller's poll; when it is not done yet, spawn it
/// (queued, so its next poll comes soon and registers the task's own waker: futures keep
/// only the waker of their latest poll). A request that completes at once (a page-cache
/// read, a buffered write) so never enters the task slab or the run queue.
///
/// # Panics
/// When it must spawn and no runtime is running on this thread.
pub fn run_or_spawn<F: Future<Output = ()> + 'static>(fut: F) {
    let mut boxed: LocalFuture = Box::pin(fut);
    let mut cx = Context::from_waker(Waker::noop());
    if boxed.as_mut().poll(&mut cx).is_ready() {
        return;
    }
    spawn_boxed(boxed);
}

fn spawn_boxed(future: LocalFuture) -> JoinHandle {
    EXECUTOR.with(|ex| {
        assert!(
            ex.active.get(),
            "runtime::spawn called outside runtime::block_on"
        );
        let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
        let mut tasks = ex.tasks.borrow_mut();
        let index = tasks.insert(TaskSlot {
            generation,
            future: Some(future),
            queued: true,
            aborted: false,
        });
        let token = token(index, generation);
        ex.run_queue.borrow_mut().push_back(token);
        JoinHandle { token }
    })
}

/// Poll up to `budget` queued tasks once each.
fn run_tasks(ex: &Executor, budget: usize) {
    for _ in 0..budget {
        let Some(token) = ex.run_queue.borrow_mut().pop_front() else {
            return;
        };
        let (index, generation) = split(token);
        let future = {
            let mut tasks = ex.tasks.borrow_mut();
            match tasks.get_mut(index) {
                Some(slot) if slot.generation == generation => {
                    slot.queued = false;
                    slot.future.take()
                }
                _ => None,
            }
        };
        let Some(mut future) = future else { continue };
        let waker = waker_for(token);
        let mut cx = Context::from_waker(&waker);
        let done = future.as_mut().poll(&mut cx).is_ready();
        let leftover = {
            let mut tasks = ex.tasks.borrow_mut();
            let aborted = tasks.get(index).is_some_and(|s| s.aborted);
            if done || aborted {
                tasks.remove(index);
                Some(future)
            } else {
                if let Some(slot) = tasks.get_mut(index) {
                    slot.future = Some(future);
                }
                None
            }
        };
        drop(leftover);
    }
}

/// Drop every remaining task (outside the slab borrow: drops may cancel I/O).
fn drop_all_tasks(ex: &Executor) {
    loop {
        let futures: Vec<LocalFuture> = {
            let mut tasks = ex.tasks.borrow_mut();
            let drained: Vec<LocalFuture> = tasks.drain().filter_map(|s| s.future).collect();
            drained
        };
        if futures.is_empty() {
            break;
        }
        drop(futures);
    }
    ex.run_queue.borrow_mut().clear();
}

struct ActiveGuard;

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        EXECUTOR.with(|ex| {
            drop_all_tasks(ex);
            ex.active.set(false);
        });
        reactor::shutdown();
    }
}

/// Set up this thread's ring (`ring_entries` SQ entries) and executor, run `fut` and every
/// spawned task until `fut` completes. Remaining tasks are dropped at the end, and the ring
/// is torn down only after the kernel has finished with their buffers.
pub fn block_on<F: Future>(ring_entries: u32, fut: F) -> Result<F::Output, RuntimeError> {
    if EXECUTOR.with(|ex| ex.active.get()) || reactor::is_installed() {
        return Err(RuntimeError::Nested);
    }
    reactor::install(ring_entries).map_err(RuntimeError::from_setup)?;
    EXECUTOR.with(|ex| {
        ex.active.set(true);
        ex.main_woken.set(true);
    });
    let _guard = ActiveGuard;
    let mut fut = pin!(fut);
    let main_waker = waker_for(MAIN_TOKEN);
    let mut main_cx = Context::from_waker(&main_waker);
    EXECUTOR.with(|ex| loop {
        if ex.main_woken.replace(false) {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut main_cx) {
                return Ok(out);
            }
        }
        run_tasks(ex, TASKS_PER_TURN);
        let idle = !ex.main_woken.get() && ex.run_queue.borrow().is_empty();
        reactor::turn(idle).map_err(RuntimeError::Io)?;
    })
}
