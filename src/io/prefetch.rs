//! Cache prefetch hints: start loading memory that a request about to be served will touch,
//! so that the cache misses of a batch of requests overlap instead of waiting one by one.
//! A hint never faults and changes no state a program can see; on targets without one it
//! does nothing.

#![allow(unsafe_code)]

/// Start loading the cache lines of `*r`.
#[inline]
pub fn prefetch<T>(r: &T) {
    let start = (r as *const T).cast::<u8>();
    prefetch_addr(start as usize);
    let size = std::mem::size_of::<T>();
    if size > 64 {
        prefetch_addr(start as usize + size - 1);
    }
}

/// Start loading the cache line holding address `addr`, which need not be mapped.
#[inline]
pub(crate) fn prefetch_addr(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults, whatever the address, and has no
    // architectural effect; no memory is read into the program.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}
