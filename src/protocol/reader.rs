//! A bounds-checked cursor over `&[u8]` for the decoders: every read returns an error
//! instead of panicking, and `finish` rejects trailing bytes.

use super::DecodeError;

/// Little-endian reader over a borrowed byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    field: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`; `field` names the structure in errors.
    pub fn new(bytes: &'a [u8], field: &'static str) -> Self {
        Self { bytes, field }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// The unconsumed bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// Consume exactly `len` bytes.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < len {
            return Err(DecodeError::TooShort {
                field: self.field,
                expected: len,
                actual: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    /// Consume exactly `N` bytes, borrowed as an array (no copy).
    pub fn fixed<const N: usize>(&mut self) -> Result<&'a [u8; N], DecodeError> {
        let Some((head, tail)) = self.bytes.split_first_chunk::<N>() else {
            return Err(DecodeError::TooShort {
                field: self.field,
                expected: N,
                actual: self.bytes.len(),
            });
        };
        self.bytes = tail;
        Ok(head)
    }

    /// Consume a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.fixed::<N>().copied()
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array::<1>()?))
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Read `count` elements of `elem_size_bytes` each with `read`, after checking that the
    /// bytes for all of them are present: a count from the wire never sizes an allocation
    /// larger than the input itself.
    pub fn counted<T>(
        &mut self,
        field: &'static str,
        count: i64,
        elem_size_bytes: usize,
        mut read: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = super::count_within(field, count, elem_size_bytes, self.remaining())?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(read(self)?);
        }
        Ok(out)
    }

    /// `count` 64-byte ids (see [`Reader::counted`]).
    pub fn ids(
        &mut self,
        field: &'static str,
        count: i64,
    ) -> Result<Vec<crate::key::RawId>, DecodeError> {
        self.counted(field, count, crate::key::ID_SIZE_BYTES, |r| {
            Ok(crate::key::RawId(r.array()?))
        })
    }

    /// Fail unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing {
                field: self.field,
                extra: self.bytes.len(),
            })
        }
    }
}
/// The `N` bytes at `at` of a fixed-size wire structure (offsets are constants inside it).
pub(crate) fn field<const N: usize, const L: usize>(b: &[u8; L], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = b.get(at..).and_then(|rest| rest.get(..N)) {
        out.copy_from_slice(src);
    }
    out
}

/// Store `v` at `at` of a fixed-size wire structure.
pub(crate) fn put<const L: usize>(out: &mut [u8; L], at: usize, v: &[u8]) {
    if let Some(dst) = out.get_mut(at..).and_then(|rest| rest.get_mut(..v.len())) {
        dst.copy_from_slice(v);
    }
}
