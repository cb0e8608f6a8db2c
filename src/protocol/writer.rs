//! A little-endian writer over a fixed, correctly sized output slice. Encoders size their
//! output from the structure's constant size, so running past the end is a bug: it is caught
//! by a debug assertion and otherwise writes nothing rather than panicking.

/// Sequential little-endian writer into `&mut [u8]`.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn bytes(&mut self, src: &[u8]) {
        let end = self.pos.saturating_add(src.len());
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => dst.copy_from_slice(src),
            None => debug_assert!(false, "writer overflow at {} + {}", self.pos, src.len()),
        }
        self.pos = end;
    }

    pub fn zeros(&mut self, len: usize) {
        let end = self.pos.saturating_add(len);
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.fill(0);
        } else {
            debug_assert!(false, "writer overflow at {} + {}", self.pos, len);
        }
        self.pos = end;
    }

    pub fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.bytes(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}
