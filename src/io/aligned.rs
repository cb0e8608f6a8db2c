//! [`AlignedBuf`]: a zeroed heap buffer whose start and length are multiples of
//! [`DIRECT_ALIGN_BYTES`], as reads of a file opened with `O_DIRECT` require.
//!
//! `O_DIRECT` moves the bytes between the device and the buffer without the page cache, so
//! the buffer, the file offset and the length must all be aligned to the device's logical
//! block. 4 KiB covers every block device in use (512-byte and 4 KiB sectors alike).
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment of the buffer, of the file offset and of the length of a direct read.
pub const DIRECT_ALIGN_BYTES: u64 = 4096;

/// A zeroed, [`DIRECT_ALIGN_BYTES`]-aligned heap buffer of a fixed length.
#[derive(Debug)]
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes rounded up to the alignment; `None` for 0 bytes or a
    /// size the allocator cannot describe.
    pub fn zeroed(len: usize) -> Option<AlignedBuf> {
        let align = DIRECT_ALIGN_BYTES as usize;
        let len = len.checked_next_multiple_of(align)?;
        if len == 0 {
            return None;
        }
        let layout = Layout::from_size_align(len, align).ok()?;
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        Some(AlignedBuf { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The start of the buffer, for the kernel to write into.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` owns `len` initialised (zeroed, then written) bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let align = DIRECT_ALIGN_BYTES as usize;
        if let Ok(layout) = Layout::from_size_align(self.len, align) {
            // SAFETY: allocated in `zeroed` with this very layout, freed once here.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_zeroed_and_rounded_up_to_whole_blocks() {
        let b = AlignedBuf::zeroed(5000).expect("buffer");
        assert_eq!(b.len(), 8192);
        assert_eq!(
            b.as_slice().as_ptr() as usize % DIRECT_ALIGN_BYTES as usize,
            0
        );
        assert!(b.as_slice().iter().all(|&x| x == 0));
        assert!(AlignedBuf::zeroed(0).is_none());
    }
}
