//! One shard's share of one app: its exec queue, its worker pool and the unix socket the
//! workers connect to (the supervisor that enforces the profile's timers and handles
//! workers that fail to start is in `lifecycle`).
//!
//! Everything runs on the shard's thread and ring. A request is queued (or refused at once
//! with -EXFULL when `queue-limit` is reached), handed to the least-loaded active worker
//! below `concurrency` as invoke + one chunk + close, and its replies flow back through a
//! [`chan`] to the waiting exec. The pool grows on demand up to this shard's
//! share of `pool-limit` and always keeps one worker while the app runs. An app started
//! with `start-multiple-task` ([`MultipleTask`]) instead queues tagged requests, each
//! served only by the worker whose uuid is its tag, spawned on demand.

use super::chan;
use super::process;
use super::store::{Manifest, Profile};
use super::task::MultipleTask;
use super::worker_conn::{self, WorkerSlot, WorkerState};
use crate::protocol::errno;
use crate::runtime::{JoinHandle, UnixListener};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Status of requests whose worker died or whose app stopped under them.
pub const WORKER_LOST_STATUS: i32 = crate::protocol::errno::ECONNRESET;
/// Reply bytes one exec may have queued from its worker before the node has sent them on;
/// a worker that outruns its caller by more fails that request with -ENOMEM.
pub const EXEC_QUEUED_BYTES_MAX: usize = 16 * 1024 * 1024;

/// What flows back to a waiting exec.
#[derive(Debug)]
pub enum Reply {
    /// A response chunk from the worker.
    Chunk(Vec<u8>),
    /// A whole exec packet a worker sent back through a client session (REPLY flag).
    Forwarded(Vec<u8>),
    /// A forwarded packet carried FINISH.
    Finish,
    /// The worker closed the response (0) or failed it (-code).
    Done(i32),
}

/// Per-event counters as srw kept them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventCounters {
    pub blocked: u64,
    pub nonblocked: u64,
    pub reply: u64,
}

/// App state names of the info JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    Running,
    /// Too many workers in a row failed to start: events fail at once until the app is
    /// stopped and started again.
    Broken,
    Stopping,
}

/// A queued request.
#[derive(Debug)]
pub(super) struct Job {
    /// The named worker that must serve it (`start-multiple-task`), else any worker.
    pub(super) tag: Option<String>,
    pub(super) queued_at: Instant,
    event: Vec<u8>,
    chunk: Vec<u8>,
    reply: chan::Sender<Reply>,
}

/// Everything needed to start an app on a shard; built once per start-task.
#[derive(Debug, Clone, Default)]
pub struct PreparedApp {
    pub name: String,
    pub manifest: Manifest,
    pub profile: Profile,
    pub app_dir: PathBuf,
    /// The task id (exec data) of `start-multiple-task`; None for `start-task`.
    pub task_id: Option<Vec<u8>>,
}

/// One shard's share of an app.
#[derive(Debug)]
pub struct AppPool {
    pub name: String,
    pub profile: Profile,
    manifest: Manifest,
    app_dir: PathBuf,
    pub endpoint: PathBuf,
    pool_share: usize,
    /// Set when the app was started with `start-multiple-task`.
    pub task: Option<MultipleTask>,
    pub(super) state: Cell<AppState>,
    pub(super) queue: RefCell<VecDeque<Job>>,
    pub(super) workers: RefCell<Vec<Rc<WorkerSlot>>>,
    pub counters: RefCell<BTreeMap<String, EventCounters>>,
    pub served: Cell<u64>,
    /// Workers lost while the app was running (crashed, killed, hung).
    pub workers_lost: Cell<u64>,
    /// When the last worker was lost: losses in a row within [`CRASH_LOOP_WINDOW`] make a
    /// crash loop, logged as such.
    pub(super) last_loss: Cell<Option<Instant>>,
    pub(super) accept_task: RefCell<Option<JoinHandle>>,
    /// Workers in a row that failed to start (reset by a handshake).
    pub(super) start_failures: Cell<u32>,
    /// No worker is spawned before this instant (the back-off after a failed start).
    pub(super) respawn_at: Cell<Option<Instant>>,
    /// While no worker is active after a failed start: the status events get at once.
    pub(super) start_failure: Cell<Option<i32>>,
}

/// Two worker losses closer than this are a crash loop.
pub(super) const CRASH_LOOP_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl AppPool {
    /// Bind the app's socket on this shard, start the accept loop, the supervisor and the
    /// first worker.
    pub fn start(
        app: PreparedApp,
        runtime_dir: &std::path::Path,
        shard: usize,
        shard_count: usize,
    ) -> Result<Rc<AppPool>, super::SrwError> {
        let endpoint = runtime_dir.join(format!("{}.{}.{shard}", app.name, std::process::id()));
        let listener = UnixListener::bind(&endpoint)
            .map_err(|e| super::SrwError::Io(format!("{}: {e}", endpoint.display())))?;
        let pool_share = app.profile.pool_limit.div_ceil(shard_count.max(1)).max(1);
        let task = app
            .task_id
            .as_deref()
            .map(|id| MultipleTask::new(id, app.profile.pool_limit));
        let pool = Rc::new(AppPool {
            name: app.name,
            profile: app.profile,
            manifest: app.manifest,
            app_dir: app.app_dir,
            endpoint,
            pool_share,
            task,
            state: Cell::new(AppState::Running),
            queue: RefCell::new(VecDeque::new()),
            workers: RefCell::new(Vec::new()),
            counters: RefCell::new(BTreeMap::new()),
            served: Cell::new(0),
            workers_lost: Cell::new(0),
            last_loss: Cell::new(None),
            accept_task: RefCell::new(None),
            start_failures: Cell::new(0),
            respawn_at: Cell::new(None),
            start_failure: Cell::new(None),
        });
        let accept = crate::runtime::spawn(accept_loop(pool.clone(), listener));
        *pool.accept_task.borrow_mut() = Some(accept);
        crate::runtime::spawn(super::lifecycle::supervise(pool.clone()));
        pool.pump();
        Ok(pool)
    }

    pub fn state(&self) -> AppState {
        self.state.get()
    }

    pub fn queue_depth(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Per-worker loads (open requests), for the info JSON.
    pub fn loads(&self) -> Vec<usize> {
        self.workers.borrow().iter().map(|w| w.load()).collect()
    }

    /// Count an event under its full `app@event` name.
    pub fn count(&self, full_event: &str, f: impl FnOnce(&mut EventCounters)) {
        let mut counters = self.counters.borrow_mut();
        match counters.get_mut(full_event) {
            Some(c) => f(c),
            None => f(counters.entry(full_event.to_string()).or_default()),
        }
    }

    /// Queue a request for `event` whose single chunk is `chunk`, for the worker named
    /// `tag` if given. -ENOENT when stopping, -EXFULL when the queue is at `queue-limit`,
    /// and the start failure's status when workers fail to start and none is active.
    pub fn enqueue(
        self: &Rc<Self>,
        tag: Option<String>,
        event: Vec<u8>,
        chunk: Vec<u8>,
        reply: chan::Sender<Reply>,
    ) -> Result<(), i32> {
        match self.state.get() {
            AppState::Running => {}
            AppState::Broken => return Err(self.start_failure.get().unwrap_or(errno::ENOEXEC)),
            AppState::Stopping => return Err(errno::ENOENT),
        }
        if let Some(status) = self.start_failure.get() {
            if tag.is_none() && !self.has_active_worker() {
                return Err(status);
            }
        }
        let limit = self.profile.queue_limit;
        if limit > 0 && self.queue.borrow().len() >= limit {
            return Err(errno::EXFULL);
        }
        self.queue.borrow_mut().push_back(Job {
            tag,
            queued_at: Instant::now(),
            event,
            chunk,
            reply,
        });
        self.pump();
        Ok(())
    }

    /// Hand queued requests to workers with room, and start a worker when work waits and
    /// none is starting (or when the pool is empty). Tagged requests wait for their named
    /// worker only, so they are skipped over rather than blocking the queue.
    pub(super) fn pump(self: &Rc<Self>) {
        if self.state.get() != AppState::Running {
            return;
        }
        let mut at = 0;
        loop {
            let tag = match self.queue.borrow().get(at) {
                Some(job) => job.tag.clone(),
                None => break,
            };
            let Some(worker) = self.free_worker(tag.as_deref()) else {
                if tag.is_none() && self.task.is_none() {
                    break;
                }
                at += 1;
                continue;
            };
            let Some(job) = self.queue.borrow_mut().remove(at) else {
                break;
            };
            if !job.reply.is_open() {
                continue;
            }
            self.served.set(self.served.get() + 1);
            worker.assign(&job.event, &job.chunk, job.reply);
        }
        if self.task.is_some() {
            self.spawn_named_workers();
            return;
        }
        let (total, starting) = {
            let w = self.workers.borrow();
            let starting = w
                .iter()
                .filter(|w| w.state.get() == WorkerState::Starting)
                .count();
            (w.len(), starting)
        };
        let work_waits = !self.queue.borrow().is_empty();
        if (work_waits || total == 0)
            && starting == 0
            && total < self.pool_share
            && self.may_spawn_now()
        {
            self.spawn_worker(process::new_uuid());
        }
    }

    /// Whether any worker has handshaken and takes requests.
    pub(super) fn has_active_worker(&self) -> bool {
        self.workers
            .borrow()
            .iter()
            .any(|w| w.state.get() == WorkerState::Active)
    }

    /// False while the back-off after a failed start runs.
    fn may_spawn_now(&self) -> bool {
        self.respawn_at.get().is_none_or(|t| Instant::now() >= t)
    }

    /// The least-loaded active worker below `concurrency`; only the one named `tag` when
    /// a tag is given.
    fn free_worker(&self, tag: Option<&str>) -> Option<Rc<WorkerSlot>> {
        self.workers
            .borrow()
            .iter()
            .filter(|w| w.state.get() == WorkerState::Active)
            .filter(|w| tag.is_none_or(|t| w.uuid == t))
            .filter(|w| w.load() < self.profile.concurrency)
            .min_by_key(|w| w.load())
            .cloned()
    }

    /// Spawn each named worker that queued requests wait for and that does not exist yet,
    /// never more than `pool-limit` named workers.
    fn spawn_named_workers(self: &Rc<Self>) {
        let mut wanted: Vec<String> = Vec::new();
        for job in self.queue.borrow().iter() {
            if let Some(tag) = &job.tag {
                let exists = self.workers.borrow().iter().any(|w| &w.uuid == tag);
                if !exists && !wanted.contains(tag) {
                    wanted.push(tag.clone());
                }
            }
        }
        if !self.may_spawn_now() {
            return;
        }
        for name in wanted {
            if self.workers.borrow().len() >= self.profile.pool_limit.max(1) {
                tracing::warn!(app = %self.name, worker = %name, "the pool is full");
                self.fail_queued(|j| j.tag.as_ref() == Some(&name), errno::EXFULL);
                continue;
            }
            self.spawn_worker(name);
        }
    }

    /// Fail and drop the queued requests `which` selects; how many there were.
    pub(super) fn fail_queued(&self, which: impl Fn(&Job) -> bool, status: i32) -> usize {
        let (failed, kept): (VecDeque<Job>, VecDeque<Job>) =
            self.queue.borrow_mut().drain(..).partition(|j| which(j));
        *self.queue.borrow_mut() = kept;
        let count = failed.len();
        for job in failed {
            job.reply.send(Reply::Done(status));
        }
        count
    }

    fn spawn_worker(self: &Rc<Self>, uuid: String) {
        match process::spawn(
            &self.name,
            &self.manifest,
            &self.app_dir,
            &self.endpoint,
            &uuid,
            self.profile.crashlog_limit,
        ) {
            Ok(child) => {
                let failures = self.start_failures.get();
                if failures > 0 {
                    tracing::warn!(
                        app = %self.name, worker = %uuid, pid = child.pid,
                        "worker respawned after {failures} failed start(s)"
                    );
                } else {
                    tracing::info!(app = %self.name, worker = %uuid, pid = child.pid, "worker spawned");
                }
                self.workers
                    .borrow_mut()
                    .push(Rc::new(WorkerSlot::new(uuid, child)));
            }
            Err(e) => {
                let why = format!("cannot spawn a worker: {e}");
                self.start_failed(&uuid, None, &why, errno::ENOEXEC);
            }
        }
    }

    /// The starting worker that spawned with `uuid`, if any.
    pub(super) fn starting_worker(&self, uuid: &str) -> Option<Rc<WorkerSlot>> {
        self.workers
            .borrow()
            .iter()
            .find(|w| w.uuid == uuid && w.state.get() == WorkerState::Starting)
            .cloned()
    }
}

async fn accept_loop(pool: Rc<AppPool>, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                crate::runtime::spawn(worker_conn::serve(pool.clone(), stream));
            }
            Err(e) => {
                tracing::warn!(app = %pool.name, "worker accept failed: {e}");
                crate::runtime::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
