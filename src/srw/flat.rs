//! The worker frames the exec path carries, read straight from the bytes: `[channel, type,
//! args]` whose args are strings, binaries or integers (invoke, chunk, close, heartbeat,
//! handshake). Everything else is left to the general msgpack reader in
//! [`frame`](super::frame).
//!
//! ```text
//! 0x93                      array of 3
//! uint                      channel (fixint, 0xcc-0xcf)
//! uint                      type
//! 0x90-0x9f                 args, up to 15
//!   fixint / 0xcc-0xcf / 0xe0-0xff      integer
//!   0xa0-0xbf, 0xd9-0xdb len bytes      str (UTF-8)
//!   0xc4-0xc6 len bytes                 bin
//! ```

use super::frame::{Frame, FRAME_BYTES_MAX};
use rmpv::Value;

/// The common frame, complete in `buf`: `[channel, type, args]` whose args are strings,
/// binaries and integers, read straight from the bytes (no intermediate value tree).
/// `None` for anything else (incomplete, headers, nested args, bad UTF-8), which
/// [`decode`](super::frame::decode) then reads the general way.
pub(super) fn decode_flat(buf: &[u8]) -> Option<(Frame, usize)> {
    let mut r = Flat { buf, at: 0 };
    if r.byte()? != 0x93 {
        return None;
    }
    let channel = r.uint()?;
    let kind = r.uint()?;
    let count = match r.byte()? {
        m @ 0x90..=0x9f => usize::from(m & 0x0f),
        _ => return None,
    };
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        args.push(r.scalar()?);
    }
    (r.at <= FRAME_BYTES_MAX).then_some((
        Frame {
            channel,
            kind,
            args,
        },
        r.at,
    ))
}

/// A cursor over msgpack bytes for [`decode_flat`]; every read is bounds-checked.
struct Flat<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Flat<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.buf.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        )
    }

    fn uint(&mut self) -> Option<u64> {
        match self.byte()? {
            m @ 0x00..=0x7f => Some(u64::from(m)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    fn len_then_bytes(&mut self, len_bytes: usize) -> Option<Vec<u8>> {
        let len = usize::try_from(self.be(len_bytes)?).ok()?;
        Some(self.take(len)?.to_vec())
    }

    fn scalar(&mut self) -> Option<Value> {
        let marker = *self.buf.get(self.at)?;
        let bin = |v: Vec<u8>| Some(Value::Binary(v));
        let text = |v: Vec<u8>| String::from_utf8(v).ok().map(Value::from);
        match marker {
            0x00..=0x7f | 0xcc..=0xcf => self.uint().map(Value::from),
            0xe0..=0xff => {
                self.at += 1;
                Some(Value::from(i64::from(i8::from_be_bytes([marker]))))
            }
            0xa0..=0xbf => {
                self.at += 1;
                text(self.take(usize::from(marker & 0x1f))?.to_vec())
            }
            0xc4 | 0xc5 | 0xc6 | 0xd9 | 0xda | 0xdb => {
                self.at += 1;
                let len_bytes = match marker {
                    0xc4 | 0xd9 => 1,
                    0xc5 | 0xda => 2,
                    _ => 4,
                };
                let v = self.len_then_bytes(len_bytes)?;
                if marker <= 0xc6 {
                    bin(v)
                } else {
                    text(v)
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::srw::frame::{decode, encode_into, error, PYTHON_ERROR_CATEGORY};

    #[test]
    fn flat_and_general_decoders_agree_on_every_scalar_kind() {
        let args = vec![
            Value::from(0),
            Value::from(127),
            Value::from(200),
            Value::from(70_000),
            Value::from(u64::MAX),
            Value::from(-5),
            Value::from("short"),
            Value::from("x".repeat(300)),
            Value::Binary(vec![7; 40]),
            Value::Binary(vec![9; 70_000]),
        ];
        let mut bytes = Vec::new();
        encode_into(&mut bytes, 300, 2, &args);
        let (f, used) = decode_flat(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!((f.channel, f.kind, &f.args), (300, 2, &args));
        for cut in 0..bytes.len() {
            assert!(decode_flat(&bytes[..cut]).is_none());
        }
        let nested = error(4, PYTHON_ERROR_CATEGORY, 100, "x");
        assert!(decode_flat(&nested).is_none());
        assert!(decode(&nested).unwrap().is_some());
    }
}
