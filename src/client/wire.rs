//! The body layouts the client decodes and encodes beyond the header and io_attr: addresses,
//! address and id containers, the lookup reply, the exec `sph`, node status. Pure functions
//! over bytes; every count read from the peer is checked against the bytes present before
//! anything is allocated.
//!
//! ```text
//! dnet_addr (32):        0 sockaddr[28] (family u16 LE, port u16 BE, ipv4[4] | ipv6 layout)
//!                       28 addr_len u16   30 family u16
//! dnet_addr_container:   0 node_addr_num i32   4 addr_num i32   8 dnet_addr[addr_num]
//! dnet_id_container:     0 backends_count i32, then per backend:
//!                        0 backend_id i32  4 group_id i32  8 flags u32  12 ids_count u32
//!                       16 ids[ids_count][64]
//! lookup reply:          0 dnet_addr(32)  32 dnet_file_info(112)  144 path[flen] (NUL incl.)
//! dnet_file_info (112):  0 flen i32  4 checksum[64]  68 pad[4]  72 record_flags u64
//!                       80 size u64  88 offset u64  96 mtime {tsec u64, tnsec u64}
//! sph (128):             0 src[64]  64 data_size u64  72 flags u64  80 event_size i32
//!                       84 status i32  88 __key i32  92 src_key i32  96 addr dnet_addr(32)
//!                      128 event[event_size] data[data_size]
//! dnet_node_status (12): 0 nflags i32  4 status_flags i32  8 log_level u32
//! ```

use crate::key::RawId;
use crate::protocol::{DecodeError, DnetTime, Reader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const ADDR_SIZE_BYTES: usize = 32;
pub const FILE_INFO_SIZE_BYTES: usize = 112;
pub const SPH_SIZE_BYTES: usize = 128;
pub const NODE_STATUS_SIZE_BYTES: usize = 12;
const BACKEND_IDS_SIZE_BYTES: usize = 16;
/// `dnet_backend_ids.flags`: remove this backend's ids (UPDATE_IDS).
pub const BACKEND_DISABLE: u32 = 1;

/// Decode one `dnet_addr`. A family other than 2/10 is an error.
pub fn read_addr(r: &mut Reader<'_>) -> Result<SocketAddr, DecodeError> {
    let raw: [u8; 28] = r.array()?;
    let _addr_len = r.u16()?;
    let family = r.u16()?;
    let port = u16::from_be_bytes([raw[2], raw[3]]);
    match family {
        2 => {
            let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
            Ok(SocketAddr::new(IpAddr::V4(ip), port))
        }
        10 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&raw[8..24]);
            Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        other => Err(DecodeError::InvalidValue {
            field: "dnet_addr.family",
            value: i64::from(other),
        }),
    }
}

/// Encode one `dnet_addr`.
pub fn encode_addr(addr: &SocketAddr) -> [u8; ADDR_SIZE_BYTES] {
    let mut out = [0u8; ADDR_SIZE_BYTES];
    let port = addr.port().to_be_bytes();
    let (family, len): (u16, u16) = match addr.ip() {
        IpAddr::V4(ip) => {
            out[4..8].copy_from_slice(&ip.octets());
            (2, 16)
        }
        IpAddr::V6(ip) => {
            out[8..24].copy_from_slice(&ip.octets());
            (10, 28)
        }
    };
    out[0..2].copy_from_slice(&family.to_le_bytes());
    out[2..4].copy_from_slice(&port);
    out[28..30].copy_from_slice(&len.to_le_bytes());
    out[30..32].copy_from_slice(&family.to_le_bytes());
    out
}

/// A decoded `dnet_addr_container`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrList {
    pub node_addr_num: usize,
    pub addrs: Vec<SocketAddr>,
}

fn count(
    field: &'static str,
    value: i32,
    each_bytes: usize,
    r: &Reader<'_>,
) -> Result<usize, DecodeError> {
    let n = usize::try_from(value).map_err(|_| DecodeError::InvalidValue {
        field,
        value: i64::from(value),
    })?;
    let need = n.saturating_mul(each_bytes);
    if need > r.remaining() {
        return Err(DecodeError::TooShort {
            field,
            expected: need,
            actual: r.remaining(),
        });
    }
    Ok(n)
}

/// Decode an address container from the front of `r`.
pub fn read_addr_list(r: &mut Reader<'_>) -> Result<AddrList, DecodeError> {
    let node_addr_num = r.i32()?;
    let addr_num = r.i32()?;
    let n = count("dnet_addr_container.addr_num", addr_num, ADDR_SIZE_BYTES, r)?;
    let per_node = usize::try_from(node_addr_num).unwrap_or(0);
    let mut addrs = Vec::with_capacity(n);
    for _ in 0..n {
        addrs.push(read_addr(r)?);
    }
    Ok(AddrList {
        node_addr_num: per_node,
        addrs,
    })
}

/// One backend's entry in a `dnet_id_container`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendIds {
    pub backend_id: i32,
    pub group_id: u32,
    pub flags: u32,
    pub ids: Vec<RawId>,
}

/// Decode an id container; it must use up `r` exactly.
pub fn read_id_container(mut r: Reader<'_>) -> Result<Vec<BackendIds>, DecodeError> {
    let backends = r.i32()?;
    let n = count(
        "dnet_id_container.backends_count",
        backends,
        BACKEND_IDS_SIZE_BYTES,
        &r,
    )?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let backend_id = r.i32()?;
        let group_id = r.u32()?;
        let flags = r.u32()?;
        let ids_count = r.u32()?;
        let ids_count = i32::try_from(ids_count).unwrap_or(-1);
        let k = count("dnet_backend_ids.ids_count", ids_count, 64, &r)?;
        let mut ids = Vec::with_capacity(k);
        for _ in 0..k {
            ids.push(RawId(r.array()?));
        }
        out.push(BackendIds {
            backend_id,
            group_id,
            flags,
            ids,
        });
    }
    r.finish()?;
    Ok(out)
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
    if body.len() < ADDR_SIZE_BYTES + FILE_INFO_SIZE_BYTES {
        return Err(DecodeError::TooShort {
            field: "lookup reply",
            expected: ADDR_SIZE_BYTES + FILE_INFO_SIZE_BYTES,
            actual: body.len(),
        });
    }
    let mut r = Reader::new(body, "lookup reply");
    let address = read_addr(&mut r)?;
    let flen = r.i32()?;
    let checksum = RawId(r.array()?);
    let _pad = r.u32()?;
    let record_flags = r.u64()?;
    let size = r.u64()?;
    let offset = r.u64()?;
    let mtime = DnetTime {
        tsec: r.u64()?,
        tnsec: r.u64()?,
    };
    let n = count("dnet_file_info.flen", flen, 1, &r)?;
    let raw = r.take(n)?;
    let path_bytes = raw.split(|b| *b == 0).next().unwrap_or(&[]);
    Ok(LookupInfo {
        address,
        checksum,
        record_flags,
        size,
        offset,
        mtime,
        path: String::from_utf8_lossy(path_bytes).into_owned(),
    })
}

/// `sph.flags` bits.
pub mod sph_flags {
    pub const SRC_BLOCK: u64 = 1 << 0;
    pub const REPLY: u64 = 1 << 1;
    pub const FINISH: u64 = 1 << 2;
}

/// A decoded exec packet: `sph` + event + data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPacket {
    pub src: RawId,
    pub flags: u64,
    pub status: i32,
    pub src_key: i32,
    pub address: Option<SocketAddr>,
    pub event: String,
    pub data: Vec<u8>,
}

/// Encode an exec request body.
pub fn encode_exec(
    src: &RawId,
    flags: u64,
    src_key: i32,
    addr: &SocketAddr,
    event: &str,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(SPH_SIZE_BYTES + event.len() + data.len());
    out.extend_from_slice(&src.0);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    let event_size = i32::try_from(event.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&event_size.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&src_key.to_le_bytes());
    out.extend_from_slice(&encode_addr(addr));
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Decode an exec reply body; the sizes in the `sph` must match the body exactly.
pub fn read_exec(body: &[u8]) -> Result<ExecPacket, DecodeError> {
    let mut r = Reader::new(body, "sph");
    let src = RawId(r.array()?);
    let data_size = r.u64()?;
    let flags = r.u64()?;
    let event_size = r.i32()?;
    let status = r.i32()?;
    let _key = r.i32()?;
    let src_key = r.i32()?;
    let address = read_addr(&mut r).ok();
    let e = count("sph.event_size", event_size, 1, &r)?;
    let event = String::from_utf8_lossy(r.take(e)?).into_owned();
    let d = usize::try_from(data_size).unwrap_or(usize::MAX);
    let data = r.take(d)?.to_vec();
    r.finish()?;
    Ok(ExecPacket {
        src,
        flags,
        status,
        src_key,
        address,
        event,
        data,
    })
}

/// `dnet_node_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStatus {
    pub nflags: i32,
    pub status_flags: i32,
    pub log_level: u32,
}

impl NodeStatus {
    /// "Change nothing": every field -1.
    pub const QUERY: NodeStatus = NodeStatus {
        nflags: -1,
        status_flags: -1,
        log_level: u32::MAX,
    };

    pub fn encode(&self) -> [u8; NODE_STATUS_SIZE_BYTES] {
        let mut out = [0u8; NODE_STATUS_SIZE_BYTES];
        out[0..4].copy_from_slice(&self.nflags.to_le_bytes());
        out[4..8].copy_from_slice(&self.status_flags.to_le_bytes());
        out[8..12].copy_from_slice(&self.log_level.to_le_bytes());
        out
    }

    pub fn decode(body: &[u8]) -> Result<NodeStatus, DecodeError> {
        let mut r = Reader::new(body, "dnet_node_status");
        Ok(NodeStatus {
            nflags: r.i32()?,
            status_flags: r.i32()?,
            log_level: r.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_reply_payload_from_capture_decodes() {
        // Payload of the REVERSE_LOOKUP reply in the 2.26.11.1 captures (124 bytes).
        let mut body = vec![1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 4, 1, 127, 0, 0, 1];
        body.extend_from_slice(&[0u8; 20]);
        body.extend_from_slice(&[16, 0, 2, 0]);
        body.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        body.extend_from_slice(&[0x24; 64]);
        assert_eq!(body.len(), 124);
        let mut r = Reader::new(&body, "reverse lookup");
        let addrs = read_addr_list(&mut r).expect("addrs");
        assert_eq!(
            addrs.addrs,
            vec!["127.0.0.1:1025".parse::<SocketAddr>().expect("addr")]
        );
        let ids = read_id_container(Reader::new(r.rest(), "ids")).expect("ids");
        assert_eq!(ids.len(), 1);
        assert_eq!(
            (ids[0].backend_id, ids[0].group_id, ids[0].ids.len()),
            (1, 1, 1)
        );
    }

    #[test]
    fn id_container_with_lying_count_is_rejected_before_allocation() {
        let mut body = 1i32.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert!(read_id_container(Reader::new(&body, "ids")).is_err());
        let huge = i32::MAX.to_le_bytes();
        assert!(read_id_container(Reader::new(&huge, "ids")).is_err());
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
        assert!(read_exec(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn lookup_reply_decodes_path_without_nul() {
        let addr: SocketAddr = "127.0.0.1:1025".parse().expect("addr");
        let mut body = encode_addr(&addr).to_vec();
        let mut fi = [0u8; FILE_INFO_SIZE_BYTES];
        fi[0..4].copy_from_slice(&5i32.to_le_bytes());
        fi[80..88].copy_from_slice(&26u64.to_le_bytes());
        fi[96..104].copy_from_slice(&1795806197u64.to_le_bytes());
        body.extend_from_slice(&fi);
        body.extend_from_slice(b"/d/0\0");
        let info = read_lookup(&body).expect("lookup");
        assert_eq!(
            (info.size, info.path.as_str(), info.mtime.tsec),
            (26, "/d/0", 1795806197)
        );
    }
}
