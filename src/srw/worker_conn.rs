//! One worker as the engine sees it: its process, its state, its open request channels,
//! and the connection tasks (handshake with uuid check, the frame reader, the writer).

use super::chan;
use super::frame::{self, Frame, FIRST_REQUEST_CHANNEL};
use super::pool::{AppPool, Reply};
use super::process::Child;
use crate::runtime::UnixStream;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

/// Bytes asked for per socket read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Lifecycle of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Spawned, no handshake yet.
    Starting,
    /// Handshaken; takes requests.
    Active,
    /// Terminate sent or received; takes no new requests.
    Closing,
    /// Gone.
    Dead,
}

/// A worker of one app on one shard.
#[derive(Debug)]
pub struct WorkerSlot {
    pub uuid: String,
    child: Child,
    pub state: Cell<WorkerState>,
    pub started: Instant,
    pub last_beat: Cell<Instant>,
    pub idle_since: Cell<Instant>,
    pub closing_since: Cell<Option<Instant>>,
    next_channel: Cell<u64>,
    /// Open requests: where their replies go and when they were sent.
    channels: RefCell<HashMap<u64, (chan::Sender<Reply>, Instant)>>,
    out: RefCell<Option<chan::Sender<Vec<u8>>>>,
    stream: RefCell<Option<Rc<UnixStream>>>,
}

impl WorkerSlot {
    pub fn new(uuid: String, child: Child) -> WorkerSlot {
        let now = Instant::now();
        WorkerSlot {
            uuid,
            child,
            state: Cell::new(WorkerState::Starting),
            started: now,
            last_beat: Cell::new(now),
            idle_since: Cell::new(now),
            closing_since: Cell::new(None),
            next_channel: Cell::new(FIRST_REQUEST_CHANNEL),
            channels: RefCell::new(HashMap::new()),
            out: RefCell::new(None),
            stream: RefCell::new(None),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.pid
    }

    /// The worker's process.
    pub fn child(&self) -> &Child {
        &self.child
    }

    /// Open requests.
    pub fn load(&self) -> usize {
        self.channels.borrow().len()
    }

    /// Queue bytes for the writer.
    pub fn send(&self, bytes: Vec<u8>) {
        if let Some(out) = self.out.borrow().as_ref() {
            out.send(bytes);
        }
    }

    /// Open a channel for a request and send invoke + chunk + close.
    pub fn assign(&self, event: &[u8], chunk: &[u8], reply: chan::Sender<Reply>) {
        let ch = self.next_channel.get();
        self.next_channel.set(ch + 1);
        self.channels
            .borrow_mut()
            .insert(ch, (reply, Instant::now()));
        self.send(frame::request(ch, event, chunk));
    }

    pub fn channel(&self, ch: u64) -> Option<chan::Sender<Reply>> {
        self.channels.borrow().get(&ch).map(|(r, _)| r.clone())
    }

    /// End a request with `status`; true when the channel was open.
    pub fn finish(&self, ch: u64, status: i32) -> bool {
        let reply = self.channels.borrow_mut().remove(&ch);
        if self.channels.borrow().is_empty() {
            self.idle_since.set(Instant::now());
        }
        match reply {
            Some((r, _)) => {
                r.send(Reply::Done(status));
                true
            }
            None => false,
        }
    }

    /// The open requests sent before `sent_before`.
    pub fn requests_sent_before(&self, sent_before: Instant) -> Vec<u64> {
        self.channels
            .borrow()
            .iter()
            .filter(|(_, (_, at))| *at < sent_before)
            .map(|(ch, _)| *ch)
            .collect()
    }

    pub fn begin_closing(&self) {
        if matches!(
            self.state.get(),
            WorkerState::Starting | WorkerState::Active
        ) {
            self.state.set(WorkerState::Closing);
            self.closing_since.set(Some(Instant::now()));
        }
    }

    /// Fail every open request with `status`, close the connection and kill the process
    /// if it still runs.
    pub fn die(&self, status: i32) {
        self.state.set(WorkerState::Dead);
        let open: Vec<chan::Sender<Reply>> = self
            .channels
            .borrow_mut()
            .drain()
            .map(|(_, (r, _))| r)
            .collect();
        for r in open {
            r.send(Reply::Done(status));
        }
        self.out.borrow_mut().take();
        if let Some(s) = self.stream.borrow_mut().take() {
            let _ = s.shutdown();
        }
        self.child.kill(true);
    }
}

/// Frames read from a worker's socket: a buffer and how much of it is consumed, so that
/// taking a frame moves no bytes (the consumed front is dropped once, before a read).
struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    fn new() -> FrameReader {
        FrameReader {
            buf: Vec::with_capacity(READ_CHUNK_BYTES),
            start: 0,
        }
    }

    /// Read until a frame is complete. `None` on end of stream or a bad frame.
    async fn next(&mut self, stream: &UnixStream) -> Option<Frame> {
        loop {
            match frame::decode(self.buf.get(self.start..).unwrap_or_default()) {
                Ok(Some((f, used))) => {
                    self.start += used;
                    if self.start == self.buf.len() {
                        self.buf.clear();
                        self.start = 0;
                    }
                    return Some(f);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("bad frame from a worker: {e}");
                    return None;
                }
            }
            self.buf.drain(..self.start);
            self.start = 0;
            if self.buf.capacity() - self.buf.len() < READ_CHUNK_BYTES {
                self.buf.reserve(READ_CHUNK_BYTES);
            }
            let (res, back) = stream.read(std::mem::take(&mut self.buf)).await;
            self.buf = back;
            match res {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

async fn write_loop(stream: Rc<UnixStream>, rx: chan::Receiver<Vec<u8>>) {
    while let Some(mut batch) = rx.recv().await {
        for more in rx.drain() {
            batch.extend_from_slice(&more);
        }
        if stream.write_all(batch).await.is_err() {
            break;
        }
    }
}

/// Serve one worker connection: the first frame must be a handshake naming a worker this
/// pool spawned and is still waiting for; anything else closes the connection.
pub async fn serve(pool: Rc<AppPool>, stream: UnixStream) {
    let stream = Rc::new(stream);
    let mut frames = FrameReader::new();
    let first = frames.next(&stream).await;
    let uuid = first.as_ref().and_then(|f| {
        (f.channel == frame::CONTROL_CHANNEL && f.kind == frame::kind::VALUE)
            .then(|| f.bytes_arg(0))
            .flatten()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    });
    let Some(worker) = uuid.as_deref().and_then(|u| pool.starting_worker(u)) else {
        tracing::warn!(app = %pool.name, uuid = ?uuid, "dropping a worker connection without a known handshake");
        let _ = stream.shutdown();
        return;
    };
    let (tx, rx) = chan::channel();
    *worker.out.borrow_mut() = Some(tx);
    *worker.stream.borrow_mut() = Some(stream.clone());
    crate::runtime::spawn(write_loop(stream.clone(), rx));
    worker.state.set(WorkerState::Active);
    worker.last_beat.set(Instant::now());
    worker.idle_since.set(Instant::now());
    pool.worker_ready(&worker);
    pool.pump();
    let why = loop {
        let Some(f) = frames.next(&stream).await else {
            break "disconnected";
        };
        if worker.state.get() == WorkerState::Dead {
            break "already dropped";
        }
        if !pool.on_frame(&worker, f) {
            break "protocol error";
        }
    };
    pool.worker_gone(&worker, why);
}
