//! The dashboard at `GET /` in a real browser: headless Chromium loads the page from a
//! running node under load and the test reads the DOM it leaves (`--dump-dom` after a
//! virtual-time budget: the page polls `/live` once a (virtual) second). The charts carry
//! `data-points`, the tables `data-rows`, the body `data-state` and `data-polls`.
//!
//! Needs Chromium (`apt-get install chromium`; `$CHROMIUM` names another binary).

mod common;

use common::{free_port, session, NodeSpec, TestNode};
use elliptics::client::Key;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Virtual milliseconds the page runs before its DOM is dumped.
const VIRTUAL_BUDGET_MS: u32 = 10_000;

/// Client threads putting load on the node while the page polls.
const LOADERS: u64 = 4;

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// The DOM of `url` after the page ran `VIRTUAL_BUDGET_MS` of virtual time.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={VIRTUAL_BUDGET_MS}"))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}); install chromium", chromium()));
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        dom.contains("</html>"),
        "chromium gave no DOM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// The value of attribute `name` on the element with id `id`.
fn attr(dom: &str, id: &str, name: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let start = dom[..at].rfind('<').expect("tag start");
    let end = at + dom[at..].find('>').expect("tag end");
    let tag = &dom[start..end];
    let key = format!("{name}=\"");
    let from = tag
        .find(&key)
        .unwrap_or_else(|| panic!("#{id} has no {name}: {tag}"))
        + key.len();
    tag[from..from + tag[from..].find('"').expect("closing quote")].to_string()
}

/// The text inside the element with id `id` (one without child elements).
fn text_of(dom: &str, id: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let from = at + dom[at..].find('>').expect("tag end") + 1;
    dom[from..from + dom[from..].find('<').expect("closing tag")].to_string()
}

fn number(dom: &str, id: &str, name: &str) -> u64 {
    attr(dom, id, name).parse().expect("a number")
}

/// The body's attribute `name` (the body has no id).
fn body_attr(dom: &str, name: &str) -> String {
    let at = dom.find("<body").expect("body");
    let tag = &dom[at..at + dom[at..].find('>').expect("body end")];
    let key = format!("{name}=\"");
    let from = tag.find(&key).expect("attribute") + key.len();
    tag[from..from + tag[from..].find('"').expect("quote")].to_string()
}

fn node_with_dashboard() -> (TestNode, u16) {
    let http = free_port();
    let node = TestNode::start_with(NodeSpec {
        backends: vec![(1, 1)],
        extra_options: vec![
            "\"shard_count\": 2".into(),
            format!(
                "\"monitor\": {{\"port\": {http}, \"top\": {{\"top_length\": 20, \"events_size\": 1000, \"period_in_seconds\": 300}}}}"
            ),
        ],
        ..NodeSpec::default()
    });
    (node, http)
}

/// Writes, reads and reads of missing keys until `stop` is set, from `LOADERS` clients
/// (latency is measured on one request in 16: the page needs a steady stream).
fn load(node: &TestNode, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let loaders: Vec<_> = (0..LOADERS)
        .map(|i| load_one(node, i, stop.clone()))
        .collect();
    std::thread::spawn(move || loaders.into_iter().map(|l| l.join().expect("load")).sum())
}

fn load_one(node: &TestNode, loader: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let s = session(node, &[1]);
    std::thread::spawn(move || {
        let mut done = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let key = Key::from(format!("dash-{loader}-{}", done % 50).as_str());
            s.write_data(&key, &[7u8; 512], 0).wait().expect("write");
            s.read_data(&key, 0, 0).wait().expect("read");
            let _ = s.read_data(&Key::from("dash-missing"), 0, 0).wait();
            done += 1;
        }
        done
    })
}

#[test]
fn the_dashboard_draws_live_charts_tables_and_the_ring_of_a_node_under_load() {
    let (node, http) = node_with_dashboard();
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(&node, stop.clone());
    // Some load before the page opens, so its first polls already see traffic.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let dom = dump_dom(&format!("http://127.0.0.1:{http}/"));
    stop.store(true, Ordering::Relaxed);
    assert!(loader.join().expect("load") > 0);

    assert_eq!(body_attr(&dom, "data-state"), "live");
    assert!(body_attr(&dom, "data-polls").parse::<u64>().expect("polls") >= 3);
    assert!(number(&dom, "chart-ops", "data-points") >= 2, "ops chart");
    assert!(
        number(&dom, "chart-latency", "data-points") >= 1,
        "latency chart"
    );
    assert_eq!(number(&dom, "shards", "data-rows"), 2, "one row per shard");
    assert_eq!(number(&dom, "backends", "data-rows"), 1);
    assert!(number(&dom, "top", "data-rows") >= 1, "hot keys listed");
    assert!(
        number(&dom, "errors", "data-rows") >= 1,
        "the missing key's ENOENT"
    );
    assert!(
        number(&dom, "ring", "data-points") >= 1,
        "ring points drawn"
    );
    assert!(dom.contains("ENOENT"));
    for command in ["READ", "WRITE"] {
        assert!(
            dom.contains(&format!("</i>{command}</span>")),
            "{command} in the chart legend"
        );
    }
}

/// Serve `page` at `/`, and `/live` from the node at `node_http` for the first `answers`
/// polls; later polls get their connection closed unanswered, as from a node that died.
fn dying_proxy(page: String, node_http: u16, answers: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut served = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 2048];
            let n = stream.read(&mut head).unwrap_or(0);
            let request = String::from_utf8_lossy(&head[..n]).to_string();
            if request.starts_with("GET /live") {
                if served >= answers {
                    continue; // dropped: closed without an answer
                }
                served += 1;
                let body = get(node_http, "/live").1;
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            } else {
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}", page.len());
            }
        }
    });
    port
}

fn get(port: u16, path: &str) -> (String, String) {
    let mut http = TcpStream::connect(("127.0.0.1", port)).expect("monitor http");
    write!(http, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut text = String::new();
    http.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    (head.to_string(), body.to_string())
}

#[test]
fn when_the_node_stops_answering_the_page_says_so_and_keeps_the_last_figures() {
    let (_node, http) = node_with_dashboard();
    let (head, page) = get(http, "/");
    assert!(head.contains("text/html"), "{head}");
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "no external assets"
    );
    let proxy = dying_proxy(page, http, 3);
    let dom = dump_dom(&format!("http://127.0.0.1:{proxy}/"));
    assert_eq!(body_attr(&dom, "data-state"), "down");
    assert_eq!(body_attr(&dom, "data-polls"), "3");
    assert!(dom.contains("The node is not answering"));
    assert!(dom.contains("node not answering"), "the status pill");
    let last_ok = text_of(&dom, "last-ok");
    assert!(
        last_ok.contains(':') && !last_ok.contains("never"),
        "it answered before: the banner gives the time of the last answer: {last_ok}"
    );
    assert_eq!(
        number(&dom, "shards", "data-rows"),
        2,
        "last figures stay shown"
    );
}
