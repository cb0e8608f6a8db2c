//! The Rust worker SDK, mirroring cocaine-framework-native v1: register handlers with
//! [`Worker::on`], then [`Worker::run`] connects to the engine's unix socket named by
//! `--endpoint`, handshakes with `--uuid`, heartbeats every 10 s, and calls each handler on
//! its own thread with the request (its chunks) and a [`Response`] (write / error / close;
//! close on drop). A terminate from the engine is echoed and ends `run`.
//!
//! A handler that only computes (no blocking, no streaming) can be registered with
//! [`Worker::on_whole`] instead: it runs on the thread that reads the socket once the whole
//! request is there, and the replies of every request found in one socket read leave in one
//! write. That costs no thread hand-off per request.
//!
//! Plain threads and a blocking socket: this runs in the worker process, off the node.

mod input;
mod threads;

use crate::srw::frame::{self, kind, Frame, CONTROL_CHANNEL, PYTHON_ERROR_CATEGORY};
use input::Input;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use threads::HandlerPool;

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

/// Why a whole-request handler failed: the caller sees `-code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i64,
    pub message: String,
}

/// What a whole-request handler answers: one reply chunk (then close), or a failure.
pub type WholeReply = Result<Vec<u8>, Failure>;

type WholeHandler = Arc<dyn Fn(&[u8]) -> WholeReply + Send + Sync>;

/// How one event is served.
#[derive(Clone)]
enum Route {
    /// On a handler thread, streaming.
    Threaded(Handler),
    /// On the reading thread, once the request is whole.
    Whole(WholeHandler),
}

/// A worker: handlers by event name.
#[derive(Default)]
pub struct Worker {
    handlers: HashMap<String, Route>,
    pool: HandlerPool,
}

/// A request channel the engine opened and has not closed yet.
enum Open {
    /// Chunks go to the handler thread.
    Threaded(mpsc::Sender<Option<Vec<u8>>>),
    /// Chunks are gathered for the whole-request handler.
    Whole(WholeHandler, Vec<u8>),
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
        self.handlers
            .insert(event.to_string(), Route::Threaded(Arc::new(handler)));
        self
    }

    /// Register `handler` for `event`, called on the reading thread with the request's
    /// chunks concatenated once the engine closed the request; its answer is sent as one
    /// chunk and a close (or as an error). For handlers that neither block nor stream.
    pub fn on_whole(
        mut self,
        event: &str,
        handler: impl Fn(&[u8]) -> WholeReply + Send + Sync + 'static,
    ) -> Worker {
        self.handlers
            .insert(event.to_string(), Route::Whole(Arc::new(handler)));
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
        let mut open: HashMap<u64, Open> = HashMap::new();
        let mut max_channel = CONTROL_CHANNEL;
        let mut input = Input::default();
        let mut replies: Vec<u8> = Vec::new();
        loop {
            while let Some(f) = input.next_frame()? {
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
                match (f.kind, open.get_mut(&f.channel)) {
                    (kind::VALUE, Some(Open::Threaded(tx))) => {
                        if let Some(b) = f.bytes_arg(0) {
                            let _ = tx.send(Some(b.to_vec()));
                        }
                    }
                    (kind::VALUE, Some(Open::Whole(_, data))) => {
                        data.extend_from_slice(f.bytes_arg(0).unwrap_or_default());
                    }
                    (_, Some(_)) => match open.remove(&f.channel) {
                        Some(Open::Threaded(tx)) => {
                            let _ = tx.send(None);
                        }
                        Some(Open::Whole(handler, data)) if f.kind == kind::CLOSE => {
                            answer(&mut replies, f.channel, handler(&data));
                        }
                        _ => {}
                    },
                    (_, None) => {}
                }
            }
            if !replies.is_empty() {
                send(&out, &replies)?;
                replies.clear();
            }
            if !input.fill(&mut reader)? {
                return Ok(());
            }
        }
    }

    fn invoke(&mut self, f: &Frame, out: &Writer, open: &mut HashMap<u64, Open>) {
        let name = f.bytes_arg(0).unwrap_or_default();
        let route = std::str::from_utf8(name)
            .ok()
            .and_then(|e| self.handlers.get(e))
            .cloned();
        match route {
            None => {
                let event = String::from_utf8_lossy(name);
                let msg = format!("there is no handler for event {event}");
                let reply = frame::error(f.channel, PYTHON_ERROR_CATEGORY, NO_HANDLER_CODE, &msg);
                let _ = send(out, &reply);
            }
            Some(Route::Whole(handler)) => {
                open.insert(f.channel, Open::Whole(handler, Vec::new()));
            }
            Some(Route::Threaded(handler)) => {
                let (tx, rx) = mpsc::channel();
                open.insert(f.channel, Open::Threaded(tx));
                let event = String::from_utf8_lossy(name).into_owned();
                let request = Request { event, rx };
                let response = Response {
                    channel: f.channel,
                    out: out.clone(),
                    done: false,
                };
                self.pool.run(Box::new(move || handler(request, response)));
            }
        }
    }
}

/// Append the frames that answer `channel` with `reply`.
fn answer(out: &mut Vec<u8>, channel: u64, reply: WholeReply) {
    match reply {
        Ok(body) => {
            frame::encode_bytes_into(out, channel, kind::VALUE, &body);
            out.extend_from_slice(&frame::close(channel));
        }
        Err(f) => out.extend_from_slice(&frame::error(
            channel,
            PYTHON_ERROR_CATEGORY,
            f.code,
            &f.message,
        )),
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
