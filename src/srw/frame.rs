//! The Cocaine worker protocol v1 on the wire: msgpack arrays back to back on a unix stream
//! socket, no length prefix. Shared by the node (engine side) and the Rust worker SDK.
//!
//! ```text
//! frame   = [channel:uint, type:uint, args:array] (a 4th element, headers, is accepted
//!           and ignored on input; never sent)
//! channel 1 (control):  type 0 args [uuid]     handshake (first frame, worker -> engine)
//!                       type 0 args []         heartbeat (both ways; engine replies at once)
//!                       type 1 args [code, reason]  terminate (both ways)
//! channel n >= 2:       type 0 args [bytes]    invoke (first frame of a channel: event name)
//!                                              then chunk
//!                       type 1 args [[category, code], reason]   error (terminal)
//!                       type 2 args []         close / choke (terminal)
//! ```
//! Bytes (event names, payloads) are sent as msgpack bin; on input str and bin are both
//! accepted. A frame larger than [`FRAME_BYTES_MAX`] is a protocol error.

use rmpv::Value;
use std::io::Cursor;

/// The largest frame either side accepts (the Python worker breaks above 100 MiB).
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Deepest nesting of arrays and maps a frame may have (a frame needs 3: the frame, its
/// args, an error's `[category, code]`; headers add one). Deeper input is a protocol
/// error rather than a recursion as deep as the peer likes.
pub const FRAME_NESTING_MAX: usize = 16;
/// The control channel.
pub const CONTROL_CHANNEL: u64 = 1;
/// First channel the engine uses for an invoke.
pub const FIRST_REQUEST_CHANNEL: u64 = 2;

/// Message types on a channel.
pub mod kind {
    /// Handshake/heartbeat on control; invoke/chunk on a request channel.
    pub const VALUE: u64 = 0;
    /// Terminate on control; error on a request channel.
    pub const ERROR: u64 = 1;
    /// Close (choke) on a request channel.
    pub const CLOSE: u64 = 2;
}

/// Error category the Python framework uses for its own codes.
pub const PYTHON_ERROR_CATEGORY: i64 = 42;

/// Terminate codes the engine sends (cocaine `slave_errors`).
pub mod terminate_code {
    pub const HEARTBEAT_TIMEOUT: i64 = 8;
    pub const ENGINE_STOPPING: i64 = 11;
    pub const IDLE: i64 = 13;
}

/// Why bytes from a peer are not a valid frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame is larger than {FRAME_BYTES_MAX} bytes")]
    TooLarge,
    #[error("malformed msgpack: {0}")]
    Msgpack(String),
    #[error("frame is not [channel, type, args(, headers)]")]
    Shape,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub channel: u64,
    pub kind: u64,
    pub args: Vec<Value>,
}

impl Frame {
    /// The `i`th argument as bytes (str or bin).
    pub fn bytes_arg(&self, i: usize) -> Option<&[u8]> {
        value_bytes(self.args.get(i)?)
    }

    /// For an error frame: `(code, reason)` out of `[[category, code], reason]` (a plain
    /// integer code is accepted too).
    pub fn error_code(&self) -> (i64, String) {
        let code = match self.args.first() {
            Some(Value::Array(pair)) => pair.get(1).and_then(Value::as_i64).unwrap_or(1),
            Some(v) => v.as_i64().unwrap_or(1),
            None => 1,
        };
        let reason = self
            .bytes_arg(1)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        (code, reason)
    }
}

/// Bytes of a str or bin value.
pub fn value_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Binary(b) => Some(b),
        Value::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Decode the first complete frame of `buf`: `Ok(None)` when more bytes are needed,
/// otherwise the frame and the bytes it used.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if let Some(flat) = super::flat::decode_flat(buf) {
        return Ok(Some(flat));
    }
    decode_general(buf)
}

/// [`decode`] without the fast path for flat frames: every frame read through the general
/// msgpack value reader. Both must agree on every input (the fuzz target checks it).
pub fn decode_general(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut cur = Cursor::new(buf);
    let value = match rmpv::decode::read_value_with_max_depth(&mut cur, FRAME_NESTING_MAX) {
        Ok(v) => v,
        Err(e) if is_eof(&e) => {
            return if buf.len() > FRAME_BYTES_MAX {
                Err(FrameError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(e) => return Err(FrameError::Msgpack(e.to_string())),
    };
    let used = usize::try_from(cur.position()).map_err(|_| FrameError::TooLarge)?;
    if used > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge);
    }
    let Value::Array(items) = value else {
        return Err(FrameError::Shape);
    };
    if !(3..=4).contains(&items.len()) {
        return Err(FrameError::Shape);
    }
    let mut it = items.into_iter();
    let channel = it
        .next()
        .and_then(|v| v.as_u64())
        .ok_or(FrameError::Shape)?;
    let kind = it
        .next()
        .and_then(|v| v.as_u64())
        .ok_or(FrameError::Shape)?;
    let Some(Value::Array(args)) = it.next() else {
        return Err(FrameError::Shape);
    };
    if let Some(headers) = it.next() {
        if !headers.is_array() {
            return Err(FrameError::Shape);
        }
    }
    Ok(Some((
        Frame {
            channel,
            kind,
            args,
        },
        used,
    )))
}

fn is_eof(e: &rmpv::decode::Error) -> bool {
    match e {
        rmpv::decode::Error::InvalidMarkerRead(io) | rmpv::decode::Error::InvalidDataRead(io) => {
            io.kind() == std::io::ErrorKind::UnexpectedEof
        }
        _ => false,
    }
}

/// Append the encoding of `[channel, kind, args]` to `out`.
pub fn encode_into(out: &mut Vec<u8>, channel: u64, kind: u64, args: &[Value]) {
    let frame = Value::Array(vec![
        Value::from(channel),
        Value::from(kind),
        Value::Array(args.to_vec()),
    ]);
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(out, &frame);
}

/// Append a frame whose single argument is `bytes` as msgpack bin, without copying the
/// payload into a `Value` first.
pub fn encode_bytes_into(out: &mut Vec<u8>, channel: u64, kind: u64, bytes: &[u8]) {
    let _ = rmp::encode::write_array_len(out, 3);
    let _ = rmp::encode::write_uint(out, channel);
    let _ = rmp::encode::write_uint(out, kind);
    let _ = rmp::encode::write_array_len(out, 1);
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    let _ = rmp::encode::write_bin_len(out, len);
    out.extend_from_slice(bytes);
}

/// `[1, 0, []]`: heartbeat (and the engine's heartbeat reply).
pub fn heartbeat() -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    encode_into(&mut out, CONTROL_CHANNEL, kind::VALUE, &[]);
    out
}

/// `[1, 0, [uuid]]`: the worker's handshake.
pub fn handshake(uuid: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, CONTROL_CHANNEL, kind::VALUE, &[Value::from(uuid)]);
    out
}

/// `[1, 1, [code, reason]]`: terminate.
pub fn terminate(code: i64, reason: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(
        &mut out,
        CONTROL_CHANNEL,
        kind::ERROR,
        &[Value::from(code), Value::from(reason)],
    );
    out
}

/// `[ch, 1, [[category, code], reason]]`: an error on a request channel.
pub fn error(channel: u64, category: i64, code: i64, reason: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let pair = Value::Array(vec![Value::from(category), Value::from(code)]);
    encode_into(&mut out, channel, kind::ERROR, &[pair, Value::from(reason)]);
    out
}

/// `[ch, 2, []]`: close.
pub fn close(channel: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    encode_into(&mut out, channel, kind::CLOSE, &[]);
    out
}

/// One whole request as the engine sends it: invoke(event), one chunk, close.
pub fn request(channel: u64, event: &[u8], chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + event.len() + 32);
    encode_bytes_into(&mut out, channel, kind::VALUE, event);
    encode_bytes_into(&mut out, channel, kind::VALUE, chunk);
    encode_into(&mut out, channel, kind::CLOSE, &[]);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn deeply_nested_frame_is_a_protocol_error_not_a_deep_recursion() {
        // [1, 0, [[[[...]]]]] nested 100 000 deep: 3 bytes of header, then 0x91 per level.
        let mut bytes = vec![0x93, 0x01, 0x00];
        bytes.extend(std::iter::repeat_n(0x91u8, 100_000));
        bytes.push(0x90);
        assert!(matches!(decode(&bytes), Err(FrameError::Msgpack(_))));
        assert!(matches!(
            decode_general(&bytes),
            Err(FrameError::Msgpack(_))
        ));
    }

    #[test]
    fn request_frames_decode_back_in_order_with_bin_payloads() {
        let bytes = request(2, b"ev", b"payload");
        let (a, n1) = decode(&bytes).unwrap().unwrap();
        assert_eq!(
            (a.channel, a.kind, a.bytes_arg(0)),
            (2, 0, Some(&b"ev"[..]))
        );
        assert!(matches!(a.args[0], Value::Binary(_)));
        let (b, n2) = decode(&bytes[n1..]).unwrap().unwrap();
        assert_eq!(b.bytes_arg(0), Some(&b"payload"[..]));
        let (c, n3) = decode(&bytes[n1 + n2..]).unwrap().unwrap();
        assert_eq!((c.channel, c.kind), (2, kind::CLOSE));
        assert_eq!(n1 + n2 + n3, bytes.len());
    }

    #[test]
    fn partial_frame_asks_for_more_bytes() {
        let bytes = handshake("abc");
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]).unwrap(), None);
        }
        assert!(decode(&bytes).unwrap().is_some());
    }

    #[test]
    fn headers_element_is_accepted_and_other_shapes_are_refused() {
        let mut with_headers = Vec::new();
        let v = Value::Array(vec![
            3.into(),
            0.into(),
            Value::Array(vec![Value::from("multi")]),
            Value::Array(vec![]),
        ]);
        rmpv::encode::write_value(&mut with_headers, &v).unwrap();
        let (f, _) = decode(&with_headers).unwrap().unwrap();
        assert_eq!(f.bytes_arg(0), Some(&b"multi"[..]));
        let mut bad = Vec::new();
        rmpv::encode::write_value(&mut bad, &Value::Array(vec![1.into(), 0.into()])).unwrap();
        assert_eq!(decode(&bad), Err(FrameError::Shape));
        let mut not_array = Vec::new();
        rmpv::encode::write_value(&mut not_array, &Value::from(5)).unwrap();
        assert_eq!(decode(&not_array), Err(FrameError::Shape));
    }

    #[test]
    fn error_frame_yields_code_and_reason() {
        let bytes = error(4, PYTHON_ERROR_CATEGORY, 100, "handler failed");
        let (f, _) = decode(&bytes).unwrap().unwrap();
        assert_eq!(f.error_code(), (100, "handler failed".to_string()));
    }

    #[test]
    fn huge_declared_string_without_bytes_is_incomplete_not_an_allocation() {
        let bytes = [0x93, 0x02, 0x00, 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode(&bytes).unwrap(), None);
    }
}
