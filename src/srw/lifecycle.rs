//! The supervisor of one shard's share of an app: the profile's timers, workers that fail
//! to start, workers that go away, and stopping.
//!
//! Timers (profile keys, checked every [`SUPERVISOR_TICK`]):
//!
//! | key                   | on expiry                                                     |
//! |-----------------------|---------------------------------------------------------------|
//! | `startup-timeout`     | a worker without a handshake is killed: a failed start (-ETIMEDOUT) |
//! | `heartbeat-timeout`   | terminate(8) and the worker is dropped; its requests get -ECONNRESET |
//! | `idle-timeout`        | terminate(13) to an idle worker while another remains          |
//! | `termination-timeout` | a worker that ignored terminate is killed                      |
//! | `timeout`             | a request not answered in time (queued or sent) gets -ETIMEDOUT |
//!
//! A failed start is a worker that could not be spawned (-ENOEXEC), exited before its
//! handshake (-ENOEXEC) or did not handshake within `startup-timeout` (-ETIMEDOUT). The
//! node logs it at WARN with the exit status and the worker's last output lines. While no
//! worker is active after a failed start, queued events fail with that status and new
//! ones are refused with it at once, instead of waiting for the client's timeout. The next
//! spawn waits [`SPAWN_BACKOFF_FIRST`], doubling per failure up to [`SPAWN_BACKOFF_MAX`];
//! after [`START_FAILURES_MAX`] failures in a row the node gives up (ERROR): the app is
//! `broken` and answers every event with the status until `stop-task` and `start-task`.
//! A handshake resets the count.

use super::frame::{self, terminate_code};
use super::pool::{AppPool, AppState, WORKER_LOST_STATUS};
use super::worker_conn::{WorkerSlot, WorkerState};
use crate::protocol::errno;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How often the supervisor checks timers.
pub const SUPERVISOR_TICK: Duration = Duration::from_millis(200);
/// Back-off before the spawn that follows the first failed start.
pub const SPAWN_BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// Longest back-off between spawns.
pub const SPAWN_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Failed starts in a row after which the app is marked broken.
pub const START_FAILURES_MAX: u32 = 10;

/// The wait before the spawn that follows `failures` failed starts in a row.
pub fn spawn_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    SPAWN_BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(SPAWN_BACKOFF_MAX)
}

impl AppPool {
    /// Worker `uuid` failed to start (`worker` is `None` when the spawn itself failed):
    /// log it, fail what waits for it, back off or give up.
    pub(super) fn start_failed(
        self: &Rc<Self>,
        uuid: &str,
        worker: Option<&Rc<WorkerSlot>>,
        why: &str,
        status: i32,
    ) {
        let failures = self.start_failures.get().saturating_add(1);
        self.start_failures.set(failures);
        let output = match worker {
            Some(w) => {
                let output = w.child().output.tail();
                w.die(status);
                self.workers.borrow_mut().retain(|o| !Rc::ptr_eq(o, w));
                output
            }
            None => String::new(),
        };
        let named = self.task.is_some();
        if !named {
            self.start_failure.set(Some(status));
        }
        let failed = if named {
            self.fail_queued(|j| j.tag.as_deref() == Some(uuid), status)
        } else if !self.has_active_worker() {
            self.fail_queued(|_| true, status)
        } else {
            0
        };
        if failures >= START_FAILURES_MAX {
            self.state.set(AppState::Broken);
            let more = self.fail_queued(|_| true, status);
            tracing::error!(
                app = %self.name, worker = %uuid, status, failed_events = failed + more,
                "worker failed to start: {why}; last output: {output}; giving up after {failures} failed starts in a row: events fail until stop-task and start-task"
            );
            return;
        }
        let backoff = spawn_backoff(failures);
        self.respawn_at.set(Some(Instant::now() + backoff));
        tracing::warn!(
            app = %self.name, worker = %uuid, status, failed_events = failed,
            "worker failed to start: {why}; last output: {output}; respawn in {backoff:?} (failed start {failures} of {START_FAILURES_MAX})"
        );
    }

    /// A worker handshook: the app serves again.
    pub(super) fn worker_ready(&self, worker: &WorkerSlot) {
        let failures = self.start_failures.replace(0);
        self.start_failure.set(None);
        self.respawn_at.set(None);
        if failures > 0 {
            tracing::warn!(
                app = %self.name, worker = %worker.uuid, pid = worker.pid(),
                "worker started after {failures} failed start(s)"
            );
        } else {
            tracing::info!(app = %self.name, worker = %worker.uuid, pid = worker.pid(), "worker connected");
        }
    }

    /// A worker's connection ended or the worker was killed: fail what it held, forget it,
    /// and replace it if needed. WARN unless the node asked it to go.
    pub(super) fn worker_gone(self: &Rc<Self>, worker: &Rc<WorkerSlot>, why: &str) {
        let was = worker.state.get();
        if was == WorkerState::Dead {
            return;
        }
        let expected = was == WorkerState::Closing || self.state.get() == AppState::Stopping;
        let open = worker.load();
        if expected {
            tracing::info!(app = %self.name, worker = %worker.uuid, "worker gone: {why}");
        } else {
            self.workers_lost.set(self.workers_lost.get() + 1);
            let now = Instant::now();
            let looping = self
                .last_loss
                .replace(Some(now))
                .is_some_and(|t| now.saturating_duration_since(t) < super::pool::CRASH_LOOP_WINDOW);
            let lost = self.workers_lost.get();
            if looping {
                tracing::warn!(
                    app = %self.name, worker = %worker.uuid, pid = worker.pid(), failed_requests = open, lost,
                    "worker crash loop: worker gone: {why}"
                );
            } else {
                tracing::warn!(
                    app = %self.name, worker = %worker.uuid, pid = worker.pid(), failed_requests = open, lost,
                    "worker gone: {why}"
                );
            }
        }
        worker.die(WORKER_LOST_STATUS);
        self.workers.borrow_mut().retain(|w| !Rc::ptr_eq(w, worker));
        self.pump();
    }

    /// Requests older than the profile's `timeout`, queued or sent: -ETIMEDOUT.
    fn expire_requests(self: &Rc<Self>, now: Instant, workers: &[Rc<WorkerSlot>]) {
        let timeout = self.profile.request_timeout;
        if timeout.is_zero() {
            return;
        }
        let Some(cutoff) = now.checked_sub(timeout) else {
            return;
        };
        let queued = self.fail_queued(|j| j.queued_at < cutoff, errno::ETIMEDOUT);
        let mut sent = 0;
        for w in workers {
            for ch in w.requests_sent_before(cutoff) {
                sent += usize::from(w.finish(ch, errno::ETIMEDOUT));
            }
        }
        if queued + sent > 0 {
            tracing::warn!(
                app = %self.name, queued, sent,
                "requests not answered within the profile's timeout ({timeout:?}): -ETIMEDOUT"
            );
        }
    }

    /// One supervisor pass; false once the app is stopped and every worker is gone.
    fn tick(self: &Rc<Self>) -> bool {
        let now = Instant::now();
        let workers: Vec<Rc<WorkerSlot>> = self.workers.borrow().clone();
        self.expire_requests(now, &workers);
        let total = workers.len();
        let p = &self.profile;
        for w in &workers {
            match w.state.get() {
                WorkerState::Starting if w.child().has_exited() => {
                    let status = w.child().exit_status().unwrap_or_default();
                    let why = format!("exited before the handshake ({status})");
                    self.start_failed(&w.uuid, Some(w), &why, errno::ENOEXEC);
                }
                WorkerState::Starting if now - w.started > p.startup_timeout => {
                    let why = format!(
                        "no handshake within startup-timeout ({:?})",
                        p.startup_timeout
                    );
                    self.start_failed(&w.uuid, Some(w), &why, errno::ETIMEDOUT);
                }
                WorkerState::Active if now - w.last_beat.get() > p.heartbeat_timeout => {
                    w.send(frame::terminate(
                        terminate_code::HEARTBEAT_TIMEOUT,
                        "heartbeat timeout",
                    ));
                    self.worker_gone(w, "no heartbeat within heartbeat-timeout");
                }
                WorkerState::Active
                    if total > 1
                        && w.load() == 0
                        && !p.idle_timeout.is_zero()
                        && now - w.idle_since.get() > p.idle_timeout =>
                {
                    w.send(frame::terminate(terminate_code::IDLE, "slave is idle"));
                    w.begin_closing();
                }
                WorkerState::Closing
                    if w.closing_since
                        .get()
                        .is_some_and(|t| now - t > p.termination_timeout) =>
                {
                    self.worker_gone(w, "ignored terminate for termination-timeout");
                }
                _ => {}
            }
        }
        self.pump();
        !(self.state.get() == AppState::Stopping && self.workers.borrow().is_empty())
    }

    /// Stop: refuse new requests, fail queued ones, ask every worker to terminate (the
    /// supervisor kills those that ignore it after `termination-timeout`).
    pub fn stop(self: &Rc<Self>) {
        if self.state.get() == AppState::Stopping {
            return;
        }
        self.state.set(AppState::Stopping);
        if let Some(t) = self.accept_task.borrow_mut().take() {
            t.abort();
        }
        self.fail_queued(|_| true, WORKER_LOST_STATUS);
        let workers: Vec<Rc<WorkerSlot>> = self.workers.borrow().clone();
        for w in &workers {
            if w.state.get() == WorkerState::Starting {
                self.worker_gone(w, "app stopped before the handshake");
            } else {
                w.send(frame::terminate(
                    terminate_code::ENGINE_STOPPING,
                    "the engine is shutting down",
                ));
                w.begin_closing();
            }
        }
    }

    /// Drop every remaining worker at once (node shutdown).
    pub fn kill_all(self: &Rc<Self>) {
        let workers: Vec<Rc<WorkerSlot>> = self.workers.borrow().clone();
        for w in &workers {
            self.worker_gone(w, "node shutdown");
        }
    }
}

/// The supervisor task of one pool.
pub(super) async fn supervise(pool: Rc<AppPool>) {
    loop {
        crate::runtime::sleep(SUPERVISOR_TICK).await;
        if !pool.tick() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_backoff_doubles_up_to_its_cap() {
        assert_eq!(spawn_backoff(1), SPAWN_BACKOFF_FIRST);
        assert_eq!(spawn_backoff(2), SPAWN_BACKOFF_FIRST * 2);
        assert_eq!(spawn_backoff(4), SPAWN_BACKOFF_FIRST * 8);
        assert_eq!(spawn_backoff(START_FAILURES_MAX), SPAWN_BACKOFF_MAX);
        assert_eq!(spawn_backoff(u32::MAX), SPAWN_BACKOFF_MAX);
    }
}
