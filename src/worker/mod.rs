//! The Rust worker SDK, mirroring cocaine-framework-native v1: register handlers with
//! [`Worker::on`], then [`Worker::run`] connects to the engine's unix socket named by
//! `--endpoint`, handshakes with `--uuid`, heartbeats every 10 s, and calls each handler on
//! its own thread with the request (its chunks) and a [`Response`] (write / error / close;
//! close on drop). A terminate from the engine is echoed and ends `run`.
//!
//! Plain threads and a blocking socket: this runs in the worker process, off the node.

use crate::srw::frame::{self, kind, Frame, CONTROL_CHANNEL, PYTHON_ERROR_CATEGORY};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Heartbeat period.
const HEARTBEAT_PERIOD: Duration = Duration::from_secs(10);
/// Error code for an event without a handler (as the Python framework).
const NO_HANDLER_CODE: i64 = 200;

/// Why a worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("missing command-line option --{0}")]
    MissingOption(&'static str),
    #[error("cannot connect to {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("engine connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("engine protocol: {0}")]
    Protocol(#[from] frame::FrameError),
}

/// A request as the handler sees it: every chunk the engine sent, then the close.
#[derive(Debug)]
pub struct Request {
    pub event: String,
    rx: mpsc::Receiver<Option<Vec<u8>>>,
}

impl Request {
    /// The next chunk; `None` once the engine closed the request stream.
    pub fn recv(&self) -> Option<Vec<u8>> {
        self.rx.recv().ok().flatten()
    }

    /// All chunks until close, concatenated.
    pub fn read_all(&self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(c) = self.recv() {
            out.extend_from_slice(&c);
        }
        out
    }
}

type Writer = Arc<Mutex<UnixStream>>;

fn send(w: &Writer, bytes: &[u8]) -> std::io::Result<()> {
    let mut s = w
        .lock()
        .map_err(|_| std::io::Error::other("writer lock poisoned"))?;
    s.write_all(bytes)
}

/// The response side of one request. Dropping it closes the response if still open.
#[derive(Debug)]
pub struct Response {
    channel: u64,
    out: Writer,
    done: bool,
}

impl Response {
    /// Send a chunk.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(data.len() + 16);
        frame::encode_bytes_into(&mut buf, self.channel, kind::VALUE, data);
        send(&self.out, &buf)
    }

    /// Send a last chunk and finish the response, both in one write to the engine (a
    /// [`Response::write`] then [`Response::close`] costs two).
    pub fn write_last(mut self, data: &[u8]) -> std::io::Result<()> {
        self.done = true;
        let close = frame::close(self.channel);
        let mut buf = Vec::with_capacity(data.len() + 16 + close.len());
        frame::encode_bytes_into(&mut buf, self.channel, kind::VALUE, data);
        buf.extend_from_slice(&close);
        send(&self.out, &buf)
    }

    /// Fail the request with `code` (the caller sees `-code`).
    pub fn error(mut self, code: i64, message: &str) -> std::io::Result<()> {
        self.done = true;
        send(
            &self.out,
            &frame::error(self.channel, PYTHON_ERROR_CATEGORY, code, message),
        )
    }

    /// Finish the response.
    pub fn close(mut self) -> std::io::Result<()> {
        self.done = true;
        send(&self.out, &frame::close(self.channel))
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        if !self.done {
            let _ = send(&self.out, &frame::close(self.channel));
        }
    }
}

type Handler = Arc<dyn Fn(Request, Response) + Send + Sync>;

/// A worker: handlers by event name.
#[derive(Default)]
pub struct Worker {
    handlers: HashMap<String, Handler>,
    pool: HandlerPool,
}

/// A job for a handler thread.
type Job = Box<dyn FnOnce() + Send>;
/// The receiving end the idle handler threads take turns on.
type SharedJobs = Arc<Mutex<mpsc::Receiver<Job>>>;

/// Handler threads, reused: a request runs on an idle thread when there is one and on a new
/// thread otherwise (a handler may block, so the pool grows with the concurrency the engine
/// allows rather than queueing behind a slow handler). Threads stay for the worker's life.
#[derive(Default)]
struct HandlerPool {
    idle: Arc<AtomicUsize>,
    jobs: Option<(mpsc::Sender<Job>, SharedJobs)>,
}

impl HandlerPool {
    fn run(&mut self, job: Job) {
        let (tx, rx) = self.jobs.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            (tx, Arc::new(Mutex::new(rx)))
        });
        // Claim an idle thread before handing it the job; only this thread submits.
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if claimed {
            if let Err(mpsc::SendError(job)) = tx.send(job) {
                std::thread::spawn(job);
            }
            return;
        }
        let (idle, rx) = (self.idle.clone(), rx.clone());
        std::thread::spawn(move || {
            job();
            loop {
                idle.fetch_add(1, Ordering::AcqRel);
                let next = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                match next {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            }
        });
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("events", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `--name value` from the process arguments.
fn option(args: &[String], name: &'static str) -> Result<String, WorkerError> {
    let flag = format!("--{name}");
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .ok_or(WorkerError::MissingOption(name))
}

impl Worker {
    pub fn new() -> Worker {
        Worker::default()
    }

    /// Register `handler` for `event` (the part after `@`).
    pub fn on(
        mut self,
        event: &str,
        handler: impl Fn(Request, Response) + Send + Sync + 'static,
    ) -> Worker {
        self.handlers.insert(event.to_string(), Arc::new(handler));
        self
    }

    /// Run with the process arguments until the engine terminates the worker.
    pub fn run(self) -> Result<(), WorkerError> {
        let args: Vec<String> = std::env::args().collect();
        let endpoint = option(&args, "endpoint")?;
        let uuid = option(&args, "uuid")?;
        self.run_with(&endpoint, &uuid)
    }

    /// Run against `endpoint` with `uuid`.
    pub fn run_with(mut self, endpoint: &str, uuid: &str) -> Result<(), WorkerError> {
        let stream = UnixStream::connect(endpoint).map_err(|source| WorkerError::Connect {
            path: endpoint.to_string(),
            source,
        })?;
        let mut reader = stream.try_clone()?;
        let out: Writer = Arc::new(Mutex::new(stream));
        send(&out, &frame::handshake(uuid))?;
        send(&out, &frame::heartbeat())?;
        let beat = out.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(HEARTBEAT_PERIOD);
            if send(&beat, &frame::heartbeat()).is_err() {
                break;
            }
        });
        let mut open: HashMap<u64, mpsc::Sender<Option<Vec<u8>>>> = HashMap::new();
        let mut max_channel = CONTROL_CHANNEL;
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            while let Some((f, used)) = frame::decode(&buf)? {
                buf.drain(..used);
                if f.channel == CONTROL_CHANNEL {
                    if f.kind == kind::ERROR {
                        let (code, reason) = terminate_args(&f);
                        let _ = send(&out, &frame::terminate(code, &reason));
                        return Ok(());
                    }
                    continue;
                }
                if f.channel > max_channel {
                    max_channel = f.channel;
                    self.invoke(&f, &out, &mut open);
                    continue;
                }
                match f.kind {
                    kind::VALUE => {
                        if let (Some(tx), Some(b)) = (open.get(&f.channel), f.bytes_arg(0)) {
                            let _ = tx.send(Some(b.to_vec()));
                        }
                    }
                    _ => {
                        if let Some(tx) = open.remove(&f.channel) {
                            let _ = tx.send(None);
                        }
                    }
                }
            }
            let n = reader.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    fn invoke(
        &mut self,
        f: &Frame,
        out: &Writer,
        open: &mut HashMap<u64, mpsc::Sender<Option<Vec<u8>>>>,
    ) {
        let event = f
            .bytes_arg(0)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let response = Response {
            channel: f.channel,
            out: out.clone(),
            done: false,
        };
        let Some(handler) = self.handlers.get(&event).cloned() else {
            let msg = format!("there is no handler for event {event}");
            let _ = response.error(NO_HANDLER_CODE, &msg);
            return;
        };
        let (tx, rx) = mpsc::channel();
        open.insert(f.channel, tx);
        let request = Request { event, rx };
        self.pool.run(Box::new(move || handler(request, response)));
    }
}

fn terminate_args(f: &Frame) -> (i64, String) {
    let code = f.args.first().and_then(|v| v.as_i64()).unwrap_or(0);
    let reason = f
        .bytes_arg(1)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    (code, reason)
}
