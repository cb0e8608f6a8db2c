//! Shared mappings of data files, for reads and in-place overwrites served straight from the
//! page cache.
//!
//! A read of a few hundred bytes through `preadv2` costs a syscall, a page-cache lookup and a
//! copy; through a mapping it is one copy. An overwrite of bytes already in the file through
//! `pwritev` also walks the file system's write path (on ext4 about 0.8 us for 100 B); a
//! store into a `MAP_SHARED` mapping dirties the same page-cache page, which `fdatasync` of
//! the file then writes out like any other. Two things make a mapping riskier than a
//! syscall, and both are handled here:
//!
//! - A media error, or a file cut short under the mapping, raises `SIGBUS` on the access
//!   instead of returning `EIO`. [`Mapping::with_bytes`] arms a per-thread guard around the
//!   caller's closure; the process-wide handler, when the faulting address is inside the
//!   armed range, maps a zero page over the faulting page so the access completes, and the
//!   call then answers `EIO` (for a store: the bytes may be partly in the file, and the
//!   caller writes them again with a syscall, which reports the real error) (the closure's result is discarded, and the mapping reports
//!   itself [`Mapping::poisoned`] so its owner stops using it). A `SIGBUS` anywhere else gets
//!   the default action, as without the handler.
//! - A page that is not cached blocks the thread on the disk (a major fault), where a
//!   `preadv2(RWF_NOWAIT)` would have handed the read to the ring. The closure's duration is
//!   returned in CPU timestamp ticks so the owner can detect such reads and step back to the
//!   non-blocking path for a while.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{compiler_fence, AtomicUsize, Ordering};
use std::sync::Once;

thread_local! {
    /// `[start, end)` of the bytes the current thread's closure may touch; 0..0 when unarmed.
    static GUARD_START: Cell<usize> = const { Cell::new(0) };
    static GUARD_END: Cell<usize> = const { Cell::new(0) };
    /// A `SIGBUS` hit the armed range.
    static FAULTED: Cell<bool> = const { Cell::new(false) };
}

static INSTALL: Once = Once::new();

/// The page size the handler replaces a faulting page with: the system's, read when the
/// handler is installed (4 KiB until then; 16 or 64 KiB on some arm64 and ppc64 kernels).
static PAGE_BYTES: AtomicUsize = AtomicUsize::new(4096);

fn page_bytes() -> usize {
    PAGE_BYTES.load(Ordering::Relaxed)
}

/// A `MAP_SHARED` view of the first `len` bytes of a file, read-only or writable.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    poisoned: Cell<bool>,
    writable: bool,
}

impl Mapping {
    /// Map `len` bytes of `file` (more than its length is allowed: the tail pages become
    /// usable as the file grows); `writable` needs a file opened for writing.
    pub fn new(file: &File, len: usize, writable: bool) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        install_handler()?;
        // SAFETY: a fresh mapping at an address the kernel picks; it aliases no Rust object.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                if writable {
                    libc::PROT_READ | libc::PROT_WRITE
                } else {
                    libc::PROT_READ
                },
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: advice on the mapping just made, over its whole length; it changes no
        // contents. Records are read at random: a fault reads its own pages, not a
        // readahead window around them. Failure only leaves the default advice.
        unsafe { libc::madvise(ptr, len, libc::MADV_RANDOM) };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Mapping {
            ptr,
            len,
            poisoned: Cell::new(false),
            writable,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A `SIGBUS` replaced some page of this mapping with zeros: it no longer shows the file.
    pub fn poisoned(&self) -> bool {
        self.poisoned.get()
    }

    /// Run `f` over bytes `[offset, offset + len)` of the mapping with the `SIGBUS` guard
    /// armed. `None` when the range is outside the mapping or the mapping is poisoned;
    /// `Some(Err(EIO))` when an access faulted. On success, also the ticks `f` took.
    ///
    /// The caller must only ask for bytes inside the file's current length.
    pub fn with_bytes<R>(
        &self,
        offset: usize,
        len: usize,
        timed: bool,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<io::Result<(R, u64)>> {
        let end = offset.checked_add(len)?;
        if end > self.len || self.poisoned.get() {
            return None;
        }
        // SAFETY: `offset + len <= self.len`, so the range lies inside the live mapping,
        // which stays mapped while `self` is borrowed. The bytes are only read. The files
        // are written by this process alone (the data directory's lock file keeps a second
        // node out), through syscalls or `write_at` on this thread, never while `f` runs. An access that
        // faults is completed by the handler against a zero page and the result discarded.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset), len) };
        Some(self.guarded(bytes.as_ptr() as usize, len, timed, || f(bytes)))
    }

    /// Start loading bytes `[offset, offset + len)` into the CPU cache (a hint: nothing
    /// happens for a range outside the mapping, or pages not mapped yet).
    pub fn prefetch(&self, offset: usize, len: usize) {
        let Some(end) = offset.checked_add(len) else {
            return;
        };
        if len == 0 || end > self.len {
            return;
        }
        let base = self.ptr.as_ptr() as usize;
        let mut line = (base + offset) & !63;
        while line < base + end {
            super::prefetch::prefetch_addr(line);
            line += 64;
        }
    }

    /// Store `parts`, back to back, at `offset` of a writable mapping. `None` when the range
    /// is outside the mapping, or the mapping is read-only or poisoned; `Some(Err(EIO))` when
    /// a store faulted (the bytes may be partly stored).
    ///
    /// The caller must only write bytes inside the file's current length.
    pub fn write_at(&self, offset: usize, parts: &[&[u8]]) -> Option<io::Result<()>> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let end = offset.checked_add(len)?;
        if end > self.len || self.poisoned.get() || !self.writable {
            return None;
        }
        // SAFETY: `offset + len <= self.len`: every store below lands inside the live,
        // writable mapping; the sources are caller slices, which cannot overlap a mapping
        // that no Rust reference points into outside `with_bytes` closures.
        let start = unsafe { self.ptr.as_ptr().add(offset) };
        let res = self.guarded(start as usize, len, false, || {
            let mut at = start;
            for part in parts {
                // SAFETY: `at .. at + part.len()` stays inside `[start, start + len)`.
                unsafe {
                    std::ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
                    at = at.add(part.len());
                }
            }
        });
        Some(res.map(|((), _)| ()))
    }

    /// Run `f` with the `SIGBUS` guard armed over `[start, start + len)`; with `timed`, also
    /// the ticks it took (else 0: reading the counter can cost a trap to the hypervisor).
    fn guarded<R>(
        &self,
        start: usize,
        len: usize,
        timed: bool,
        f: impl FnOnce() -> R,
    ) -> io::Result<(R, u64)> {
        GUARD_START.with(|g| g.set(start));
        GUARD_END.with(|g| g.set(start + len));
        FAULTED.with(|g| g.set(false));
        // The handler runs on this thread between any two instructions of `f`: the guard
        // must be armed before `f`'s accesses and read after them, which only a compiler
        // fence guarantees (nothing else orders plain stores against the mapped loads).
        compiler_fence(Ordering::SeqCst);
        let began = if timed { ticks() } else { 0 };
        let out = f();
        let took = if timed {
            ticks().wrapping_sub(began)
        } else {
            0
        };
        compiler_fence(Ordering::SeqCst);
        GUARD_START.with(|g| g.set(0));
        GUARD_END.with(|g| g.set(0));
        if FAULTED.with(|g| g.replace(false)) {
            self.poisoned.set(true);
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok((out, took))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned; no borrow outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A cheap monotonic-enough tick counter for telling a page-cache copy from a disk wait.
#[cfg(target_arch = "x86_64")]
fn ticks() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    use std::sync::OnceLock;
    static BASE: OnceLock<std::time::Instant> = OnceLock::new();
    let base = BASE.get_or_init(std::time::Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn install_handler() -> io::Result<()> {
    let mut failed = None;
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions; it answers -1 for an unknown name.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(page) = usize::try_from(page) {
            if page.is_power_of_two() {
                PAGE_BYTES.store(page, Ordering::Relaxed);
            }
        }
        // SAFETY: a zeroed `sigaction` is a valid starting value; the handler only touches
        // const-initialised thread-locals without destructors and calls `mmap`/`sigaction`.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
                failed = Some(io::Error::last_os_error());
            }
        }
    });
    failed.map_or(Ok(()), Err)
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` for an `SA_SIGINFO` handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let start = GUARD_START.with(Cell::get);
    let end = GUARD_END.with(Cell::get);
    if addr >= start && addr < end {
        let page_len = page_bytes();
        let page = addr & !(page_len - 1);
        // SAFETY: `page` lies inside a mapping this thread armed; replacing it with a private
        // zero page only changes what the guarded closure reads or stores, and its result
        // is discarded. The replacement is writable so that a faulting store completes too.
        let done = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                page_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if done != libc::MAP_FAILED {
            FAULTED.with(|g| g.set(true));
            return;
        }
    }
    // Not ours (or the page could not be replaced): take the default action, which the
    // faulting instruction triggers again on return.
    // SAFETY: resetting a signal's disposition to the default is always valid.
    unsafe {
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(pages: usize) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        let bytes: Vec<u8> = (0..pages * page_bytes()).map(|i| (i % 251) as u8).collect();
        f.write_all(&bytes).unwrap();
        (dir, f)
    }

    #[test]
    fn mapped_bytes_are_the_file_bytes_and_follow_later_writes() {
        use std::os::unix::fs::FileExt;
        let (_dir, f) = file_of(2);
        let map = Mapping::new(&f, 4 * page_bytes(), false).unwrap();
        let (got, _) = map
            .with_bytes(5000, 3, true, <[u8]>::to_vec)
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            vec![(5000 % 251) as u8, (5001 % 251) as u8, (5002 % 251) as u8]
        );
        f.write_all_at(b"xyz", 5000).unwrap();
        let (got, _) = map
            .with_bytes(5000, 3, true, <[u8]>::to_vec)
            .unwrap()
            .unwrap();
        assert_eq!(got, b"xyz");
        assert!(map
            .with_bytes(4 * page_bytes() - 1, 2, true, |_| ())
            .is_none());
    }

    #[test]
    fn a_read_past_a_file_cut_short_is_eio_and_the_process_lives() {
        let (_dir, f) = file_of(3);
        let map = Mapping::new(&f, 3 * page_bytes(), true).unwrap();
        f.set_len(page_bytes() as u64).unwrap();
        let res = map.with_bytes(2 * page_bytes() + 10, 100, true, |b| {
            b.iter().map(|&x| u64::from(x)).sum::<u64>()
        });
        let err = res.unwrap().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
        assert!(map.poisoned());
        assert!(map.write_at(0, &[b"x"]).is_none());
        assert!(map.with_bytes(0, 10, true, |_| ()).is_none());
        // A fresh mapping of the surviving page still reads the file.
        let again = Mapping::new(&f, page_bytes(), false).unwrap();
        let (first, _) = again
            .with_bytes(0, 2, true, <[u8]>::to_vec)
            .unwrap()
            .unwrap();
        assert_eq!(first, vec![0, 1]);
    }

    #[test]
    fn stores_reach_the_file_and_a_store_past_a_cut_is_eio() {
        use std::os::unix::fs::FileExt;
        let (_dir, f) = file_of(3);
        let map = Mapping::new(&f, 3 * page_bytes(), true).unwrap();
        map.write_at(4094, &[b"ab", b"cd"]).unwrap().unwrap();
        let mut back = [0u8; 4];
        f.read_exact_at(&mut back, 4094).unwrap();
        assert_eq!(&back, b"abcd");
        assert!(map.write_at(3 * page_bytes() - 1, &[b"xy"]).is_none());
        f.set_len(page_bytes() as u64).unwrap();
        let err = map
            .write_at(2 * page_bytes(), &[b"lost"])
            .unwrap()
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
        assert_eq!(f.metadata().unwrap().len(), page_bytes() as u64);
    }
}
