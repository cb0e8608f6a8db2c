//! Vectored positional I/O shared by the [`super::IoFile`] backends: reads into the spare
//! (uninitialised) capacity of owned buffers, and the iovec lists both directions use.
#![allow(unsafe_code)]

use bytes::Bytes;

/// Bytes a vectored read fills: the spare capacity of every buffer.
pub fn spare_total(bufs: &[Vec<u8>]) -> usize {
    bufs.iter().map(|b| b.capacity() - b.len()).sum()
}

/// The spare capacity of `bufs` past the first `done` of its bytes, as iovecs in `out`.
/// The iovecs point into the buffers' heap allocations: they stay valid while the buffers
/// are neither dropped nor reallocated.
pub fn spare_iovecs(bufs: &mut [Vec<u8>], mut done: usize, out: &mut Vec<libc::iovec>) {
    out.clear();
    for b in bufs.iter_mut() {
        let spare = b.spare_capacity_mut();
        if done >= spare.len() {
            done -= spare.len();
            continue;
        }
        let rest = spare.get_mut(done..).unwrap_or_default();
        done = 0;
        out.push(libc::iovec {
            iov_base: rest.as_mut_ptr().cast(),
            iov_len: rest.len(),
        });
    }
}

/// The unwritten part of `bufs` (past its first `done` bytes) as iovecs in `out`, at most
/// `max` of them.
pub fn write_iovecs(bufs: &[Bytes], mut done: usize, max: usize, out: &mut Vec<libc::iovec>) {
    out.clear();
    for b in bufs {
        if done >= b.len() {
            done -= b.len();
            continue;
        }
        let rest = b.get(done..).unwrap_or_default();
        done = 0;
        out.push(libc::iovec {
            iov_base: rest.as_ptr() as *mut libc::c_void,
            iov_len: rest.len(),
        });
        if out.len() == max {
            break;
        }
    }
}

/// After a vectored read filled every spare byte of `bufs`: each length becomes its
/// capacity.
///
/// # Safety
/// All `spare_total(bufs)` spare bytes must have been written (a checked, complete read).
pub unsafe fn mark_filled(bufs: &mut [Vec<u8>]) {
    for b in bufs.iter_mut() {
        let cap = b.capacity();
        // SAFETY: the caller guarantees bytes `len..capacity` were written by the read.
        unsafe { b.set_len(cap) };
    }
}

/// A blocking `preadv` of the whole spare capacity of `bufs` from `offset`.
pub fn preadv_all(fd: i32, bufs: &mut [Vec<u8>], offset: u64) -> std::io::Result<()> {
    let total = spare_total(bufs);
    let mut iovecs = Vec::new();
    let mut done = 0usize;
    while done < total {
        spare_iovecs(bufs, done, &mut iovecs);
        let pos = file_position(offset, done)?;
        let count = libc::c_int::try_from(iovecs.len().min(1024)).unwrap_or(1024);
        // SAFETY: every iovec describes spare capacity of a buffer exclusively borrowed for
        // the call (see `spare_iovecs`); the kernel writes at most `iov_len` bytes to each.
        let ret = unsafe { libc::preadv(fd, iovecs.as_ptr(), count, pos) };
        done += progress(ret, std::io::ErrorKind::UnexpectedEof)?;
    }
    // SAFETY: `done == total`: the reads above wrote every spare byte.
    unsafe { mark_filled(bufs) };
    Ok(())
}

/// The file position `done` bytes past `offset`.
fn file_position(offset: u64, done: usize) -> std::io::Result<libc::off_t> {
    offset
        .checked_add(done as u64)
        .and_then(|p| libc::off_t::try_from(p).ok())
        .ok_or_else(|| std::io::ErrorKind::InvalidInput.into())
}

/// Bytes moved by one `preadv`/`pwritev` returning `ret` (0 when interrupted, to retry);
/// a zero return is the error `at_zero`.
fn progress(ret: isize, at_zero: std::io::ErrorKind) -> std::io::Result<usize> {
    if ret < 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    if ret == 0 {
        return Err(at_zero.into());
    }
    Ok(ret.unsigned_abs())
}

/// A blocking `pwritev` of every byte of `bufs` at `offset`.
pub fn pwritev_all(fd: i32, bufs: &[Bytes], offset: u64) -> std::io::Result<()> {
    let total: usize = bufs.iter().map(Bytes::len).sum();
    let mut iovecs = Vec::with_capacity(bufs.len());
    let mut done = 0usize;
    while done < total {
        write_iovecs(bufs, done, 1024, &mut iovecs);
        let pos = file_position(offset, done)?;
        let count = libc::c_int::try_from(iovecs.len()).unwrap_or(1024);
        // SAFETY: every iovec describes bytes of a `Bytes` borrowed for the call.
        let ret = unsafe { libc::pwritev(fd, iovecs.as_ptr(), count, pos) };
        done += progress(ret, std::io::ErrorKind::WriteZero)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn vectored_read_fills_spare_capacity_in_order_and_eof_leaves_lengths() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789abcdef").unwrap();
        let mut bufs = vec![
            Vec::with_capacity(3),
            Vec::with_capacity(10),
            Vec::with_capacity(2),
        ];
        preadv_all(f.as_raw_fd(), &mut bufs, 1).unwrap();
        assert_eq!(
            bufs,
            vec![b"123".to_vec(), b"456789abcd".to_vec(), b"ef".to_vec()]
        );
        let mut short = vec![Vec::with_capacity(4), Vec::with_capacity(4)];
        let err = preadv_all(f.as_raw_fd(), &mut short, 10).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(short.iter().all(Vec::is_empty));
    }

    #[test]
    fn vectored_write_puts_buffers_back_to_back() {
        let f = tempfile::tempfile().unwrap();
        let bufs = [
            Bytes::from_static(b"ab"),
            Bytes::new(),
            Bytes::from_static(b"cde"),
        ];
        pwritev_all(f.as_raw_fd(), &bufs, 2).unwrap();
        let mut back = vec![Vec::with_capacity(7)];
        preadv_all(f.as_raw_fd(), &mut back, 0).unwrap();
        assert_eq!(back[0], b"\0\0abcde");
    }
}
