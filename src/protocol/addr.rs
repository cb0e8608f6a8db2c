//! `dnet_addr` (one socket address as the C side keeps it) and `dnet_addr_container` (the
//! address list of the REVERSE_LOOKUP reply, JOIN and ROUTE_LIST reply).
//!
//! `dnet_addr`, 32 bytes, packed:
//!
//! ```text
//! off  size  field
//!   0    28  addr      raw sockaddr; IPv4 sockaddr_in:  0 family u16 LE (2), 2 port u16 BE,
//!                                                       4 ip 4 B, 8 zero 8 B, 16..28 zero
//!                                 IPv6 sockaddr_in6: 0 family u16 LE (10), 2 port u16 BE,
//!                                                    4 flowinfo 4 B BE, 8 ip 16 B,
//!                                                    24 scope_id u32 LE
//!  28     2  addr_len  u16, 16 (IPv4) or 28 (IPv6)
//!  30     2  family    u16, 2 (AF_INET) or 10 (AF_INET6)
//! ```
//!
//! `dnet_addr_container`, 8-byte header then the addresses:
//!
//! ```text
//! off  size       field
//!   0     4       node_addr_num  i32, addresses per node
//!   4     4       addr_num       i32, entries that follow
//!   8  32*addr_num addrs
//! ```
//!
//! The raw 28 bytes are kept as received, so a decoded address re-encodes byte-identically.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{DecodeError, Reader, Writer};

/// Size of `dnet_addr` on the wire.
pub const DNET_ADDR_SIZE_BYTES: usize = 32;
/// Size of the raw sockaddr inside `dnet_addr`.
pub const SOCKADDR_SIZE_BYTES: usize = 28;
/// Size of the `dnet_addr_container` header.
pub const ADDR_CONTAINER_HEADER_SIZE_BYTES: usize = 8;
/// `AF_INET` as carried on the wire.
pub const AF_INET: u16 = 2;
/// `AF_INET6` as carried on the wire.
pub const AF_INET6: u16 = 10;
/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_SIZE_BYTES: u16 = 16;
/// `sizeof(struct sockaddr_in6)`.
pub const SOCKADDR_IN6_SIZE_BYTES: u16 = 28;

/// A decoded `dnet_addr`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DnetAddr {
    /// The raw sockaddr bytes (port and IPv4 address in network order).
    pub sockaddr: [u8; SOCKADDR_SIZE_BYTES],
    pub addr_len: u16,
    pub family: u16,
}

impl Default for DnetAddr {
    fn default() -> Self {
        DnetAddr {
            sockaddr: [0u8; SOCKADDR_SIZE_BYTES],
            addr_len: 0,
            family: 0,
        }
    }
}

impl DnetAddr {
    /// Decode from exactly 32 bytes.
    pub fn decode(bytes: &[u8]) -> Result<DnetAddr, DecodeError> {
        let mut r = Reader::new(bytes, "dnet_addr");
        let addr = Self::read(&mut r)?;
        r.finish()?;
        Ok(addr)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<DnetAddr, DecodeError> {
        Ok(DnetAddr {
            sockaddr: r.array()?,
            addr_len: r.u16()?,
            family: r.u16()?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.bytes(&self.sockaddr);
        w.u16(self.addr_len);
        w.u16(self.family);
    }

    /// Encode into the 32-byte wire form.
    pub fn encode(&self) -> [u8; DNET_ADDR_SIZE_BYTES] {
        let mut out = [0u8; DNET_ADDR_SIZE_BYTES];
        self.write(&mut Writer::new(&mut out));
        out
    }

    /// The socket address, or `None` when the family or length is not IPv4/IPv6.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        let s = &self.sockaddr;
        let port = u16::from_be_bytes([s[2], s[3]]);
        match (self.family, self.addr_len) {
            (AF_INET, SOCKADDR_IN_SIZE_BYTES) => {
                let ip = Ipv4Addr::new(s[4], s[5], s[6], s[7]);
                Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            (AF_INET6, SOCKADDR_IN6_SIZE_BYTES) => {
                let flowinfo = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&s[8..24]);
                let scope_id = u32::from_le_bytes([s[24], s[25], s[26], s[27]]);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port,
                    flowinfo,
                    scope_id,
                )))
            }
            _ => None,
        }
    }

    /// True for 0.0.0.0 / :: (a handshake reply must not advertise these).
    pub fn is_wildcard(&self) -> bool {
        self.to_socket_addr()
            .is_some_and(|sa| sa.ip().is_unspecified())
    }
}

impl From<SocketAddr> for DnetAddr {
    fn from(sa: SocketAddr) -> Self {
        let mut sockaddr = [0u8; SOCKADDR_SIZE_BYTES];
        let port = sa.port().to_be_bytes();
        match sa {
            SocketAddr::V4(v4) => {
                sockaddr[0..2].copy_from_slice(&AF_INET.to_le_bytes());
                sockaddr[2..4].copy_from_slice(&port);
                sockaddr[4..8].copy_from_slice(&v4.ip().octets());
                DnetAddr {
                    sockaddr,
                    addr_len: SOCKADDR_IN_SIZE_BYTES,
                    family: AF_INET,
                }
            }
            SocketAddr::V6(v6) => {
                sockaddr[0..2].copy_from_slice(&AF_INET6.to_le_bytes());
                sockaddr[2..4].copy_from_slice(&port);
                sockaddr[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
                sockaddr[8..24].copy_from_slice(&v6.ip().octets());
                sockaddr[24..28].copy_from_slice(&v6.scope_id().to_le_bytes());
                DnetAddr {
                    sockaddr,
                    addr_len: SOCKADDR_IN6_SIZE_BYTES,
                    family: AF_INET6,
                }
            }
        }
    }
}

impl fmt::Display for DnetAddr {
    /// `dnet_addr_string`: "127.0.0.1:1025" (no brackets, no family).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_socket_addr() {
            Some(sa) => match sa.ip() {
                IpAddr::V4(ip) => write!(f, "{ip}:{}", sa.port()),
                IpAddr::V6(ip) => write!(f, "{ip}:{}", sa.port()),
            },
            None => write!(f, "invalid address (family {})", self.family),
        }
    }
}

impl fmt::Debug for DnetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DnetAddr({self})")
    }
}

/// A decoded `dnet_addr_container`; `addr_num` on the wire is `addrs.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddrContainer {
    /// Addresses per node (a server's configured address count).
    pub node_addr_num: i32,
    pub addrs: Vec<DnetAddr>,
}

impl AddrContainer {
    /// Decode a payload that holds exactly one container.
    pub fn decode(bytes: &[u8]) -> Result<AddrContainer, DecodeError> {
        let mut r = Reader::new(bytes, "dnet_addr_container");
        let c = Self::read(&mut r)?;
        r.finish()?;
        Ok(c)
    }

    /// Read one container from the front of `r`, leaving what follows it.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<AddrContainer, DecodeError> {
        let node_addr_num = r.i32()?;
        let addr_num = r.i32()?;
        let addrs = r.counted(
            "dnet_addr_container.addr_num",
            i64::from(addr_num),
            DNET_ADDR_SIZE_BYTES,
            DnetAddr::read,
        )?;
        Ok(AddrContainer {
            node_addr_num,
            addrs,
        })
    }

    /// Bytes the wire form takes.
    pub fn encoded_len(&self) -> usize {
        self.addrs
            .len()
            .saturating_mul(DNET_ADDR_SIZE_BYTES)
            .saturating_add(ADDR_CONTAINER_HEADER_SIZE_BYTES)
    }

    /// Append the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut head = [0u8; ADDR_CONTAINER_HEADER_SIZE_BYTES];
        let mut w = Writer::new(&mut head);
        w.i32(self.node_addr_num);
        w.i32(i32::try_from(self.addrs.len()).unwrap_or(i32::MAX));
        out.extend_from_slice(&head);
        for a in &self.addrs {
            out.extend_from_slice(&a.encode());
        }
    }

    /// The wire form as a new vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
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

    /// The address the original server advertised in every capture.
    pub(crate) const LOCALHOST_1025: [u8; 32] = [
        0x02, 0x00, 0x04, 0x01, 0x7f, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0x10, 0x00, 0x02, 0x00,
    ];

    #[test]
    fn ipv4_address_matches_the_captured_bytes() {
        let sa: SocketAddr = "127.0.0.1:1025".parse().unwrap();
        let a = DnetAddr::from(sa);
        assert_eq!(a.encode(), LOCALHOST_1025);
        assert_eq!(DnetAddr::decode(&LOCALHOST_1025).unwrap(), a);
        assert_eq!(a.to_socket_addr(), Some(sa));
        assert_eq!(a.to_string(), "127.0.0.1:1025");
    }

    #[test]
    fn port_is_big_endian_and_family_little_endian() {
        let a = DnetAddr::from("10.1.2.3:4660".parse::<SocketAddr>().unwrap());
        let b = a.encode();
        assert_eq!(&b[0..2], &[2, 0]);
        assert_eq!(&b[2..4], &[0x12, 0x34]);
        assert_eq!(&b[4..8], &[10, 1, 2, 3]);
        assert_eq!(&b[28..32], &[16, 0, 2, 0]);
    }

    #[test]
    fn ipv6_address_roundtrips_through_socket_addr() {
        let sa: SocketAddr = "[2001:db8::7]:1026".parse().unwrap();
        let a = DnetAddr::from(sa);
        assert_eq!(a.addr_len, 28);
        assert_eq!(a.family, 10);
        assert_eq!(a.to_socket_addr(), Some(sa));
        assert_eq!(a.to_string(), "2001:db8::7:1026");
        assert_eq!(DnetAddr::decode(&a.encode()).unwrap(), a);
    }

    #[test]
    fn unknown_family_has_no_socket_addr() {
        let mut raw = LOCALHOST_1025;
        raw[30] = 1;
        assert_eq!(DnetAddr::decode(&raw).unwrap().to_socket_addr(), None);
        assert!(!DnetAddr::decode(&raw).unwrap().is_wildcard());
        let any = DnetAddr::from("0.0.0.0:1025".parse::<SocketAddr>().unwrap());
        assert!(any.is_wildcard());
    }

    #[test]
    fn container_matches_the_captured_route_list_payload() {
        let mut payload = vec![1, 0, 0, 0, 1, 0, 0, 0];
        payload.extend_from_slice(&LOCALHOST_1025);
        let c = AddrContainer::decode(&payload).unwrap();
        assert_eq!(c.node_addr_num, 1);
        assert_eq!(c.addrs.len(), 1);
        assert_eq!(c.addrs[0].to_string(), "127.0.0.1:1025");
        assert_eq!(c.encode(), payload);
        assert_eq!(c.encoded_len(), 40);
    }

    #[test]
    fn container_count_beyond_the_bytes_present_is_rejected_before_allocation() {
        let mut payload = vec![1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f];
        payload.extend_from_slice(&LOCALHOST_1025);
        assert!(matches!(
            AddrContainer::decode(&payload),
            Err(DecodeError::TooLarge { .. })
        ));
        let negative = [1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            AddrContainer::decode(&negative),
            Err(DecodeError::InvalidValue { .. })
        ));
    }
}
