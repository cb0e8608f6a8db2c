//! The monitor's HTTP side: `GET /all`, `/cache`, `/io`, `/io_histograms`, `/commands`,
//! `/backend`, `/stats`, `/procfs`, `/top`, `/list` and `/?categories=N` on
//! `options.monitor.port` answer the same JSON as MONITOR_STAT ([`super::monitor`]),
//! uncompressed. Our additions on the same port: `/` is the live dashboard (one
//! self-contained HTML page polling `/live`), `/live` the JSON it draws ([`super::live`]),
//! `/metrics` the Prometheus exposition ([`super::metrics`]). It runs on its own plain
//! thread, off the shards' data path.

use super::monitor::{category, monitor_json};
use super::state::NodeShared;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Largest request head we read before answering.
const REQUEST_HEAD_BYTES_MAX: u64 = 8 * 1024;

/// The HTTP paths and the categories they select; `/list` names them.
const PATHS: [(&str, u64); 10] = [
    ("/all", category::ALL),
    ("/cache", category::CACHE),
    ("/io", category::IO),
    ("/io_histograms", category::IO),
    ("/commands", category::COMMANDS),
    ("/backend", category::BACKEND),
    ("/stats", category::STATS),
    ("/procfs", category::PROCFS),
    ("/top", category::TOP),
    ("/list", 0),
];

/// Our paths, listed by `/list` after the original's.
const OUR_PATHS: [&str; 3] = ["/", "/live", "/metrics"];

/// The dashboard page: inline script and style, no external assets.
const DASHBOARD_HTML: &str = include_str!("monitor/dashboard.html");

/// The categories an HTTP path selects; None for an unknown path, Some(0) for `/list`.
pub fn path_categories(path: &str) -> Option<u64> {
    if let Some(query) = path.strip_prefix("/?") {
        return query
            .split('&')
            .find_map(|kv| kv.strip_prefix("categories="))
            .and_then(|n| n.parse::<i64>().ok())
            .map(|n| n as u64);
    }
    PATHS.iter().find(|(p, _)| *p == path).map(|(_, c)| *c)
}

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
    let (status, content_type, body) = match path {
        "/" | "/index.html" => (
            "200 OK",
            "text/html; charset=utf-8",
            DASHBOARD_HTML.to_string(),
        ),
        "/live" => (
            "200 OK",
            "application/json",
            super::live::live_json(node).to_string(),
        ),
        "/metrics" => (
            "200 OK",
            super::metrics::CONTENT_TYPE,
            super::metrics::render(node),
        ),
        _ => {
            let (status, body) = json_answer(node, path);
            (status, "application/json", body)
        }
    };
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    out.write_all(body.as_bytes())
}

/// The original's JSON paths.
fn json_answer(node: &NodeShared, path: &str) -> (&'static str, String) {
    match path_categories(path) {
        Some(0) => {
            let list: Vec<&str> = PATHS.iter().map(|(p, _)| *p).chain(OUR_PATHS).collect();
            (
                "200 OK",
                serde_json::json!({ "handlers": list }).to_string(),
            )
        }
        Some(categories) => ("200 OK", monitor_json(node, categories).to_string()),
        None => (
            "404 Not Found",
            String::from("{\"error\":\"unknown path\"}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_paths_select_their_categories() {
        assert_eq!(path_categories("/all"), Some(category::ALL));
        assert_eq!(path_categories("/top"), Some(category::TOP));
        assert_eq!(path_categories("/backend"), Some(category::BACKEND));
        assert_eq!(path_categories("/list"), Some(0));
        assert_eq!(path_categories("/?categories=130"), Some(130));
        assert_eq!(path_categories("/?categories=-1"), Some(category::ALL));
        assert_eq!(path_categories("/nope"), None);
        assert_eq!(path_categories("/?categories=x"), None);
    }
}
