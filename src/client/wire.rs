//! The client's view of the reply bodies: thin adapters from the shared `protocol` codecs
//! (lookup reply, exec payload, address and id containers) to owned, caller-friendly types
//! (socket addresses, `String` paths, owned exec data). No layout knowledge lives here; the
//! byte tables are in `protocol`.

use crate::key::RawId;
use crate::protocol::{
    sph_flags, AddrContainer, DecodeError, DnetAddr, DnetTime, ExecPayload, LookupReply, Sph,
};
use std::net::SocketAddr;

pub use crate::protocol::{BackendIds, NodeStatus, BACKEND_IDS_FLAG_DISABLE as BACKEND_DISABLE};

fn socket_addr(addr: &DnetAddr, field: &'static str) -> Result<SocketAddr, DecodeError> {
    addr.to_socket_addr().ok_or(DecodeError::InvalidValue {
        field,
        value: i64::from(addr.family),
    })
}

/// The addresses of an address container, per node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrList {
    pub node_addr_num: usize,
    pub addrs: Vec<SocketAddr>,
}

impl AddrList {
    pub fn from_container(c: &AddrContainer) -> Result<AddrList, DecodeError> {
        let addrs = c
            .addrs
            .iter()
            .map(|a| socket_addr(a, "dnet_addr.family"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AddrList {
            node_addr_num: usize::try_from(c.node_addr_num).unwrap_or(0),
            addrs,
        })
    }
}

/// The LOOKUP / WRITE reply: where the record lives and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupInfo {
    pub address: SocketAddr,
    pub checksum: RawId,
    pub record_flags: u64,
    pub size: u64,
    pub offset: u64,
    pub mtime: DnetTime,
    pub path: String,
}

/// Decode a lookup reply body.
pub fn read_lookup(body: &[u8]) -> Result<LookupInfo, DecodeError> {
    let reply = LookupReply::decode(body)?;
    Ok(LookupInfo {
        address: socket_addr(&reply.addr, "lookup_reply.addr")?,
        checksum: RawId(reply.info.checksum),
        record_flags: reply.info.record_flags,
        size: reply.info.size,
        offset: reply.info.offset,
        mtime: reply.info.mtime,
        path: String::from_utf8_lossy(reply.path()).into_owned(),
    })
}

/// A decoded exec packet: `sph` + event + data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPacket {
    pub src: RawId,
    pub flags: u64,
    pub status: i32,
    pub src_key: i32,
    /// `sph.addr`: the node that produced the packet.
    pub address: Option<SocketAddr>,
    pub event: String,
    pub data: Vec<u8>,
}

/// Encode an exec request body (`sph` with SRC_BLOCK etc. in `flags`, event, data).
pub fn encode_exec(
    src: &RawId,
    flags: u64,
    src_key: i32,
    addr: &SocketAddr,
    event: &str,
    data: &[u8],
) -> Vec<u8> {
    let sph = Sph {
        src: *src,
        data_size: data.len() as u64,
        flags,
        event_size: i32::try_from(event.len()).unwrap_or(i32::MAX),
        src_key,
        addr: DnetAddr::from(*addr),
        ..Sph::default()
    };
    ExecPayload {
        sph,
        event: event.as_bytes(),
        data,
    }
    .encode()
}

/// Decode an exec reply body; the sizes in the `sph` must match the body exactly.
pub fn read_exec(body: &[u8]) -> Result<ExecPacket, DecodeError> {
    let p = ExecPayload::decode(body)?;
    Ok(ExecPacket {
        src: p.sph.src,
        flags: p.sph.flags,
        status: p.sph.status,
        src_key: p.sph.src_key,
        address: p.sph.addr.to_socket_addr(),
        event: String::from_utf8_lossy(p.event).into_owned(),
        data: p.data.to_vec(),
    })
}

impl ExecPacket {
    /// True when this is the worker's final reply (FINISH).
    pub fn is_final(&self) -> bool {
        self.flags & sph_flags::FINISH != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{FileInfo, NodeAnnouncement};

    #[test]
    fn handshake_reply_payload_from_capture_decodes() {
        // Payload of the REVERSE_LOOKUP reply in the 2.26.11.1 captures (124 bytes).
        let mut body = vec![1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 4, 1, 127, 0, 0, 1];
        body.extend_from_slice(&[0u8; 20]);
        body.extend_from_slice(&[16, 0, 2, 0]);
        body.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        body.extend_from_slice(&[0x24; 64]);
        assert_eq!(body.len(), 124);
        let ann = NodeAnnouncement::decode(&body).expect("announcement");
        let addrs = AddrList::from_container(&ann.addrs).expect("addrs");
        assert_eq!(
            addrs.addrs,
            vec!["127.0.0.1:1025".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(ann.ids.backends.len(), 1);
        let b = &ann.ids.backends[0];
        assert_eq!((b.backend_id, b.group_id, b.ids.len()), (1, 1, 1));
    }

    #[test]
    fn exec_packet_roundtrips_and_checks_sizes() {
        let addr: SocketAddr = "127.0.0.1:1025".parse().expect("addr");
        let src = RawId::from_key(b"k");
        let body = encode_exec(&src, sph_flags::SRC_BLOCK, -1, &addr, "app@ev", b"data");
        assert_eq!(body.len(), 128 + 6 + 4);
        assert_eq!(&body[80..84], &6i32.to_le_bytes());
        let p = read_exec(&body).expect("decode");
        assert_eq!(
            (p.event.as_str(), p.data.as_slice(), p.src_key),
            ("app@ev", &b"data"[..], -1)
        );
        assert_eq!(p.address, Some(addr));
        assert!(!p.is_final());
        assert!(read_exec(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn lookup_reply_decodes_path_without_nul() {
        let addr: SocketAddr = "127.0.0.1:1025".parse().expect("addr");
        let info = FileInfo {
            size: 26,
            mtime: DnetTime {
                tsec: 1_795_806_197,
                tnsec: 0,
            },
            ..FileInfo::default()
        };
        let body = LookupReply::new(DnetAddr::from(addr), info, "/d/0").encode();
        let got = read_lookup(&body).expect("lookup");
        assert_eq!(
            (got.size, got.path.as_str(), got.mtime.tsec, got.address),
            (26, "/d/0", 1_795_806_197, addr)
        );
    }
}
