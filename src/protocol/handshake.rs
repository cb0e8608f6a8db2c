//! The REVERSE_LOOKUP handshake: the version carried inside `cmd.id` of both the request and
//! the reply, and the node announcement payload (address container then id container) that
//! the REVERSE_LOOKUP reply and JOIN carry.
//!
//! Version inside the 64-byte `cmd.id.id`:
//!
//! ```text
//! off  size  field
//!   0     4  major               i32 (2)
//!   4     4  minor               i32 (26)
//!   8     4  patch               i32
//!  12     4  build               i32
//!  16     4  zero
//!  20     4  indexes_shard_count i32 (client default 10)
//!  24    40  zero
//! ```
//!
//! The exchange is sans-I/O here: [`reverse_lookup_request`] builds the request header
//! (trans 0, flags DIRECT|NOLOCK, our version) and [`check_reverse_lookup_reply`] /
//! [`decode_reverse_lookup_reply`] check the answer (status 0, command REVERSE_LOOKUP, same
//! major.minor). The client, the benchmark, the node's outgoing links and the tests all
//! speak through this pair; each adds only its own transport.
//!
//! Announcement payload:
//!
//! ```text
//! off             size                field
//!   0             8 + 32*addr_num     dnet_addr_container
//!   8 + 32*n      rest                dnet_id_container (exact size)
//! ```

use super::{
    cmd_flags, command, errno, AddrContainer, CmdHeader, DecodeError, IdContainer, Reader,
};
use crate::key::{RawId, ID_SIZE_BYTES};
use std::net::SocketAddr;

/// Byte offset of `indexes_shard_count` inside the handshake id.
pub const SHARD_COUNT_OFFSET_BYTES: usize = 20;

/// The version block of a REVERSE_LOOKUP request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandshakeVersion {
    pub version: [i32; 4],
    pub indexes_shard_count: i32,
}

fn i32_at(id: &[u8; ID_SIZE_BYTES], offset: usize) -> i32 {
    let mut b = [0u8; 4];
    if let Some(src) = id.get(offset..offset.saturating_add(4)) {
        b.copy_from_slice(src);
    }
    i32::from_le_bytes(b)
}

impl HandshakeVersion {
    /// Our version with the given shard count.
    pub fn ours(indexes_shard_count: i32) -> HandshakeVersion {
        HandshakeVersion {
            version: super::PROTOCOL_VERSION,
            indexes_shard_count,
        }
    }

    /// Read the version out of a handshake `cmd.id` (other bytes are ignored).
    pub fn from_id(id: &RawId) -> HandshakeVersion {
        HandshakeVersion {
            version: [
                i32_at(&id.0, 0),
                i32_at(&id.0, 4),
                i32_at(&id.0, 8),
                i32_at(&id.0, 12),
            ],
            indexes_shard_count: i32_at(&id.0, SHARD_COUNT_OFFSET_BYTES),
        }
    }

    /// The `cmd.id` that carries this version; every other byte is zero.
    pub fn to_id(&self) -> RawId {
        let mut id = [0u8; ID_SIZE_BYTES];
        let fields = [
            (0usize, self.version[0]),
            (4, self.version[1]),
            (8, self.version[2]),
            (12, self.version[3]),
            (SHARD_COUNT_OFFSET_BYTES, self.indexes_shard_count),
        ];
        for (off, v) in fields {
            if let Some(dst) = id.get_mut(off..off.saturating_add(4)) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
        }
        RawId(id)
    }

    /// Peers interoperate when major and minor are equal (else the server acks -EPROTO).
    pub fn is_compatible_with(&self, other: &HandshakeVersion) -> bool {
        self.version[0] == other.version[0] && self.version[1] == other.version[1]
    }
}

/// The REVERSE_LOOKUP request header exactly as dnet_ioclient 2.26.11.1 sends it.
pub fn reverse_lookup_request(indexes_shard_count: i32) -> CmdHeader {
    CmdHeader {
        id: HandshakeVersion::ours(indexes_shard_count).to_id(),
        cmd: command::REVERSE_LOOKUP,
        flags: cmd_flags::DIRECT | cmd_flags::NOLOCK,
        trans: 0,
        ..CmdHeader::default()
    }
}

/// Why a REVERSE_LOOKUP reply was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The node answered with a non-zero status.
    #[error("node answered status {0}")]
    Refused(i32),
    /// The reply carries another command.
    #[error("reply is command {0}")]
    WrongCommand(i32),
    /// The node speaks another major.minor.
    #[error("version {}.{} differs from {}.{}", theirs[0], theirs[1], ours[0], ours[1])]
    Incompatible { theirs: [i32; 4], ours: [i32; 4] },
    /// The announcement payload does not decode.
    #[error("announcement: {0}")]
    Payload(#[from] DecodeError),
}

impl HandshakeError {
    /// The status this failure stands for: the node's own status when it refused, else
    /// -EPROTO.
    pub fn status(&self) -> i32 {
        match self {
            HandshakeError::Refused(status) => *status,
            _ => errno::EPROTO,
        }
    }
}

/// Check a REVERSE_LOOKUP reply header against what we sent with `indexes_shard_count`;
/// the node's version block when it is acceptable.
pub fn check_reverse_lookup_reply(
    reply: &CmdHeader,
    indexes_shard_count: i32,
) -> Result<HandshakeVersion, HandshakeError> {
    if reply.status != 0 {
        return Err(HandshakeError::Refused(reply.status));
    }
    if reply.cmd != command::REVERSE_LOOKUP {
        return Err(HandshakeError::WrongCommand(reply.cmd));
    }
    let theirs = HandshakeVersion::from_id(&reply.id);
    let ours = HandshakeVersion::ours(indexes_shard_count);
    if !ours.is_compatible_with(&theirs) {
        return Err(HandshakeError::Incompatible {
            theirs: theirs.version,
            ours: ours.version,
        });
    }
    Ok(theirs)
}

/// Check a whole REVERSE_LOOKUP reply (see [`check_reverse_lookup_reply`]) and decode the
/// node's announcement from its payload.
pub fn decode_reverse_lookup_reply(
    reply: &CmdHeader,
    payload: &[u8],
    indexes_shard_count: i32,
) -> Result<(HandshakeVersion, NodeAnnouncement), HandshakeError> {
    let theirs = check_reverse_lookup_reply(reply, indexes_shard_count)?;
    Ok((theirs, NodeAnnouncement::decode(payload)?))
}

/// The REVERSE_LOOKUP reply / JOIN payload: a node's addresses and its backends' ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeAnnouncement {
    pub addrs: AddrContainer,
    pub ids: IdContainer,
}

impl NodeAnnouncement {
    /// Decode a payload holding exactly an address container and an id container.
    pub fn decode(bytes: &[u8]) -> Result<NodeAnnouncement, DecodeError> {
        let mut r = Reader::new(bytes, "reverse_lookup_reply");
        let addrs = AddrContainer::read(&mut r)?;
        let ids = IdContainer::read(&mut r)?;
        r.finish()?;
        Ok(NodeAnnouncement { addrs, ids })
    }

    /// Bytes the wire form takes.
    pub fn encoded_len(&self) -> usize {
        self.addrs
            .encoded_len()
            .saturating_add(self.ids.encoded_len())
    }

    /// Append the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.addrs.encode_into(out);
        self.ids.encode_into(out);
    }

    /// The wire form as a new vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// The socket addresses announced (entries of an unknown family are skipped).
    pub fn socket_addrs(&self) -> Vec<SocketAddr> {
        self.addrs
            .addrs
            .iter()
            .filter_map(|a| a.to_socket_addr())
            .collect()
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
    use crate::protocol::{BackendIds, DnetAddr};

    /// The ring id the original server's backend 1 announced in the captures.
    const CAPTURED_RING_ID_HEX: &str = "24934cf0cc6e0f17ef7da7018b2c7546f960ff00bd45e9197605ca53\
        ab938522513324d9975501624915284b553e306d5c0427064f784ed0d84002a839d0ebe5";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn client_request_id_carries_version_and_shard_count() {
        let v = HandshakeVersion {
            version: [2, 26, 11, 1],
            indexes_shard_count: 10,
        };
        let id = v.to_id();
        assert_eq!(
            &id.0[..24],
            &hex("020000001a0000000b00000001000000000000000a000000")[..]
        );
        assert!(id.0[24..].iter().all(|b| *b == 0));
        assert_eq!(HandshakeVersion::from_id(&id), v);
    }

    #[test]
    fn only_major_and_minor_decide_compatibility() {
        let ours = HandshakeVersion::ours(2);
        let mut peer = ours;
        peer.version[2] = 7;
        peer.version[3] = 0;
        peer.indexes_shard_count = 10;
        assert!(ours.is_compatible_with(&peer));
        peer.version[1] = 25;
        assert!(!ours.is_compatible_with(&peer));
    }

    #[test]
    fn reverse_lookup_reply_is_the_captured_124_bytes() {
        let mut id = [0u8; 64];
        id.copy_from_slice(&hex(CAPTURED_RING_ID_HEX));
        let reply = NodeAnnouncement {
            addrs: AddrContainer {
                node_addr_num: 1,
                addrs: vec![DnetAddr::from(
                    "127.0.0.1:1025".parse::<std::net::SocketAddr>().unwrap(),
                )],
            },
            ids: IdContainer {
                backends: vec![BackendIds {
                    backend_id: 1,
                    group_id: 1,
                    flags: 0,
                    ids: vec![RawId(id)],
                }],
            },
        };
        let mut expected = hex("0100000001000000020004017f000001");
        expected.extend_from_slice(&[0u8; 20]);
        expected.extend_from_slice(&hex("1000020001000000010000000100000000000000"));
        expected.extend_from_slice(&hex("01000000"));
        expected.extend_from_slice(&id);
        assert_eq!(expected.len(), 124);
        assert_eq!(reply.encode(), expected);
        assert_eq!(NodeAnnouncement::decode(&expected).unwrap(), reply);
    }

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

    fn reply_header(version: [i32; 4]) -> CmdHeader {
        CmdHeader {
            id: HandshakeVersion {
                version,
                indexes_shard_count: 4,
            }
            .to_id(),
            cmd: command::REVERSE_LOOKUP,
            flags: cmd_flags::REPLY,
            ..CmdHeader::default()
        }
    }

    #[test]
    fn reply_of_the_same_major_minor_is_accepted_with_its_shard_count() {
        let theirs = check_reverse_lookup_reply(&reply_header([2, 26, 3, 0]), 10).unwrap();
        assert_eq!(theirs.indexes_shard_count, 4);
        let payload = NodeAnnouncement::default().encode();
        let (_, ann) =
            decode_reverse_lookup_reply(&reply_header([2, 26, 3, 0]), &payload, 10).unwrap();
        assert_eq!(ann, NodeAnnouncement::default());
    }

    #[test]
    fn refused_foreign_or_garbled_replies_are_errors_with_their_status() {
        let mut refused = reply_header([2, 26, 11, 1]);
        refused.status = errno::EPERM;
        let err = check_reverse_lookup_reply(&refused, 10).unwrap_err();
        assert_eq!(err, HandshakeError::Refused(errno::EPERM));
        assert_eq!(err.status(), errno::EPERM);
        let mut other = reply_header([2, 26, 11, 1]);
        other.cmd = command::LOOKUP;
        let err = check_reverse_lookup_reply(&other, 10).unwrap_err();
        assert_eq!(err.status(), errno::EPROTO);
        let err = check_reverse_lookup_reply(&reply_header([2, 25, 0, 0]), 10).unwrap_err();
        assert!(matches!(err, HandshakeError::Incompatible { .. }));
        assert_eq!(err.to_string(), "version 2.25 differs from 2.26");
        let err =
            decode_reverse_lookup_reply(&reply_header([2, 26, 0, 0]), &[1, 0], 10).unwrap_err();
        assert!(matches!(err, HandshakeError::Payload(_)));
    }

    #[test]
    fn announcement_with_a_cut_id_container_is_rejected() {
        let reply = NodeAnnouncement::default();
        let bytes = reply.encode();
        assert_eq!(bytes.len(), 12);
        assert!(NodeAnnouncement::decode(&bytes[..10]).is_err());
    }
}
