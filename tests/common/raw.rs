//! Raw protocol access for tests: a blocking TCP connection that performs the 2.26
//! handshake, sends hand-built frames and reads reply frames (120-byte `dnet_cmd` header
//! plus `size` payload bytes), without the client library in between.

use elliptics::key::RawId;
use elliptics::protocol::{
    cmd_flags, command, reverse_lookup_request, CmdHeader, HandshakeVersion, IoAttr,
    HEADER_SIZE_BYTES,
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
        }
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

    /// Read one frame; `None` when the node closed the connection (or the read timed out).
    pub fn recv(&mut self) -> Option<RawReply> {
        let mut head = [0u8; HEADER_SIZE_BYTES];
        self.stream.read_exact(&mut head).ok()?;
        let header = CmdHeader::decode(&head).expect("reply header decodes");
        assert!(
            header.size <= REPLY_PAYLOAD_BYTES_MAX,
            "reply announces {} bytes",
            header.size
        );
        let mut payload = vec![0u8; header.size as usize];
        self.stream.read_exact(&mut payload).ok()?;
        Some(RawReply { header, payload })
    }

    /// Read one frame if one arrives within `wait_ms`.
    pub fn try_recv(&mut self, wait_ms: u64) -> Option<RawReply> {
        self.stream
            .set_read_timeout(Some(Duration::from_millis(wait_ms)))
            .expect("read timeout");
        let mut first = [0u8; 1];
        let got = match self.stream.peek(&mut first) {
            Ok(n) if n > 0 => self.recv(),
            _ => None,
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        got
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
    let id = RawId::from_key(key);
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
