//! The monitor's HTTP side: `GET /`, `/all`, `/backend`, `/commands`, ... on
//! `options.monitor.port` answer the same JSON as MONITOR_STAT, uncompressed. It runs on
//! its own plain thread, off the shards' data path, and reads only relaxed counters.

use super::control::monitor_json;
use super::state::NodeShared;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Largest request head we read before answering.
const REQUEST_HEAD_BYTES_MAX: u64 = 8 * 1024;

/// Start the HTTP monitor when a port is configured.
pub fn spawn_http(node: &Arc<NodeShared>) {
    let Some(port) = node.config.options.monitor_port.filter(|p| *p != 0) else {
        return;
    };
    let addr = SocketAddr::new(node.listen_addr.ip(), port);
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("monitor: cannot listen on {addr}: {e}");
            return;
        }
    };
    let node = node.clone();
    let spawned = std::thread::Builder::new()
        .name("monitor-http".into())
        .spawn(move || {
            for stream in listener.incoming() {
                if node.shutting_down.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = answer(&node, stream);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("monitor: cannot start its thread: {e}");
    }
}

fn answer(node: &NodeShared, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(std::io::Read::take(&stream, REQUEST_HEAD_BYTES_MAX));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = if path.starts_with('/') {
        ("200 OK", monitor_json(node).to_string())
    } else {
        (
            "400 Bad Request",
            String::from("{\"error\":\"bad request\"}"),
        )
    };
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
