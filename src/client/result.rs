//! Asynchronous results: a one-shot value that a network thread completes and a caller
//! either `.wait()`s for from a plain thread or `.await`s from any async runtime, or hands
//! a continuation to (`on_complete`) so operations can be chained without extra threads.
//!
//! Owns only the hand-over of one value; it knows nothing of the protocol.

use super::error::ClientError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

type Outcome<T> = Result<T, ClientError>;
type Callback<T> = Box<dyn FnOnce(Outcome<T>) + Send>;

struct State<T> {
    value: Option<Outcome<T>>,
    waker: Option<Waker>,
    callback: Option<Callback<T>>,
    completed: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A poisoned lock only means another thread panicked while holding it; the state
        // itself (an Option) is always consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The receiving half: wait, await, or attach a continuation.
pub struct AsyncResult<T> {
    shared: Arc<Shared<T>>,
}

/// The sending half, held by whoever produces the value. Dropping it without completing
/// completes the result with -ECONNRESET so no waiter hangs.
pub struct Completer<T> {
    shared: Option<Arc<Shared<T>>>,
}

impl<T> std::fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for Completer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completer").finish_non_exhaustive()
    }
}

/// A new pending result and the completer that fills it.
pub fn pending<T: Send + 'static>() -> (Completer<T>, AsyncResult<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            value: None,
            waker: None,
            callback: None,
            completed: false,
        }),
        ready: Condvar::new(),
    });
    (
        Completer {
            shared: Some(shared.clone()),
        },
        AsyncResult { shared },
    )
}

impl<T: Send + 'static> Completer<T> {
    /// Deliver the value. The first completion wins; later ones are ignored.
    pub fn complete(mut self, value: Outcome<T>) {
        if let Some(shared) = self.shared.take() {
            deliver(&shared, value);
        }
    }
}

fn deliver<T>(shared: &Shared<T>, value: Outcome<T>) {
    let mut state = shared.lock();
    if state.completed {
        return;
    }
    state.completed = true;
    if let Some(callback) = state.callback.take() {
        drop(state);
        callback(value);
        return;
    }
    state.value = Some(value);
    let waker = state.waker.take();
    drop(state);
    shared.ready.notify_all();
    if let Some(w) = waker {
        w.wake();
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            deliver(
                &shared,
                Err(ClientError::new(
                    crate::protocol::errno::ECONNRESET,
                    format!(
                        "request abandoned: Connection reset by peer: {}",
                        crate::protocol::errno::ECONNRESET
                    ),
                )),
            );
        }
    }
}

impl<T: Send + 'static> AsyncResult<T> {
    /// An already-completed result.
    pub fn ready(value: Outcome<T>) -> AsyncResult<T> {
        let (c, r) = pending();
        c.complete(value);
        r
    }

    /// Block the calling thread until the value arrives.
    pub fn wait(self) -> Outcome<T> {
        let mut state = self.shared.lock();
        loop {
            if let Some(v) = state.value.take() {
                return v;
            }
            state = self
                .shared
                .ready
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Run `f` with the value when it arrives (at once if it already has). `f` runs on the
    /// completing thread, which may be a connection's reader thread: keep it short.
    pub fn on_complete(self, f: impl FnOnce(Outcome<T>) + Send + 'static) {
        let mut state = self.shared.lock();
        if let Some(v) = state.value.take() {
            drop(state);
            f(v);
            return;
        }
        state.callback = Some(Box::new(f));
    }

    /// A result holding `f(value)`.
    pub fn map<U: Send + 'static>(
        self,
        f: impl FnOnce(Outcome<T>) -> Outcome<U> + Send + 'static,
    ) -> AsyncResult<U> {
        let (c, r) = pending();
        self.on_complete(move |v| c.complete(f(v)));
        r
    }
}

impl<T: Send + 'static> Future for AsyncResult<T> {
    type Output = Outcome<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<T>> {
        let mut state = self.shared.lock();
        if let Some(v) = state.value.take() {
            return Poll::Ready(v);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Wait for all results; the output keeps the input order.
pub fn join_all<T: Send + 'static>(results: Vec<AsyncResult<T>>) -> AsyncResult<Vec<Outcome<T>>> {
    let (c, r) = pending();
    let total = results.len();
    if total == 0 {
        c.complete(Ok(Vec::new()));
        return r;
    }
    struct Gather<T> {
        slots: Vec<Option<Outcome<T>>>,
        left: usize,
        completer: Option<Completer<Vec<Outcome<T>>>>,
    }
    let gather = Arc::new(Mutex::new(Gather {
        slots: (0..total).map(|_| None).collect(),
        left: total,
        completer: Some(c),
    }));
    for (index, result) in results.into_iter().enumerate() {
        let gather = gather.clone();
        result.on_complete(move |v| {
            let mut g = gather.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = g.slots.get_mut(index) {
                *slot = Some(v);
            }
            g.left = g.left.saturating_sub(1);
            if g.left == 0 {
                let values = std::mem::take(&mut g.slots).into_iter().flatten().collect();
                if let Some(c) = g.completer.take() {
                    drop(g);
                    c.complete(Ok(values));
                }
            }
        });
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_completed_on_another_thread_is_seen_by_wait() {
        let (c, r) = pending::<u32>();
        let t = std::thread::spawn(move || c.complete(Ok(7)));
        assert_eq!(r.wait(), Ok(7));
        t.join().expect("completer thread");
    }

    #[test]
    fn result_can_be_awaited_from_an_executor() {
        let (c, r) = pending::<&'static str>();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            c.complete(Ok("done"));
        });
        assert_eq!(futures::executor::block_on(r), Ok("done"));
    }

    #[test]
    fn dropped_completer_fails_the_waiter_instead_of_hanging() {
        let (c, r) = pending::<u32>();
        drop(c);
        assert_eq!(
            r.wait().map_err(|e| e.status),
            Err(crate::protocol::errno::ECONNRESET)
        );
    }

    #[test]
    fn join_keeps_input_order_regardless_of_completion_order() {
        let (c1, r1) = pending::<u32>();
        let (c2, r2) = pending::<u32>();
        let all = join_all(vec![r1, r2]);
        c2.complete(Ok(2));
        c1.complete(Err(ClientError::from_status(
            crate::protocol::errno::ENOENT,
        )));
        let out = all.wait().expect("join");
        assert_eq!(out.len(), 2);
        assert!(out[0].is_err());
        assert_eq!(out[1], Ok(2));
    }

    #[test]
    fn continuation_attached_after_completion_runs_immediately() {
        let r = AsyncResult::ready(Ok(3u32)).map(|v| v.map(|x| x * 2));
        assert_eq!(r.wait(), Ok(6));
    }
}
