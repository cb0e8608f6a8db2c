//! Iterators read as they arrive: each backend's ITERATOR runs on a connection of its own,
//! read by a thread of its own that decodes each `dnet_iterator_response` in place (no
//! allocation per key) and hands the keys on in chunks through a bounded channel, so a
//! planner that falls behind holds the iterator back through the socket.
//!
//! [`Merge`] joins the streams by key. This node's iterators answer in key order, so once
//! every stream has passed a key, all its replicas are known and it can be copied while the
//! iterators go on. A stream that turns out not to be in key order within its first
//! [`ORDER_CHECK_KEYS`] keys is read to its end and sorted before anything is decided; one
//! found out of order later stops the run with an error.

use super::ops::{KeyMeta, Place};
use super::RecoveryError;
use crate::client::{reverse_lookup_request, ClientError};
use crate::key::RawId;
use crate::limits::FRAME_PAYLOAD_BYTES_MAX_DEFAULT;
use crate::protocol::{
    cmd_flags, command, errno, CmdHeader, IteratorRequest, IteratorResponse, HEADER_SIZE_BYTES,
};
use std::collections::VecDeque;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Duration;

/// Keys decoded before they are handed on together.
const CHUNK_KEYS: usize = 4096;
/// Chunks one stream may have waiting for the planner.
pub const CHUNKS_QUEUED: usize = 8;
/// Keys of every stream that must arrive in order before any key is decided.
pub const ORDER_CHECK_KEYS: usize = 2 * CHUNK_KEYS;
/// Bytes the reader buffers from the socket.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// What a stream's thread hands on: a chunk of keys, then its end.
#[derive(Debug)]
pub enum Msg {
    Keys(usize, Vec<KeyMeta>),
    End(usize, Result<(), RecoveryError>),
}

/// One ITERATOR request to run.
#[derive(Debug, Clone)]
pub struct Source {
    pub index: usize,
    pub place: Place,
    pub request: IteratorRequest,
    pub timeout: Duration,
    pub indexes_shard_count: i32,
}

/// Run `source` on a thread of its own; its keys and its end go to `tx`.
pub fn spawn(source: Source, tx: SyncSender<Msg>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("iter-{}", source.place.addr))
        .spawn(move || {
            let index = source.index;
            let end = run(&source, &tx).map_err(|e| RecoveryError::Iterate(source.place.addr, e));
            let _ = tx.send(Msg::End(index, end));
        })
}

fn io_error(source: &Source) -> impl Fn(std::io::Error) -> ClientError + '_ {
    move |e| {
        let status = match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => errno::ETIMEDOUT,
            _ => errno::ECONNRESET,
        };
        ClientError::new(status, format!("{}: {e}: {status}", source.place.addr))
    }
}

/// Read one frame's header and its payload into `payload`.
fn read_frame(
    r: &mut impl Read,
    payload: &mut Vec<u8>,
    err: &impl Fn(std::io::Error) -> ClientError,
) -> Result<CmdHeader, ClientError> {
    let mut head = [0u8; HEADER_SIZE_BYTES];
    r.read_exact(&mut head).map_err(err)?;
    let header = CmdHeader::decode(&head).map_err(ClientError::protocol)?;
    let len = Some(header.size)
        .filter(|n| *n <= FRAME_PAYLOAD_BYTES_MAX_DEFAULT)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            ClientError::new(errno::EPROTO, format!("frame of {} bytes", header.size))
        })?;
    payload.resize(len, 0);
    r.read_exact(payload).map_err(err)?;
    Ok(header)
}

fn run(source: &Source, tx: &SyncSender<Msg>) -> Result<(), ClientError> {
    let err = io_error(source);
    let mut stream =
        TcpStream::connect_timeout(&source.place.addr, source.timeout).map_err(&err)?;
    stream
        .set_read_timeout(Some(source.timeout))
        .map_err(&err)?;
    stream
        .set_write_timeout(Some(source.timeout))
        .map_err(&err)?;
    let _ = stream.set_nodelay(true);
    let body = source.request.encode();
    let request = CmdHeader {
        group_id: source.place.group,
        cmd: command::ITERATOR,
        backend_id: source.place.backend_id,
        flags: cmd_flags::NEED_ACK
            | cmd_flags::DIRECT
            | cmd_flags::DIRECT_BACKEND
            | cmd_flags::NOLOCK,
        trans: 1,
        size: body.len() as u64,
        ..CmdHeader::default()
    };
    stream
        .write_all(&reverse_lookup_request(source.indexes_shard_count).encode())
        .map_err(&err)?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, stream.try_clone().map_err(&err)?);
    let mut payload = Vec::new();
    let hello = read_frame(&mut reader, &mut payload, &err)?;
    if hello.status != 0 {
        return Err(ClientError::from_status(hello.status));
    }
    let mut out = request.encode().to_vec();
    out.extend_from_slice(&body);
    stream.write_all(&out).map_err(&err)?;
    let mut chunk = Vec::with_capacity(CHUNK_KEYS);
    loop {
        let h = read_frame(&mut reader, &mut payload, &err)?;
        if h.trans != 1 {
            continue;
        }
        if h.status != 0 {
            return Err(ClientError::from_status(h.status));
        }
        if h.flags & cmd_flags::MORE == 0 {
            break;
        }
        let Ok((resp, _)) = IteratorResponse::decode_with_data(&payload) else {
            continue;
        };
        if resp.status != 0 {
            continue;
        }
        chunk.push(KeyMeta {
            key: resp.key,
            timestamp: resp.timestamp,
            size: resp.size,
            user_flags: resp.user_flags,
        });
        if chunk.len() == CHUNK_KEYS {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_KEYS));
            if tx.send(Msg::Keys(source.index, full)).is_err() {
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Msg::Keys(source.index, chunk));
    }
    Ok(())
}

/// One stream as the merge sees it.
#[derive(Debug, Default)]
struct Lane {
    keys: VecDeque<KeyMeta>,
    last: Option<RawId>,
    received: usize,
    ended: bool,
    /// Out of key order: read to the end, then sorted.
    unordered: bool,
}

/// The streams of one run, joined by key.
#[derive(Debug)]
pub struct Merge {
    places: Vec<Place>,
    lanes: Vec<Lane>,
    /// A key was decided: order is relied upon from now on.
    started: bool,
}

impl Merge {
    pub fn new(places: Vec<Place>) -> Merge {
        let lanes = places.iter().map(|_| Lane::default()).collect();
        Merge {
            places,
            lanes,
            started: false,
        }
    }

    /// Take a chunk of stream `index`.
    pub fn keys(&mut self, index: usize, keys: Vec<KeyMeta>) -> Result<(), RecoveryError> {
        let place = self.places[index];
        let lane = &mut self.lanes[index];
        lane.received += keys.len();
        for meta in keys {
            if lane.last.is_some_and(|l| meta.key <= l) && !lane.unordered {
                if self.started {
                    return Err(RecoveryError::Unordered(place.addr));
                }
                tracing::warn!(node = %place.addr, "iterator not in key order: reading it whole first");
                lane.unordered = true;
            }
            lane.last = Some(meta.key);
            lane.keys.push_back(meta);
        }
        Ok(())
    }

    /// Stream `index` ended.
    pub fn end(&mut self, index: usize) {
        let lane = &mut self.lanes[index];
        lane.ended = true;
        if lane.unordered {
            lane.keys.make_contiguous().sort_unstable_by_key(|m| m.key);
            lane.unordered = false;
        }
    }

    fn lane_ready(lane: &Lane, started: bool) -> bool {
        lane.ended || (!lane.unordered && (started || lane.received >= ORDER_CHECK_KEYS))
    }

    /// The next key every stream has passed, with its replicas; `None` until one is.
    pub fn next(&mut self) -> Option<(RawId, Vec<(Place, KeyMeta)>)> {
        let started = self.started;
        if !self.lanes.iter().all(|l| Self::lane_ready(l, started)) {
            return None;
        }
        if self.lanes.iter().any(|l| !l.ended && l.keys.is_empty()) {
            return None;
        }
        let key = self
            .lanes
            .iter()
            .filter_map(|l| l.keys.front().map(|m| m.key))
            .min()?;
        self.started = true;
        let mut replicas = Vec::new();
        for (lane, place) in self.lanes.iter_mut().zip(&self.places) {
            while lane.keys.front().is_some_and(|m| m.key == key) {
                if let Some(meta) = lane.keys.pop_front() {
                    replicas.push((*place, meta));
                }
            }
        }
        Some((key, replicas))
    }
}

/// Receive from every stream until all ended, feeding `merge` and calling `decide` on each
/// key as soon as it is complete. Scanned keys are counted into `scanned`.
pub fn drive(
    rx: &Receiver<Msg>,
    merge: &mut Merge,
    streams: usize,
    scanned: &std::sync::atomic::AtomicU64,
    mut decide: impl FnMut(RawId, Vec<(Place, KeyMeta)>),
) -> Result<(), RecoveryError> {
    let mut open = streams;
    while open > 0 {
        let Ok(msg) = rx.recv() else { break };
        match msg {
            Msg::Keys(index, keys) => {
                scanned.fetch_add(keys.len() as u64, std::sync::atomic::Ordering::Relaxed);
                merge.keys(index, keys)?;
            }
            Msg::End(index, result) => {
                result?;
                merge.end(index);
                open -= 1;
            }
        }
        while let Some((key, replicas)) = merge.next() {
            decide(key, replicas);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DnetTime;

    fn meta(b: u8) -> KeyMeta {
        let mut key = RawId::ZERO;
        key.0[0] = b;
        KeyMeta {
            key,
            timestamp: DnetTime { tsec: 1, tnsec: 0 },
            size: 1,
            user_flags: 0,
        }
    }

    fn place(port: u16, group: u32) -> Place {
        Place {
            addr: format!("127.0.0.1:{port}").parse().expect("addr"),
            backend_id: 1,
            group,
        }
    }

    fn drain(m: &mut Merge) -> Vec<(u8, usize)> {
        std::iter::from_fn(|| m.next())
            .map(|(k, r)| (k.0[0], r.len()))
            .collect()
    }

    /// `n` distinct keys in order, all with first byte `first`.
    fn ordered(first: u8, n: usize) -> Vec<KeyMeta> {
        (0..n as u64)
            .map(|i| {
                let mut k = meta(first);
                k.key.0[1..9].copy_from_slice(&i.to_be_bytes());
                k
            })
            .collect()
    }

    #[test]
    fn ordered_streams_are_joined_as_they_arrive() {
        let mut m = Merge::new(vec![place(1, 1), place(2, 2)]);
        m.keys(0, vec![meta(1), meta(2)]).expect("order");
        m.end(1);
        assert!(
            m.next().is_none(),
            "nothing is decided before a stream showed its order or ended"
        );
        m.end(0);
        assert_eq!(drain(&mut m), vec![(1, 1), (2, 1)]);

        let mut m = Merge::new(vec![place(1, 1), place(2, 2)]);
        m.keys(0, ordered(3, ORDER_CHECK_KEYS)).expect("order");
        m.keys(1, ordered(3, ORDER_CHECK_KEYS / 2)).expect("order");
        assert!(m.next().is_none(), "the second stream is not checked yet");
        m.keys(1, ordered(4, ORDER_CHECK_KEYS / 2)).expect("order");
        let first = drain(&mut m);
        assert_eq!(first.len(), ORDER_CHECK_KEYS, "decided before either ended");
        let joined = first.iter().filter(|(_, n)| *n == 2).count();
        assert_eq!(joined, ORDER_CHECK_KEYS / 2, "both replicas joined");
        assert!(
            m.next().is_none(),
            "an open lane with nothing queued holds back"
        );
        m.end(0);
        assert_eq!(drain(&mut m).len(), ORDER_CHECK_KEYS / 2);
        m.end(1);
        assert!(drain(&mut m).is_empty());
    }

    #[test]
    fn an_unordered_stream_is_read_whole_then_sorted() {
        let mut m = Merge::new(vec![place(1, 1), place(2, 2)]);
        m.keys(0, vec![meta(5), meta(3), meta(9)])
            .expect("before any decision");
        m.end(1);
        assert!(m.next().is_none(), "the unordered stream is not complete");
        m.end(0);
        assert_eq!(drain(&mut m), vec![(3, 1), (5, 1), (9, 1)]);
    }

    #[test]
    fn disorder_after_a_decision_stops_the_run() {
        let mut m = Merge::new(vec![place(1, 1), place(2, 2)]);
        m.end(1);
        m.keys(0, vec![meta(1), meta(2)]).expect("order");
        assert!(
            m.next().is_none(),
            "fewer than the checked keys and not ended"
        );
        let many = ordered(3, ORDER_CHECK_KEYS);
        m.keys(0, many).expect("order");
        assert!(m.next().is_some());
        assert!(matches!(
            m.keys(0, vec![meta(0)]),
            Err(RecoveryError::Unordered(_))
        ));
    }
}
