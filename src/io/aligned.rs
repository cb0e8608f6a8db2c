//! [`AlignedBuf`]: a heap buffer whose start and length are multiples of
//! [`DIRECT_ALIGN_BYTES`], as reads of a file opened with `O_DIRECT` require.
//!
//! `O_DIRECT` moves the bytes between the device and the buffer without the page cache, so
//! the buffer, the file offset and the length must all be aligned to the device's logical
//! block. 4 KiB covers every block device in use (512-byte and 4 KiB sectors alike).
//!
//! A cold read needs one such buffer for the time of one disk access, so each thread keeps
//! the buffers it dropped of up to [`POOLED_BYTES_MAX`] for the next reads of the same
//! size (256 KiB of them per size), instead of a zeroed aligned allocation and its free per
//! read. A buffer is zeroed when it is first allocated; a reused one holds the bytes of an
//! earlier read until the next read overwrites them.
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;

/// Alignment of the buffer, of the file offset and of the length of a direct read.
pub const DIRECT_ALIGN_BYTES: u64 = 4096;

/// Buffers up to this length go back to their thread's pool when dropped.
pub const POOLED_BYTES_MAX: usize = 64 * 1024;

/// Bytes of idle buffers a thread keeps per buffer length.
const POOL_BYTES_PER_SIZE: usize = 256 * 1024;

/// Blocks of [`DIRECT_ALIGN_BYTES`] in the largest pooled buffer.
const POOLED_BLOCKS_MAX: usize = POOLED_BYTES_MAX / DIRECT_ALIGN_BYTES as usize;

thread_local! {
    /// Idle buffers of this thread, by length in blocks less one (freed when it exits).
    static POOL: RefCell<[Vec<Idle>; POOLED_BLOCKS_MAX]> =
        RefCell::new(std::array::from_fn(|_| Vec::new()));
}

/// An idle allocation in the pool, freed if the pool is dropped.
struct Idle(NonNull<u8>, usize);

impl Drop for Idle {
    fn drop(&mut self) {
        free(self.0, self.1);
    }
}

/// Free an allocation of `len` bytes made by [`AlignedBuf::zeroed`].
fn free(ptr: NonNull<u8>, len: usize) {
    if let Ok(layout) = Layout::from_size_align(len, DIRECT_ALIGN_BYTES as usize) {
        // SAFETY: allocated in `AlignedBuf::zeroed` with this very layout; each allocation
        // is owned by one `AlignedBuf` or one `Idle` at a time and freed once, by its
        // last owner.
        unsafe { alloc::dealloc(ptr.as_ptr(), layout) };
    }
}

/// The pool slot of a buffer of `len` bytes (a multiple of the alignment), if pooled.
fn slot_of(len: usize) -> Option<usize> {
    let blocks = len / DIRECT_ALIGN_BYTES as usize;
    (1..=POOLED_BLOCKS_MAX)
        .contains(&blocks)
        .then_some(blocks - 1)
}

/// An aligned heap buffer of a fixed length, its bytes always initialised.
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

    /// A buffer of `len` bytes rounded up to the alignment, for a read to fill: an idle one
    /// of this thread's pool when there is one (its bytes are those of an earlier read),
    /// else a zeroed one. `None` as for [`AlignedBuf::zeroed`].
    pub fn for_read(len: usize) -> Option<AlignedBuf> {
        let rounded = len.checked_next_multiple_of(DIRECT_ALIGN_BYTES as usize)?;
        let reused = slot_of(rounded).and_then(|slot| {
            POOL.try_with(|pool| pool.try_borrow_mut().ok()?.get_mut(slot)?.pop())
                .ok()
                .flatten()
        });
        match reused {
            Some(idle) => {
                let idle = std::mem::ManuallyDrop::new(idle);
                Some(AlignedBuf {
                    ptr: idle.0,
                    len: rounded,
                })
            }
            None => AlignedBuf::zeroed(rounded),
        }
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
        // SAFETY: `ptr` owns `len` initialised bytes (zeroed when allocated, then only ever
        // overwritten) until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Hand the allocation to this thread's pool; `false` when it keeps no more of this
    /// length (or the thread is exiting).
    fn pool(&self) -> bool {
        let Some(slot) = slot_of(self.len) else {
            return false;
        };
        let keep = POOL_BYTES_PER_SIZE / self.len;
        POOL.try_with(|pool| {
            let Ok(mut pool) = pool.try_borrow_mut() else {
                return false;
            };
            match pool.get_mut(slot) {
                Some(idle) if idle.len() < keep => {
                    idle.push(Idle(self.ptr, self.len));
                    true
                }
                _ => false,
            }
        })
        .unwrap_or(false)
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if !self.pool() {
            free(self.ptr, self.len);
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

    #[test]
    fn a_dropped_read_buffer_is_reused_by_the_next_read_of_its_size() {
        std::thread::spawn(|| {
            let mut first = AlignedBuf::for_read(8000).expect("buffer");
            assert_eq!(first.len(), 8192);
            let at = first.as_mut_ptr() as usize;
            drop(first);
            let mut again = AlignedBuf::for_read(8192).expect("buffer");
            assert_eq!(again.as_mut_ptr() as usize, at);
            let mut other = AlignedBuf::for_read(4096).expect("buffer");
            assert_ne!(other.as_mut_ptr() as usize, at);
            assert_eq!(other.as_mut_ptr() as usize % DIRECT_ALIGN_BYTES as usize, 0);
            let big = AlignedBuf::for_read(POOLED_BYTES_MAX + 1).expect("buffer");
            assert_eq!(big.len(), POOLED_BYTES_MAX + 4096);
        })
        .join()
        .expect("thread");
    }
}
