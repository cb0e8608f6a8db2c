//! The Rust worker SDK against an engine played by the test: a real unix socket, the worker
//! running `Worker::run_with` on its own thread. Whole-request handlers and threaded
//! handlers answer side by side; requests sent back to back in one write are all answered.

use elliptics::srw::frame::{self, kind, Frame, CONTROL_CHANNEL};
use elliptics::worker::{Failure, Worker};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

/// The engine's end: frames read from the worker, in order.
struct Engine {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Engine {
    fn next(&mut self) -> Frame {
        loop {
            if let Some((f, used)) = frame::decode(&self.buf).expect("valid frame") {
                self.buf.drain(..used);
                return f;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read from worker");
            assert!(n > 0, "worker closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Frames until every channel in `channels` ended (close or error), by channel.
    fn answers(&mut self, channels: &[u64]) -> HashMap<u64, Vec<Frame>> {
        let mut out: HashMap<u64, Vec<Frame>> = HashMap::new();
        let ended = |out: &HashMap<u64, Vec<Frame>>, ch: &u64| {
            out.get(ch)
                .and_then(|v| v.last())
                .is_some_and(|f| f.kind != kind::VALUE)
        };
        while !channels.iter().all(|ch| ended(&out, ch)) {
            let f = self.next();
            if f.channel != CONTROL_CHANNEL {
                out.entry(f.channel).or_default().push(f);
            }
        }
        out
    }
}

fn start(worker: Worker, name: &str) -> (Engine, std::thread::JoinHandle<()>) {
    let path = PathBuf::from(format!(
        "target/worker-sdk-{name}-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind");
    let endpoint = path.to_string_lossy().into_owned();
    let handle = std::thread::spawn(move || {
        worker.run_with(&endpoint, "uuid-1").expect("worker runs");
    });
    let (stream, _) = listener.accept().expect("worker connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = std::fs::remove_file(&path);
    let mut engine = Engine {
        stream,
        buf: Vec::new(),
    };
    let hello = engine.next();
    assert_eq!(hello.bytes_arg(0), Some(&b"uuid-1"[..]));
    (engine, handle)
}

fn worker() -> Worker {
    Worker::new()
        .on_whole("upper", |data| Ok(data.to_ascii_uppercase()))
        .on_whole("refuse", |_| {
            Err(Failure {
                code: 7,
                message: "refused".into(),
            })
        })
        .on("threaded", |req, resp| {
            let data = req.read_all();
            let _ = resp.write_last(&data);
        })
}

#[test]
fn requests_sent_back_to_back_are_each_answered_by_their_handler() {
    let (mut engine, handle) = start(worker(), "mixed");
    let mut batch = Vec::new();
    batch.extend(frame::request(2, b"upper", b"abc"));
    batch.extend(frame::request(3, b"refuse", b"x"));
    batch.extend(frame::request(4, b"threaded", b"same"));
    batch.extend(frame::request(5, b"missing", b""));
    batch.extend(frame::request(6, b"upper", b"second"));
    engine.stream.write_all(&batch).expect("send requests");
    let got = engine.answers(&[2, 3, 4, 5, 6]);
    let body = |ch: u64| got[&ch][0].bytes_arg(0).map(<[u8]>::to_vec);
    assert_eq!(body(2), Some(b"ABC".to_vec()));
    assert_eq!(got[&2][1].kind, kind::CLOSE);
    assert_eq!(body(6), Some(b"SECOND".to_vec()));
    assert_eq!(got[&3][0].kind, kind::ERROR);
    assert_eq!(got[&3][0].error_code(), (7, "refused".to_string()));
    assert_eq!(body(4), Some(b"same".to_vec()));
    assert_eq!(got[&5][0].kind, kind::ERROR);
    assert_eq!(got[&5][0].error_code().0, 200);
    engine
        .stream
        .write_all(&frame::terminate(11, "bye"))
        .expect("terminate");
    handle.join().expect("worker thread");
}

#[test]
fn a_whole_request_handler_sees_every_chunk_concatenated() {
    let (mut engine, handle) = start(worker(), "chunks");
    let mut bytes = Vec::new();
    frame::encode_bytes_into(&mut bytes, 2, kind::VALUE, b"upper");
    frame::encode_bytes_into(&mut bytes, 2, kind::VALUE, b"one-");
    // The second chunk arrives split across two writes.
    let mut second = Vec::new();
    frame::encode_bytes_into(&mut second, 2, kind::VALUE, &vec![b'z'; 100_000]);
    bytes.extend_from_slice(&second[..10]);
    engine.stream.write_all(&bytes).expect("send");
    std::thread::sleep(Duration::from_millis(50));
    let mut rest = second[10..].to_vec();
    rest.extend(frame::close(2));
    engine.stream.write_all(&rest).expect("send");
    let got = engine.answers(&[2]);
    let body = got[&2][0].bytes_arg(0).expect("a reply chunk");
    assert_eq!(body.len(), 4 + 100_000);
    assert!(body.starts_with(b"ONE-Z"));
    engine
        .stream
        .write_all(&frame::terminate(11, "bye"))
        .expect("terminate");
    handle.join().expect("worker thread");
}
