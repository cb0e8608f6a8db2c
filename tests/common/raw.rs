//! Raw protocol access for tests: a blocking TCP connection that performs the 2.26
//! handshake, sends hand-built frames and reads reply frames (120-byte `dnet_cmd` header
//! plus `size` payload bytes), without the client library in between. The one raw client
//! of the suite: single-node and cluster tests both talk through it.

use elliptics::key::RawId;
use elliptics::protocol::{
    check_reverse_lookup_reply, cmd_flags, command, errno, reverse_lookup_request, split_frame,
    AddrContainer, CmdHeader, DecodeError, HandshakeVersion, IoAttr,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest reply payload a test accepts.
pub const REPLY_PAYLOAD_BYTES_MAX: u64 = 64 << 20;

/// One reply frame.
#[derive(Debug, Clone)]
pub struct RawReply {
    pub header: CmdHeader,
    pub payload: Vec<u8>,
}

/// A plain TCP connection to a node.
#[derive(Debug)]
pub struct RawConn {
    pub stream: TcpStream,
    next_trans: u64,
    /// Bytes read but not yet cut into frames.
    buf: Vec<u8>,
}

/// The REVERSE_LOOKUP request dnet_ioclient sends (shard count 10), presenting `version`.
pub fn handshake_header(version: [i32; 4]) -> CmdHeader {
    let mut header = reverse_lookup_request(10);
    header.id = HandshakeVersion {
        version,
        indexes_shard_count: 10,
    }
    .to_id();
    header
}

impl RawConn {
    /// Connect without a handshake.
    pub fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).expect("connect to the node");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        RawConn {
            stream,
            next_trans: 1,
            buf: Vec::new(),
        }
    }

    /// Connect and complete the handshake (the node must accept it).
    pub fn dial(addr: SocketAddr) -> RawConn {
        let (c, reply) = RawConn::handshaken(addr);
        check_reverse_lookup_reply(&reply.header, 10).expect("handshake accepted");
        c
    }

    /// Connect and complete the handshake; returns the handshake reply too.
    pub fn handshaken(addr: SocketAddr) -> (RawConn, RawReply) {
        let mut c = RawConn::connect(addr);
        c.send(&handshake_header([2, 26, 11, 1]), &[]);
        let reply = c.recv().expect("handshake reply");
        assert_eq!(reply.header.status, 0, "handshake refused");
        (c, reply)
    }

    /// Send bytes as they are.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Send a header (its `size` set from `payload`) and the payload.
    pub fn send(&mut self, header: &CmdHeader, payload: &[u8]) {
        let mut h = *header;
        h.size = payload.len() as u64;
        let mut frame = h.encode().to_vec();
        frame.extend_from_slice(payload);
        self.send_bytes(&frame);
    }

    /// Send a request with a fresh trans number; returns that number.
    pub fn request(&mut self, mut header: CmdHeader, payload: &[u8]) -> u64 {
        header.trans = self.next_trans;
        self.next_trans += 1;
        self.send(&header, payload);
        header.trans
    }

    /// A whole frame already buffered, cut off the front.
    fn buffered(&mut self) -> Option<RawReply> {
        match split_frame(&self.buf, REPLY_PAYLOAD_BYTES_MAX) {
            Ok((frame, used)) => {
                let reply = RawReply {
                    header: frame.header,
                    payload: frame.payload.to_vec(),
                };
                self.buf.drain(..used);
                Some(reply)
            }
            Err(DecodeError::Incomplete { .. }) => None,
            Err(e) => panic!("reply frame does not decode: {e}"),
        }
    }

    /// Read one frame; `None` when the node closed the connection (or the read timed out).
    pub fn recv(&mut self) -> Option<RawReply> {
        loop {
            if let Some(reply) = self.buffered() {
                return Some(reply);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Read one frame if one arrives within `wait_ms`.
    pub fn try_recv(&mut self, wait_ms: u64) -> Option<RawReply> {
        if let Some(reply) = self.buffered() {
            return Some(reply);
        }
        self.stream
            .set_read_timeout(Some(Duration::from_millis(wait_ms)))
            .expect("read timeout");
        let mut first = [0u8; 1];
        let got = match self.stream.peek(&mut first) {
            Ok(n) if n > 0 => {
                self.stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("read timeout");
                self.recv()
            }
            _ => None,
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        got
    }

    /// The next frame; the connection must deliver one.
    pub fn next_frame(&mut self) -> (CmdHeader, Vec<u8>) {
        let r = self.recv().expect("a frame before close");
        (r.header, r.payload)
    }

    /// The next frame, or `None` when nothing arrives within `wait`.
    pub fn next_within(&mut self, wait: Duration) -> Option<(CmdHeader, Vec<u8>)> {
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        self.try_recv(wait_ms).map(|r| (r.header, r.payload))
    }

    /// Read frames until the final one (no MORE bit) of `trans`.
    pub fn recv_transaction(&mut self, trans: u64) -> Vec<RawReply> {
        let mut out = Vec::new();
        loop {
            let r = self.recv().expect("reply before close");
            if r.header.trans != trans {
                continue;
            }
            let last = r.header.flags & cmd_flags::MORE == 0;
            out.push(r);
            if last {
                return out;
            }
        }
    }

    /// Send one request and gather its replies.
    pub fn call(&mut self, header: CmdHeader, payload: &[u8]) -> Vec<RawReply> {
        let trans = self.request(header, payload);
        self.recv_transaction(trans)
    }

    /// Send one request and collect every reply frame of it, as (header, payload) pairs.
    pub fn exchange(&mut self, header: CmdHeader, payload: &[u8]) -> Vec<(CmdHeader, Vec<u8>)> {
        self.call(header, payload)
            .into_iter()
            .map(|r| (r.header, r.payload))
            .collect()
    }

    /// How many peers the node's ROUTE_LIST names.
    pub fn route_list_len(&mut self) -> usize {
        let h = CmdHeader {
            cmd: command::ROUTE_LIST,
            flags: cmd_flags::NEED_ACK | cmd_flags::DIRECT | cmd_flags::NOLOCK,
            ..CmdHeader::default()
        };
        self.call(h, &[])
            .iter()
            .filter_map(|r| AddrContainer::decode(&r.payload).ok())
            .map(|c| c.addrs.len())
            .sum()
    }

    /// LOOKUP `id` in `group` with extra `flags`; the final status.
    pub fn lookup(&mut self, id: RawId, group: u32, flags: u64) -> i32 {
        let h = CmdHeader {
            id,
            group_id: group,
            cmd: command::LOOKUP,
            flags: cmd_flags::NEED_ACK | flags,
            ..CmdHeader::default()
        };
        self.call(h, &[])
            .iter()
            .map(|r| r.header.status)
            .find(|s| *s != 0)
            .unwrap_or(0)
    }

    /// READ `id` in `group` (not DIRECT); the status and the data.
    pub fn read(&mut self, id: RawId, group: u32) -> (i32, Vec<u8>) {
        let (mut h, body) = read_request_for(id, group);
        h.flags = cmd_flags::NEED_ACK;
        for r in self.call(h, &body) {
            if r.header.status != 0 {
                return (r.header.status, Vec::new());
            }
            if let Ok((_, data)) = IoAttr::decode_with_data(&r.payload) {
                return (0, data.to_vec());
            }
        }
        (errno::EIO, Vec::new())
    }

    /// Whether the node has closed this connection (reads return EOF within `wait_ms`).
    pub fn is_closed_by_peer(&mut self, wait_ms: u64) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_millis(wait_ms)))
            .expect("read timeout");
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// A WRITE request for `key` in `group` with `data`.
pub fn write_request(key: &[u8], group: u32, data: &[u8]) -> (CmdHeader, Vec<u8>) {
    let id = RawId::from_key(key);
    let io = IoAttr {
        parent: id,
        id,
        size: data.len() as u64,
        ..IoAttr::default()
    };
    let mut body = io.encode().to_vec();
    body.extend_from_slice(data);
    let header = CmdHeader {
        id,
        group_id: group,
        cmd: command::WRITE,
        flags: cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    };
    (header, body)
}

/// A READ request for the whole of `key` in `group`.
pub fn read_request(key: &[u8], group: u32) -> (CmdHeader, Vec<u8>) {
    read_request_for(RawId::from_key(key), group)
}

/// A READ request for the whole of `id` in `group`.
pub fn read_request_for(id: RawId, group: u32) -> (CmdHeader, Vec<u8>) {
    let io = IoAttr {
        parent: id,
        id,
        ..IoAttr::default()
    };
    let header = CmdHeader {
        id,
        group_id: group,
        cmd: command::READ,
        flags: cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    };
    (header, io.encode().to_vec())
}
