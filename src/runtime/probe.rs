//! The io_uring availability probe: sets up a tiny ring once and explains a failure in words.

use super::{reactor, RuntimeError};

/// Ring size used by the probe.
const PROBE_RING_ENTRIES: u32 = 4;

/// Check that this process can use io_uring. The error names the cause (kernel without
/// io_uring, seccomp or the `kernel.io_uring_disabled` sysctl, the locked-memory limit).
pub fn probe() -> Result<(), RuntimeError> {
    reactor::build_ring(PROBE_RING_ENTRIES)
        .map(drop)
        .map_err(RuntimeError::from_setup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn probe_succeeds_where_io_uring_is_available() {
        probe().expect("io_uring must be available on the build machine");
    }

    #[test]
    fn eperm_names_the_sysctl() {
        let err = RuntimeError::from_setup(io::Error::from_raw_os_error(libc::EPERM));
        assert!(
            err.to_string().contains("kernel.io_uring_disabled"),
            "{err}"
        );
    }

    #[test]
    fn enomem_names_the_memlock_limit() {
        let err = RuntimeError::from_setup(io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(err.to_string().contains("locked-memory"), "{err}");
    }
}
