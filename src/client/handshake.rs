//! Dialling a node: address strings, TCP connect, and the REVERSE_LOOKUP handshake
//! (trans 0, flags DIRECT|NOLOCK, version 2.26.11.1 and shard count in `cmd.id`), with the
//! reply checks Elliptics makes: status 0, same major.minor, no wildcard address, and one
//! advertised address equal to the one dialled (-EPROTO otherwise).
//!
//! The version block layout is `protocol::HandshakeVersion`.

use super::error::ClientError;
use super::reader::read_frame;
use super::wire::{AddrList, BackendIds};
use crate::address::AddrSpec;
pub use crate::protocol::reverse_lookup_request;
use crate::protocol::{decode_reverse_lookup_reply, errno, HandshakeError};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Parse "host:port:family" (see `address::AddrSpec`) and resolve it; errors are -EINVAL
/// with the address named.
pub fn parse_remote(text: &str) -> Result<SocketAddr, ClientError> {
    AddrSpec::parse(text)
        .and_then(|spec| spec.resolve())
        .map_err(|e| {
            ClientError::new(
                errno::EINVAL,
                format!("invalid address '{text}': {e}: {}", errno::EINVAL),
            )
        })
}

/// What a node told us about itself.
#[derive(Debug)]
pub struct Handshake {
    pub stream: TcpStream,
    pub addrs: AddrList,
    pub backends: Vec<BackendIds>,
    /// The node's `indexes_shard_count`, from its reply.
    pub indexes_shard_count: i32,
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
            std::io::ErrorKind::ConnectionRefused => errno::ECONNREFUSED,
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
            format!("{addr}: handshake failed: {why}: {}", errno::EPROTO),
        )
    };
    let (theirs, ann) =
        decode_reverse_lookup_reply(&reply.header, &reply.payload, indexes_shard_count).map_err(
            |e| match e {
                HandshakeError::Refused(s) => ClientError::new(
                    s,
                    format!("{addr}: handshake failed: {}: {s}", errno::message(s)),
                ),
                other => proto(other.to_string()),
            },
        )?;
    let addrs = AddrList::from_container(&ann.addrs).map_err(|e| proto(e.to_string()))?;
    if addrs.addrs.iter().any(|a| a.ip().is_unspecified()) {
        return Err(proto("node advertises a wildcard address".into()));
    }
    if !addrs.addrs.contains(&addr) {
        return Err(proto(format!(
            "node does not advertise the dialled address {addr}"
        )));
    }
    let backends = ann.ids.backends;
    Ok(Handshake {
        stream,
        addrs,
        backends,
        indexes_shard_count: theirs.indexes_shard_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
