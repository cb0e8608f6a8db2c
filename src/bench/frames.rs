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
use crate::key::{RawId, ID_SIZE_BYTES};
use crate::protocol::{
    cmd_flags, cmd_offset, command, sph_flags, CmdHeader, DnetAddr, DnetTime, ExecPayload, IoAttr,
    Sph, HEADER_SIZE_BYTES,
};
use std::net::SocketAddr;
use std::ops::Range;

const ID_RANGE: Range<usize> = cmd_offset::ID..cmd_offset::ID + ID_SIZE_BYTES;
const GROUP_RANGE: Range<usize> = cmd_offset::GROUP_ID..cmd_offset::GROUP_ID + 4;
const BACKEND_RANGE: Range<usize> = cmd_offset::BACKEND_ID..cmd_offset::BACKEND_ID + 4;
const TRANS_RANGE: Range<usize> = cmd_offset::TRANS..cmd_offset::TRANS + 8;
/// `io_attr.parent` (or `sph.src`): the first id of the payload.
const PAYLOAD_KEY_1: Range<usize> = HEADER_SIZE_BYTES..HEADER_SIZE_BYTES + ID_SIZE_BYTES;
/// `io_attr.id`: the id right after it.
const PAYLOAD_KEY_2: Range<usize> = PAYLOAD_KEY_1.end..PAYLOAD_KEY_1.end + ID_SIZE_BYTES;

/// Largest value a benchmark may send.
pub const VALUE_SIZE_MAX_BYTES: usize = 64 << 20;

/// Most value sizes a run with `value_size_max_bytes` writes (log-spaced classes).
pub const SIZE_CLASSES_MAX: usize = 8;

/// One encoded frame per operation, and one WRITE frame per value size class.
#[derive(Debug, Clone)]
pub struct RequestTemplates {
    frames: [Vec<u8>; 5],
    /// (value size, WRITE frame) per class; only the fixed size without a maximum.
    writes: Vec<(usize, Vec<u8>)>,
}

/// The value sizes of a run: `min` alone, or up to [`SIZE_CLASSES_MAX`] sizes spaced evenly
/// on a log scale from `min` to `max`.
pub fn size_classes(min: usize, max: usize) -> Vec<usize> {
    if max <= min {
        return vec![min];
    }
    let (lo, hi) = ((min.max(1)) as f64, max as f64);
    let steps = SIZE_CLASSES_MAX - 1;
    let mut v: Vec<usize> = (0..=steps)
        .map(|i| (lo * (hi / lo).powf(i as f64 / steps as f64)).round() as usize)
        .collect();
    v[0] = min;
    v[steps] = max;
    v.dedup();
    v
}

fn write_frame(size: usize, config: &BenchConfig, stamp: DnetTime) -> Vec<u8> {
    // A recognisable, non-constant value (compressible data would flatter nothing here).
    let value: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(131) % 251) as u8)
        .collect();
    let mut p = IoAttr {
        size: value.len() as u64,
        flags: config.io_flags,
        timestamp: stamp,
        ..IoAttr::default()
    }
    .encode()
    .to_vec();
    p.extend_from_slice(&value);
    frame_of(Op::Write, &p)
}

fn frame_of(op: Op, payload: &[u8]) -> Vec<u8> {
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
    frame.extend_from_slice(payload);
    frame
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
        let largest = config.value_size_bytes.max(config.value_size_max_bytes);
        if largest > VALUE_SIZE_MAX_BYTES {
            return Err(BenchError::Config(format!(
                "value size {largest} exceeds {VALUE_SIZE_MAX_BYTES} bytes"
            )));
        }
        let value: Vec<u8> = (0..config.value_size_bytes)
            .map(|i| (i.wrapping_mul(131) % 251) as u8)
            .collect();
        let stamp = DnetTime::now();
        let frames = Op::ALL.map(|op| {
            let payload = match op {
                Op::Write => return write_frame(config.value_size_bytes, config, stamp),
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
            frame_of(op, &payload)
        });
        let writes = size_classes(config.value_size_bytes, config.value_size_max_bytes)
            .into_iter()
            .map(|size| (size, write_frame(size, config, stamp)))
            .collect();
        Ok(RequestTemplates { frames, writes })
    }

    /// The value size of each WRITE class.
    pub fn write_sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.writes.iter().map(|w| w.0)
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
        Self::append_frame(
            &self.frames[op.index()],
            op,
            id,
            group,
            backend_id,
            trans,
            out,
        );
    }

    /// Append a WRITE of value size class `class` (see [`RequestTemplates::write_sizes`]).
    #[inline]
    pub fn append_write(
        &self,
        class: usize,
        id: &RawId,
        group: u32,
        backend_id: i32,
        trans: u64,
        out: &mut Vec<u8>,
    ) {
        let frame = self.writes.get(class).map_or(&self.frames[0], |w| &w.1);
        Self::append_frame(frame, Op::Write, id, group, backend_id, trans, out);
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn append_frame(
        template: &[u8],
        op: Op,
        id: &RawId,
        group: u32,
        backend_id: i32,
        trans: u64,
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.extend_from_slice(template);
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
    fn size_classes_span_the_range_on_a_log_scale() {
        assert_eq!(size_classes(100, 0), vec![100]);
        let c = size_classes(100, 65_536);
        assert_eq!(c.len(), SIZE_CLASSES_MAX);
        assert_eq!((c[0], c[7]), (100, 65_536));
        assert!(c.windows(2).all(|w| w[1] > w[0] * 2 && w[1] < w[0] * 3));
        let config = BenchConfig {
            value_size_bytes: 100,
            value_size_max_bytes: 65_536,
            ..BenchConfig::default()
        };
        let t = RequestTemplates::new(&config, "127.0.0.1:1025".parse().unwrap()).unwrap();
        let id = RawId::from_key(b"k");
        let mut out = Vec::new();
        t.append_write(7, &id, 1, 2, 3, &mut out);
        let (frame, _) = split_frame(&out, 1 << 20).unwrap();
        let io = IoAttr::decode(frame.payload).unwrap();
        assert_eq!((io.id, io.size), (id, 65_536));
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
