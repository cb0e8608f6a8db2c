//! The echo app, built on the Rust worker SDK. Events:
//! - `echo`: replies with the exec payload (the bytes after `sph` and the event name);
//! - `write`: writes the payload to the key named by `$ECHO_KEY` (default `TESTKEY`)
//!   through the Rust client, to the remote in `$ECHO_REMOTE` (default 127.0.0.1:1025:2),
//!   group 1, then closes (the tutorial's test_app, in Rust);
//! - `crash`: exits the process mid-request;
//! - `hang`: never answers;
//! - `fail`: answers with error code 5;
//! - `drip`: answers `chunk-0`, `chunk-1`, `chunk-2` with the number of milliseconds in the
//!   payload (default 500) between them, then closes.

use elliptics::client::{ClientConfig, Key, Node, Session};
use elliptics::worker::{Request, Response, WholeReply, Worker};

/// The exec payload of the request chunk: `sph` (128 bytes), event, data.
fn payload(chunk: &[u8]) -> &[u8] {
    let event_size = chunk
        .get(80..84)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, i32::from_le_bytes);
    let start = 128 + usize::try_from(event_size).unwrap_or(0);
    chunk.get(start..).unwrap_or_default()
}

/// Runs on the worker's reading thread: no hand-off to a handler thread.
fn echo(chunk: &[u8]) -> WholeReply {
    Ok(payload(chunk).to_vec())
}

fn write(req: Request, resp: Response) {
    let chunk = req.read_all();
    let remote = std::env::var("ECHO_REMOTE").unwrap_or_else(|_| "127.0.0.1:1025:2".into());
    let key = std::env::var("ECHO_KEY").unwrap_or_else(|_| "TESTKEY".into());
    let node = Node::new(ClientConfig::default());
    let result = node.add_remotes(&[remote.as_str()]).and_then(|()| {
        let mut s = Session::new(&node);
        s.set_groups(&[1]);
        s.write_data(&Key::from(key.as_str()), payload(&chunk), 0)
            .wait()
            .map(drop)
    });
    match result {
        Ok(()) => drop(resp),
        Err(e) => {
            let _ = resp.error(1, &e.to_string());
        }
    }
}

fn drip(req: Request, mut resp: Response) {
    let chunk = req.read_all();
    let pause_ms = std::str::from_utf8(payload(&chunk))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(500u64);
    for i in 0..3 {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(pause_ms));
        }
        if resp.write(format!("chunk-{i}").as_bytes()).is_err() {
            return;
        }
    }
    let _ = resp.close();
}

fn main() {
    let worker = Worker::new()
        .on_whole("echo", echo)
        .on("write", write)
        .on("drip", drip)
        .on("crash", |_req, _resp| std::process::exit(3))
        .on("hang", |req, resp| {
            let _ = req.read_all();
            std::thread::sleep(std::time::Duration::from_secs(3600));
            drop(resp);
        })
        .on("fail", |req, resp| {
            let _ = req.read_all();
            let _ = resp.error(5, "failed on purpose");
        });
    if let Err(e) = worker.run() {
        eprintln!("echo_worker: {e}");
        std::process::exit(1);
    }
}
