//! Replay of the original 2.26 clients' requests against a real node: each client
//! connection of a capture (`tests/data/wire-captures/*.txt`) is opened again against our
//! node, its request frames are sent as they were captured, and our replies are set beside
//! the original server's, transaction by transaction.
//!
//! What is compared is what a client of the original can see: per reply frame the command,
//! status, flags, trans and backend; per payload the fields the clients read (file info size
//! and record flags, READ reply attributes and bytes, backend status entries, bare acks).
//! What differs by nature between two servers is left out: addresses, blob offsets and paths,
//! times, and the route tables of REVERSE_LOOKUP and ROUTE_LIST.

use super::raw::RawConn;
use elliptics::protocol::{
    command, BackendStatusList, CmdHeader, IoAttr, LookupReply, HEADER_SIZE_BYTES,
};
use std::net::SocketAddr;

/// One request of a capture and the original server's replies to it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Vec<u8>,
    pub replies: Vec<Vec<u8>>,
}

/// The exchanges of one client connection, in the order the client sent them.
pub type Conversation = Vec<Exchange>;

/// The client endpoint of a capture's `message #N ... A -> B (client -> server)` line and
/// whether the client sent it.
fn client_endpoint(line: &str) -> Option<(String, bool)> {
    let from_client = line.contains("(client -> server)");
    let words: Vec<&str> = line.split_whitespace().collect();
    let arrow = words.iter().position(|w| *w == "->")?;
    let (from, to) = (words.get(arrow.checked_sub(1)?)?, words.get(arrow + 1)?);
    Some((if from_client { from } else { to }.to_string(), from_client))
}

/// Every client connection of capture `name`, each a list of requests with their replies
/// (a reply belongs to the request of its connection with the same trans).
pub fn conversations(name: &str) -> Vec<Conversation> {
    let messages = super::capture::load(name);
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/wire-captures")
            .join(name),
    )
    .expect("capture text");
    let endpoints: Vec<(String, bool)> = text
        .lines()
        .filter(|l| l.starts_with("message #"))
        .map(|l| client_endpoint(l).expect("message line names its endpoints"))
        .collect();
    assert_eq!(endpoints.len(), messages.len(), "{name}: message lines");
    let mut order: Vec<String> = Vec::new();
    let mut convs: Vec<Conversation> = Vec::new();
    for ((endpoint, from_client), m) in endpoints.into_iter().zip(messages) {
        assert_eq!(from_client, m.from_client);
        let slot = match order.iter().position(|e| *e == endpoint) {
            Some(i) => i,
            None => {
                order.push(endpoint);
                convs.push(Vec::new());
                convs.len() - 1
            }
        };
        let conv = &mut convs[slot];
        if m.from_client {
            conv.push(Exchange {
                request: m.bytes,
                replies: Vec::new(),
            });
        } else {
            let trans = header(&m.bytes).trans;
            let ex = conv
                .iter_mut()
                .rev()
                .find(|e| header(&e.request).trans == trans)
                .expect("a reply follows its request");
            ex.replies.push(m.bytes);
        }
    }
    convs
}

fn header(frame: &[u8]) -> CmdHeader {
    CmdHeader::decode(&frame[..HEADER_SIZE_BYTES]).expect("captured header decodes")
}

/// Send every conversation of `name` to the node at `addr`, each on its own connection;
/// returns the differences found (empty when our node answered as the original did).
pub fn replay(name: &str, addr: SocketAddr) -> Vec<String> {
    let mut diffs = Vec::new();
    for (c, conv) in conversations(name).into_iter().enumerate() {
        let mut conn = RawConn::connect(addr);
        for ex in conv {
            let req = header(&ex.request);
            conn.send_bytes(&ex.request);
            for (i, want) in ex.replies.iter().enumerate() {
                let ctx = format!(
                    "{name} conn {c} cmd {} trans {} reply {i}",
                    req.cmd, req.trans
                );
                let Some(got) = conn.recv() else {
                    diffs.push(format!("{ctx}: our node sent no reply"));
                    break;
                };
                let mut got_frame = got.header.encode().to_vec();
                got_frame.extend_from_slice(&got.payload);
                compare(&ctx, want, &got_frame, &mut diffs);
            }
            // A frame more than the original sent would show as a reply to the next request;
            // check that nothing else is waiting for this transaction.
            if let Some(extra) = conn.try_recv(150) {
                diffs.push(format!(
                    "{name} conn {c} cmd {} trans {}: an extra frame the original did not send: {:?}",
                    req.cmd, req.trans, extra.header
                ));
            }
        }
    }
    diffs
}

/// Notes one field that differs between the original's reply and ours.
struct Fields<'a> {
    ctx: &'a str,
    diffs: &'a mut Vec<String>,
}

impl Fields<'_> {
    fn field(&mut self, what: &str, a: String, b: String) {
        if a != b {
            self.diffs
                .push(format!("{}: {what}: original {a}, ours {b}", self.ctx));
        }
    }

    fn note(&mut self, what: String) {
        self.diffs.push(format!("{}: {what}", self.ctx));
    }
}

fn compare(ctx: &str, want: &[u8], got: &[u8], diffs: &mut Vec<String>) {
    let (w, g) = (header(want), header(got));
    let mut f = Fields { ctx, diffs };
    f.field("cmd", w.cmd.to_string(), g.cmd.to_string());
    f.field("status", w.status.to_string(), g.status.to_string());
    f.field(
        "flags",
        format!("{:#x}", w.flags),
        format!("{:#x}", g.flags),
    );
    f.field("trans", w.trans.to_string(), g.trans.to_string());
    f.field(
        "backend_id",
        w.backend_id.to_string(),
        g.backend_id.to_string(),
    );
    let (wp, gp) = (&want[HEADER_SIZE_BYTES..], &got[HEADER_SIZE_BYTES..]);
    match w.cmd {
        command::REVERSE_LOOKUP | command::ROUTE_LIST => {}
        command::WRITE | command::LOOKUP if !wp.is_empty() => compare_file_info(&mut f, wp, gp),
        command::READ if !wp.is_empty() => compare_read(&mut f, wp, gp),
        command::BACKEND_STATUS if !wp.is_empty() => compare_backend_status(&mut f, wp, gp),
        _ => f.field("payload size", wp.len().to_string(), gp.len().to_string()),
    }
}

fn compare_file_info(f: &mut Fields<'_>, wp: &[u8], gp: &[u8]) {
    let fi = |p: &[u8]| LookupReply::decode(p).map(|r| (r.info, r.path_with_nul.len()));
    match (fi(wp), fi(gp)) {
        (Ok((wf, wl)), Ok((gf, gl))) => {
            f.field("file_info.size", wf.size.to_string(), gf.size.to_string());
            f.field(
                "file_info.record_flags",
                format!("{:#x}", wf.record_flags),
                format!("{:#x}", gf.record_flags),
            );
            f.field(
                "file_info has a path",
                (wl > 1).to_string(),
                (gl > 1).to_string(),
            );
        }
        (_, Err(e)) => f.note(format!("our file info does not decode: {e}")),
        (Err(e), _) => panic!("{}: captured file info does not decode: {e}", f.ctx),
    }
}

fn compare_read(f: &mut Fields<'_>, wp: &[u8], gp: &[u8]) {
    match (IoAttr::decode(wp), IoAttr::decode(gp)) {
        (Ok(wi), Ok(gi)) => {
            f.field(
                "io.flags",
                format!("{:#x}", wi.flags),
                format!("{:#x}", gi.flags),
            );
            f.field("io.size", wi.size.to_string(), gi.size.to_string());
            f.field("io.offset", wi.offset.to_string(), gi.offset.to_string());
            f.field(
                "io.total_size",
                wi.total_size.to_string(),
                gi.total_size.to_string(),
            );
            f.field(
                "io.record_flags",
                format!("{:#x}", wi.record_flags),
                format!("{:#x}", gi.record_flags),
            );
            f.field(
                "io.user_flags",
                wi.user_flags.to_string(),
                gi.user_flags.to_string(),
            );
            f.field(
                "data",
                String::from_utf8_lossy(&wp[208..]).into_owned(),
                String::from_utf8_lossy(gp.get(208..).unwrap_or_default()).into_owned(),
            );
        }
        (_, Err(e)) => f.note(format!("our READ reply does not decode: {e}")),
        (Err(e), _) => panic!("{}: captured READ reply does not decode: {e}", f.ctx),
    }
}

fn compare_backend_status(f: &mut Fields<'_>, wp: &[u8], gp: &[u8]) {
    let brief = |l: &BackendStatusList| -> Vec<String> {
        l.backends
            .iter()
            .map(|b| {
                format!(
                    "id {} state {} defrag {} ro {} err {} delay {}",
                    b.backend_id,
                    b.state,
                    b.defrag_state,
                    b.read_only,
                    b.last_start_err,
                    b.delay_ms
                )
            })
            .collect()
    };
    match (BackendStatusList::decode(wp), BackendStatusList::decode(gp)) {
        (Ok(wl), Ok(gl)) => {
            f.field(
                "backends",
                format!("{:?}", brief(&wl)),
                format!("{:?}", brief(&gl)),
            );
            f.field("payload size", wp.len().to_string(), gp.len().to_string());
        }
        (_, Err(e)) => f.note(format!("our status does not decode: {e}")),
        (Err(e), _) => panic!("{}: captured status does not decode: {e}", f.ctx),
    }
}
