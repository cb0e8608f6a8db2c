//! The payload decoder by command: picks the structure a frame carries from `cmd.cmd` and
//! the REPLY bit, decodes it, and encodes it back. Payloads this codec does not interpret
//! (MONITOR_STAT's compressed JSON, deprecated commands) are returned raw.
//!
//! ```text
//! cmd              request payload                    reply payload
//! LOOKUP           -                                  LookupReply (addr 32 + info 112 + path)
//! REVERSE_LOOKUP   -                                  NodeAnnouncement
//! JOIN             NodeAnnouncement                   -
//! WRITE            io_attr 208 + io.size data         LookupReply
//! READ             io_attr 208                        io_attr 208 + data
//! DEL, DEL_RANGE   io_attr 208                        io_attr 208 (DEL_RANGE count)
//! READ_RANGE       io_attr 208                        io_attr 208 + data
//! BULK_READ        io_attr (size = 208 N) + N io_attr io_attr 208 + data
//! EXEC             sph 128 + event + data             sph 128 + event + data
//! ROUTE_LIST       -                                  AddrContainer
//! STATUS           node_status 12                     node_status 12
//! AUTH             auth 64                            -
//! MONITOR_STAT     monitor_stat_request 44            zlib JSON (raw)
//! UPDATE_IDS       IdContainer                        -
//! BACKEND_CONTROL  backend_control 72 + ids           BackendStatusList
//! BACKEND_STATUS   -                                  BackendStatusList
//! ITERATOR         iterator_request + ranges + groups iterator_response 140 + data
//! SEND             server_send_request + ids + groups iterator_response 140 + data
//! ```
//! An empty payload is always `Body::Empty` (acks and bare requests).

use super::{
    command, AddrContainer, Auth, BackendControl, BackendStatusList, CmdHeader, DecodeError,
    ExecPayload, IdContainer, IoAttr, IteratorRequest, IteratorResponse, LookupReply,
    MonitorStatRequest, NodeAnnouncement, NodeStatus, ServerSendRequest, IO_ATTR_SIZE_BYTES,
};

/// A decoded frame payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    Empty,
    Announcement(NodeAnnouncement),
    AddrList(AddrContainer),
    Lookup(LookupReply),
    /// io_attr followed by exactly `io.size` data bytes.
    Io {
        io: IoAttr,
        data: &'a [u8],
    },
    /// A bare 208-byte io_attr.
    IoAttr(IoAttr),
    BulkRead {
        io: IoAttr,
        keys: Vec<IoAttr>,
    },
    Exec(ExecPayload<'a>),
    NodeStatus(NodeStatus),
    Auth(Auth),
    MonitorStatRequest(MonitorStatRequest),
    UpdateIds(IdContainer),
    BackendControl(BackendControl),
    BackendStatus(BackendStatusList),
    Iterator(IteratorRequest),
    IteratorResponse {
        response: IteratorResponse,
        data: &'a [u8],
    },
    ServerSend(ServerSendRequest),
    /// A payload this codec carries without interpreting.
    Raw(&'a [u8]),
}

fn bulk_read(payload: &[u8]) -> Result<Body<'_>, DecodeError> {
    let (io, rest) = IoAttr::decode_with_data(payload)?;
    let n = rest.len().checked_div(IO_ATTR_SIZE_BYTES).unwrap_or(0);
    if n.checked_mul(IO_ATTR_SIZE_BYTES) != Some(rest.len()) {
        return Err(DecodeError::SizeMismatch {
            field: "bulk_read.io_attr_array",
            declared: io.size,
            actual: rest.len() as u64,
        });
    }
    let mut keys = Vec::with_capacity(n);
    for chunk in rest.chunks_exact(IO_ATTR_SIZE_BYTES) {
        keys.push(IoAttr::decode(chunk)?);
    }
    Ok(Body::BulkRead { io, keys })
}

fn exact_io_attr(payload: &[u8]) -> Result<Body<'_>, DecodeError> {
    if payload.len() != IO_ATTR_SIZE_BYTES {
        return Err(DecodeError::SizeMismatch {
            field: "dnet_io_attr",
            declared: IO_ATTR_SIZE_BYTES as u64,
            actual: payload.len() as u64,
        });
    }
    Ok(Body::IoAttr(IoAttr::decode(payload)?))
}

fn io_with_data(payload: &[u8]) -> Result<Body<'_>, DecodeError> {
    let (io, data) = IoAttr::decode_with_data(payload)?;
    Ok(Body::Io { io, data })
}

/// Decode `payload` as the body `header` announces. Never panics; unknown commands give
/// `Body::Raw`.
pub fn decode_body<'a>(header: &CmdHeader, payload: &'a [u8]) -> Result<Body<'a>, DecodeError> {
    if payload.is_empty() {
        return Ok(Body::Empty);
    }
    let reply = header.is_reply();
    Ok(match (header.cmd, reply) {
        (command::REVERSE_LOOKUP, true) | (command::JOIN, _) => {
            Body::Announcement(NodeAnnouncement::decode(payload)?)
        }
        (command::ROUTE_LIST, true) => Body::AddrList(AddrContainer::decode(payload)?),
        (command::LOOKUP, true) | (command::WRITE, true) => {
            Body::Lookup(LookupReply::decode(payload)?)
        }
        (command::WRITE, false) => io_with_data(payload)?,
        (command::READ | command::READ_RANGE | command::BULK_READ, true) => io_with_data(payload)?,
        (command::READ | command::DEL | command::READ_RANGE | command::DEL_RANGE, _) => {
            exact_io_attr(payload)?
        }
        (command::BULK_READ, false) => bulk_read(payload)?,
        (command::EXEC, _) => Body::Exec(ExecPayload::decode(payload)?),
        (command::STATUS, _) => Body::NodeStatus(NodeStatus::decode(payload)?),
        (command::AUTH, false) => Body::Auth(Auth::decode(payload)?),
        (command::MONITOR_STAT, false) => {
            Body::MonitorStatRequest(MonitorStatRequest::decode(payload)?)
        }
        (command::UPDATE_IDS, false) => Body::UpdateIds(IdContainer::decode(payload)?),
        (command::BACKEND_CONTROL, false) => Body::BackendControl(BackendControl::decode(payload)?),
        (command::BACKEND_CONTROL | command::BACKEND_STATUS, true) => {
            Body::BackendStatus(BackendStatusList::decode(payload)?)
        }
        (command::ITERATOR, false) => Body::Iterator(IteratorRequest::decode(payload)?),
        (command::ITERATOR | command::SEND, true) => {
            let (response, data) = IteratorResponse::decode_with_data(payload)?;
            Body::IteratorResponse { response, data }
        }
        (command::SEND, false) => Body::ServerSend(ServerSendRequest::decode(payload)?),
        _ => Body::Raw(payload),
    })
}

impl Body<'_> {
    /// Append the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Body::Empty => {}
            Body::Announcement(a) => a.encode_into(out),
            Body::AddrList(a) => a.encode_into(out),
            Body::Lookup(l) => l.encode_into(out),
            Body::Io { io, data } => {
                out.extend_from_slice(&io.encode());
                out.extend_from_slice(data);
            }
            Body::IoAttr(io) => out.extend_from_slice(&io.encode()),
            Body::BulkRead { io, keys } => {
                out.extend_from_slice(&io.encode());
                for k in keys {
                    out.extend_from_slice(&k.encode());
                }
            }
            Body::Exec(e) => e.encode_into(out),
            Body::NodeStatus(s) => out.extend_from_slice(&s.encode()),
            Body::Auth(a) => out.extend_from_slice(&a.encode()),
            Body::MonitorStatRequest(m) => out.extend_from_slice(&m.encode()),
            Body::UpdateIds(c) => c.encode_into(out),
            Body::BackendControl(c) => out.extend_from_slice(&c.encode()),
            Body::BackendStatus(l) => out.extend_from_slice(&l.encode()),
            Body::Iterator(i) => out.extend_from_slice(&i.encode()),
            Body::IteratorResponse { response, data } => {
                out.extend_from_slice(&response.encode());
                out.extend_from_slice(data);
            }
            Body::ServerSend(s) => out.extend_from_slice(&s.encode()),
            Body::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// The wire form as a new vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )]
    use super::*;
    use crate::key::RawId;
    use crate::protocol::cmd_flags;

    fn header(cmd: i32, reply: bool) -> CmdHeader {
        CmdHeader {
            cmd,
            flags: if reply { cmd_flags::REPLY } else { 0 },
            ..CmdHeader::default()
        }
    }

    #[test]
    fn bulk_read_splits_into_one_io_attr_per_key() {
        let keys = vec![
            IoAttr {
                id: RawId::from_key(b"a"),
                ..IoAttr::default()
            },
            IoAttr {
                id: RawId::from_key(b"b"),
                ..IoAttr::default()
            },
        ];
        let io = IoAttr {
            size: 2 * 208,
            ..IoAttr::default()
        };
        let body = Body::BulkRead { io, keys };
        let bytes = body.encode();
        let back = decode_body(&header(command::BULK_READ, false), &bytes).unwrap();
        assert_eq!(back, body);
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() - 1);
        assert!(decode_body(&header(command::BULK_READ, false), &cut).is_err());
    }

    #[test]
    fn same_command_decodes_differently_as_request_and_reply() {
        let io = IoAttr {
            size: 3,
            ..IoAttr::default()
        };
        let mut p = io.encode().to_vec();
        assert!(matches!(
            decode_body(&header(command::READ, false), &p).unwrap(),
            Body::IoAttr(_)
        ));
        p.extend_from_slice(b"abc");
        assert!(matches!(
            decode_body(&header(command::READ, true), &p).unwrap(),
            Body::Io { data: b"abc", .. }
        ));
        assert!(decode_body(&header(command::READ, false), &p).is_err());
    }

    #[test]
    fn unknown_and_empty_payloads_pass_through() {
        let h = header(1234, false);
        assert_eq!(decode_body(&h, b"xyz").unwrap(), Body::Raw(b"xyz"));
        assert_eq!(decode_body(&h, b"").unwrap(), Body::Empty);
        assert_eq!(Body::Raw(b"xyz").encode(), b"xyz");
    }
}
