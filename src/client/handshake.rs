//! Dialling a node: address strings, TCP connect, and the REVERSE_LOOKUP handshake
//! (trans 0, flags DIRECT|NOLOCK, version 2.26.11.1 and shard count in `cmd.id`), with the
//! reply checks Elliptics makes: status 0, same major.minor, no wildcard address, and one
//! advertised address equal to the one dialled (-EPROTO otherwise).
//!
//! ```text
//! REVERSE_LOOKUP cmd.id: 0 major i32  4 minor i32  8 patch i32  12 build i32
//!                       16 zero[4]   20 indexes_shard_count i32  24 zero[40]
//! ```

use super::conn::read_frame;
use super::error::ClientError;
use super::wire::{read_addr_list, read_id_container, AddrList, BackendIds};
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, errno, CmdHeader, Reader, PROTOCOL_VERSION};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Parse "host:port:family" (split at the last two ':'), resolving the host for the family
/// (2 = IPv4, 10 = IPv6). A "-N" route-group suffix on the family is accepted and ignored.
pub fn parse_remote(text: &str) -> Result<SocketAddr, ClientError> {
    let bad = |why: &str| {
        ClientError::new(
            errno::EINVAL,
            format!("invalid address '{text}': {why}: -22"),
        )
    };
    let (rest, family) = text
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port:family"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port:family"))?;
    let family = family.split('-').next().unwrap_or("");
    let family: u16 = family.parse().map_err(|_| bad("family must be 2 or 10"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let want_v4 = match family {
        2 => true,
        10 => false,
        _ => return Err(bad("family must be 2 or 10")),
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .find(|a| a.is_ipv4() == want_v4)
        .ok_or_else(|| bad("host does not resolve for this family"))
}

/// What a node told us about itself.
#[derive(Debug)]
pub struct Handshake {
    pub stream: TcpStream,
    pub addrs: AddrList,
    pub backends: Vec<BackendIds>,
}

/// The REVERSE_LOOKUP request header exactly as dnet_ioclient 2.26.11.1 sends it.
pub fn reverse_lookup_request(indexes_shard_count: i32) -> CmdHeader {
    let mut id = [0u8; 64];
    for (slot, v) in id.chunks_exact_mut(4).zip(PROTOCOL_VERSION) {
        slot.copy_from_slice(&v.to_le_bytes());
    }
    id[20..24].copy_from_slice(&indexes_shard_count.to_le_bytes());
    CmdHeader {
        id: RawId(id),
        cmd: command::REVERSE_LOOKUP,
        flags: cmd_flags::DIRECT | cmd_flags::NOLOCK,
        trans: 0,
        ..CmdHeader::default()
    }
}

fn version_of(id: &RawId) -> (i32, i32) {
    let major = i32::from_le_bytes([id.0[0], id.0[1], id.0[2], id.0[3]]);
    let minor = i32::from_le_bytes([id.0[4], id.0[5], id.0[6], id.0[7]]);
    (major, minor)
}

/// Connect to `addr` and run the handshake within `timeout`.
pub fn dial(
    addr: SocketAddr,
    timeout: Duration,
    indexes_shard_count: i32,
) -> Result<Handshake, ClientError> {
    let io_err = |e: std::io::Error| {
        let status = match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => errno::ETIMEDOUT,
            std::io::ErrorKind::ConnectionRefused => -111,
            _ => errno::ECONNRESET,
        };
        ClientError::new(status, format!("{addr}: could not connect: {e}: {status}"))
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io_err)?;
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    stream
        .write_all(&reverse_lookup_request(indexes_shard_count).encode())
        .map_err(io_err)?;
    let reply = read_frame(&mut stream)?;
    let proto = |why: String| {
        ClientError::new(
            errno::EPROTO,
            format!("{addr}: handshake failed: {why}: -71"),
        )
    };
    if reply.header.status != 0 {
        let s = reply.header.status;
        return Err(ClientError::new(
            s,
            format!("{addr}: handshake failed: {}: {s}", errno::message(s)),
        ));
    }
    if reply.header.cmd != command::REVERSE_LOOKUP {
        return Err(proto(format!("reply is command {}", reply.header.cmd)));
    }
    let theirs = version_of(&reply.header.id);
    let ours = (PROTOCOL_VERSION[0], PROTOCOL_VERSION[1]);
    if theirs != ours {
        return Err(proto(format!(
            "version {}.{} differs from {}.{}",
            theirs.0, theirs.1, ours.0, ours.1
        )));
    }
    let mut r = Reader::new(&reply.payload, "reverse lookup reply");
    let addrs = read_addr_list(&mut r).map_err(|e| proto(e.to_string()))?;
    if addrs.addrs.iter().any(|a| a.ip().is_unspecified()) {
        return Err(proto("node advertises a wildcard address".into()));
    }
    if !addrs.addrs.contains(&addr) {
        return Err(proto(format!(
            "node does not advertise the dialled address {addr}"
        )));
    }
    let backends = read_id_container(Reader::new(r.rest(), "dnet_id_container"))
        .map_err(|e| proto(e.to_string()))?;
    Ok(Handshake {
        stream,
        addrs,
        backends,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_lookup_request_matches_the_capture_bytes() {
        let bytes = reverse_lookup_request(10).encode();
        let mut want = [0u8; 120];
        want[..16].copy_from_slice(&[2, 0, 0, 0, 0x1a, 0, 0, 0, 0x0b, 0, 0, 0, 1, 0, 0, 0]);
        want[20] = 0x0a;
        want[0x50] = 2;
        want[0x60] = 0x18;
        assert_eq!(bytes, want);
    }

    #[test]
    fn remote_string_splits_at_last_two_colons() {
        assert_eq!(
            parse_remote("127.0.0.1:1025:2").ok(),
            "127.0.0.1:1025".parse().ok()
        );
        assert_eq!(
            parse_remote("localhost:1025:2-0").ok(),
            "127.0.0.1:1025".parse().ok()
        );
        assert_eq!(parse_remote("::1:1026:10").ok(), "[::1]:1026".parse().ok());
        assert!(parse_remote("127.0.0.1:1025").is_err());
        assert!(parse_remote("127.0.0.1:1025:7").is_err());
    }
}
