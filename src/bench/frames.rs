//! Pre-encoded request frames. Each operation's frame is built once; a request copies it
//! into the connection's send buffer and patches the key, group, backend and trans.
//!
//! ```text
//! off  size  field (all frames)              payload-specific key copies
//!   0    64  cmd.id      <- key               WRITE/READ/DEL: io_attr.parent @120, io_attr.id @184
//!  64     4  cmd.group   <- group             EXEC:           sph.src        @120
//!  84     4  cmd.backend <- route backend     LOOKUP:         none (header only)
//! 104     8  cmd.trans   <- slot | seq << 16
//! 120     -  payload: io_attr (+ value) | sph + event + data | nothing
//! ```

use super::{BenchConfig, BenchError, Op};
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, command, sph_flags, CmdHeader, DnetAddr, DnetTime, ExecPayload, IoAttr, Sph,
    HEADER_SIZE_BYTES,
};
use std::net::SocketAddr;

const ID_RANGE: std::ops::Range<usize> = 0..64;
const GROUP_RANGE: std::ops::Range<usize> = 64..68;
const BACKEND_RANGE: std::ops::Range<usize> = 84..88;
const TRANS_RANGE: std::ops::Range<usize> = 104..112;
const PAYLOAD_KEY_1: std::ops::Range<usize> = 120..184;
const PAYLOAD_KEY_2: std::ops::Range<usize> = 184..248;

/// Largest value a benchmark may send.
pub const VALUE_SIZE_MAX_BYTES: usize = 64 << 20;

/// One encoded frame per operation.
#[derive(Debug, Clone)]
pub struct RequestTemplates {
    frames: [Vec<u8>; 5],
}

fn cmd_of(op: Op) -> i32 {
    match op {
        Op::Write => command::WRITE,
        Op::Read => command::READ,
        Op::Lookup => command::LOOKUP,
        Op::Remove => command::DEL,
        Op::Exec => command::EXEC,
    }
}

impl RequestTemplates {
    /// Encode every operation's frame for `config`; `node_addr` goes into the EXEC sph.
    pub fn new(
        config: &BenchConfig,
        node_addr: SocketAddr,
    ) -> Result<RequestTemplates, BenchError> {
        if config.value_size_bytes > VALUE_SIZE_MAX_BYTES {
            return Err(BenchError::Config(format!(
                "value size {} exceeds {VALUE_SIZE_MAX_BYTES} bytes",
                config.value_size_bytes
            )));
        }
        // A recognisable, non-constant value (compressible data would flatter nothing here).
        let value: Vec<u8> = (0..config.value_size_bytes)
            .map(|i| (i.wrapping_mul(131) % 251) as u8)
            .collect();
        let stamp = DnetTime::now();
        let frames = Op::ALL.map(|op| {
            let payload = match op {
                Op::Write => {
                    let mut p = IoAttr {
                        size: value.len() as u64,
                        flags: config.io_flags,
                        timestamp: stamp,
                        ..IoAttr::default()
                    }
                    .encode()
                    .to_vec();
                    p.extend_from_slice(&value);
                    p
                }
                Op::Read | Op::Remove => IoAttr {
                    flags: config.io_flags,
                    ..IoAttr::default()
                }
                .encode()
                .to_vec(),
                Op::Lookup => Vec::new(),
                Op::Exec => ExecPayload {
                    sph: Sph {
                        flags: sph_flags::SRC_BLOCK,
                        src_key: -1,
                        addr: DnetAddr::from(node_addr),
                        ..Sph::default()
                    },
                    event: config.exec_event.as_bytes(),
                    data: &value,
                }
                .encode(),
            };
            let mut flags = cmd_flags::NEED_ACK;
            if op == Op::Exec {
                flags |= cmd_flags::NOLOCK;
            }
            let header = CmdHeader {
                cmd: cmd_of(op),
                flags,
                size: payload.len() as u64,
                ..CmdHeader::default()
            };
            let mut frame = Vec::with_capacity(HEADER_SIZE_BYTES + payload.len());
            header.encode_into(&mut frame);
            frame.extend_from_slice(&payload);
            frame
        });
        Ok(RequestTemplates { frames })
    }

    /// Bytes one request of `op` takes on the wire.
    pub fn frame_len(&self, op: Op) -> usize {
        self.frames[op.index()].len()
    }

    /// Append a request for `op` on key `id` to `out`.
    #[inline]
    pub fn append(
        &self,
        op: Op,
        id: &RawId,
        group: u32,
        backend_id: i32,
        trans: u64,
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.extend_from_slice(&self.frames[op.index()]);
        let frame = &mut out[start..];
        frame[ID_RANGE].copy_from_slice(&id.0);
        frame[GROUP_RANGE].copy_from_slice(&group.to_le_bytes());
        let backend = if op == Op::Lookup { 0 } else { backend_id };
        frame[BACKEND_RANGE].copy_from_slice(&backend.to_le_bytes());
        frame[TRANS_RANGE].copy_from_slice(&trans.to_le_bytes());
        match op {
            Op::Write | Op::Read | Op::Remove => {
                frame[PAYLOAD_KEY_1].copy_from_slice(&id.0);
                frame[PAYLOAD_KEY_2].copy_from_slice(&id.0);
            }
            Op::Exec => frame[PAYLOAD_KEY_1].copy_from_slice(&id.0),
            Op::Lookup => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{split_frame, ExecPayload};

    fn templates(value: usize) -> RequestTemplates {
        let config = BenchConfig {
            value_size_bytes: value,
            exec_event: "app@event".into(),
            ..BenchConfig::default()
        };
        RequestTemplates::new(&config, "127.0.0.1:1025".parse().unwrap()).unwrap()
    }

    #[test]
    fn patched_write_decodes_as_a_write_of_that_key() {
        let t = templates(100);
        let id = RawId::from_key(b"k1");
        let mut out = vec![9u8; 3];
        t.append(Op::Write, &id, 2, 5, 77, &mut out);
        let (frame, used) = split_frame(&out[3..], 1 << 20).unwrap();
        assert_eq!(used, t.frame_len(Op::Write));
        assert_eq!(frame.header.cmd, command::WRITE);
        assert_eq!(frame.header.id, id);
        assert_eq!((frame.header.group_id, frame.header.backend_id), (2, 5));
        assert_eq!(frame.header.trans, 77);
        assert_eq!(frame.header.flags, cmd_flags::NEED_ACK);
        let io = IoAttr::decode(frame.payload).unwrap();
        assert_eq!((io.id, io.parent, io.size), (id, id, 100));
        assert_eq!(frame.payload.len(), 208 + 100);
    }

    #[test]
    fn exec_frame_carries_sph_event_and_payload() {
        let t = templates(10);
        let id = RawId::from_key(b"k2");
        let mut out = Vec::new();
        t.append(Op::Exec, &id, 1, 0, 3, &mut out);
        let (frame, _) = split_frame(&out, 1 << 20).unwrap();
        let exec = ExecPayload::decode(frame.payload).unwrap();
        assert_eq!(exec.event, b"app@event");
        assert_eq!(exec.data.len(), 10);
        assert_eq!(exec.sph.src, id);
        assert_eq!(exec.sph.flags, sph_flags::SRC_BLOCK);
        assert_eq!(exec.sph.src_key, -1);
    }

    #[test]
    fn lookup_is_a_bare_header_with_backend_zero() {
        let t = templates(100);
        let mut out = Vec::new();
        t.append(Op::Lookup, &RawId::from_key(b"k"), 1, 4, 9, &mut out);
        let (frame, used) = split_frame(&out, 1 << 20).unwrap();
        assert_eq!(used, HEADER_SIZE_BYTES);
        assert_eq!(frame.header.cmd, command::LOOKUP);
        assert_eq!(frame.header.backend_id, 0);
    }
}
