//! Negative errno values as carried in `cmd.status` (Linux numbering), their names and the
//! strerror texts Elliptics prints next to them, and [`Errno`], the typed form.
//!
//! ```text
//! cmd.status  i32 @76   0 = success, -errno = failure
//! ```
//!
//! The bare constants stay `i32` because `cmd.status` is an `i32` on the wire; code that
//! carries a failure around takes an [`Errno`] and converts at the wire with `i32::from`.

use std::fmt;

pub const EPERM: i32 = -1;
pub const ENOENT: i32 = -2;
pub const EINTR: i32 = -4;
pub const EIO: i32 = -5;
pub const ENXIO: i32 = -6;
pub const E2BIG: i32 = -7;
pub const ENOEXEC: i32 = -8;
pub const EBADF: i32 = -9;
pub const EAGAIN: i32 = -11;
pub const ENOMEM: i32 = -12;
pub const EEXIST: i32 = -17;
pub const EINVAL: i32 = -22;
pub const ENOSPC: i32 = -28;
pub const ESPIPE: i32 = -29;
pub const EROFS: i32 = -30;
pub const ERANGE: i32 = -34;
pub const EXFULL: i32 = -54;
pub const EPROTO: i32 = -71;
pub const EBADFD: i32 = -77;
pub const EILSEQ: i32 = -84;
pub const ENOTSUP: i32 = -95;
pub const EADDRNOTAVAIL: i32 = -99;
pub const ENETUNREACH: i32 = -101;
pub const ECONNRESET: i32 = -104;
pub const ETIMEDOUT: i32 = -110;
pub const ECONNREFUSED: i32 = -111;
pub const EHOSTUNREACH: i32 = -113;
pub const EALREADY: i32 = -114;

/// (status, name, strerror text) of every errno this implementation names.
const TABLE: [(i32, &str, &str); 28] = [
    (EPERM, "EPERM", "Operation not permitted"),
    (ENOENT, "ENOENT", "No such file or directory"),
    (EINTR, "EINTR", "Interrupted system call"),
    (EIO, "EIO", "Input/output error"),
    (ENXIO, "ENXIO", "No such device or address"),
    (E2BIG, "E2BIG", "Argument list too long"),
    (ENOEXEC, "ENOEXEC", "Exec format error"),
    (EBADF, "EBADF", "Bad file descriptor"),
    (EAGAIN, "EAGAIN", "Resource temporarily unavailable"),
    (ENOMEM, "ENOMEM", "Cannot allocate memory"),
    (EEXIST, "EEXIST", "File exists"),
    (EINVAL, "EINVAL", "Invalid argument"),
    (ENOSPC, "ENOSPC", "No space left on device"),
    (ESPIPE, "ESPIPE", "Illegal seek"),
    (EROFS, "EROFS", "Read-only file system"),
    (ERANGE, "ERANGE", "Numerical result out of range"),
    (EXFULL, "EXFULL", "Exchange full"),
    (EPROTO, "EPROTO", "Protocol error"),
    (EBADFD, "EBADFD", "File descriptor in bad state"),
    (
        EILSEQ,
        "EILSEQ",
        "Invalid or incomplete multibyte or wide character",
    ),
    (ENOTSUP, "ENOTSUP", "Operation not supported"),
    (
        EADDRNOTAVAIL,
        "EADDRNOTAVAIL",
        "Cannot assign requested address",
    ),
    (ENETUNREACH, "ENETUNREACH", "Network is unreachable"),
    (ECONNRESET, "ECONNRESET", "Connection reset by peer"),
    (ETIMEDOUT, "ETIMEDOUT", "Connection timed out"),
    (ECONNREFUSED, "ECONNREFUSED", "Connection refused"),
    (EHOSTUNREACH, "EHOSTUNREACH", "No route to host"),
    (EALREADY, "EALREADY", "Operation already in progress"),
];

/// The strerror text Elliptics prints next to a status ("No such file or directory").
pub fn message(status: i32) -> &'static str {
    if status == 0 {
        return "Success";
    }
    TABLE
        .iter()
        .find(|(s, _, _)| *s == status)
        .map_or("Unknown error", |(_, _, text)| text)
}

/// The symbolic name of a status ("ENOENT"); `None` for numbers outside the table.
pub fn name(status: i32) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(s, _, _)| *s == status)
        .map(|(_, name, _)| *name)
}

/// A failure as a negative errno: what `cmd.status` carries when a request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

impl Errno {
    pub const EPERM: Errno = Errno(EPERM);
    pub const ENOENT: Errno = Errno(ENOENT);
    pub const EINTR: Errno = Errno(EINTR);
    pub const EIO: Errno = Errno(EIO);
    pub const ENXIO: Errno = Errno(ENXIO);
    pub const ENOMEM: Errno = Errno(ENOMEM);
    pub const EEXIST: Errno = Errno(EEXIST);
    pub const EINVAL: Errno = Errno(EINVAL);
    pub const ENOSPC: Errno = Errno(ENOSPC);
    pub const EPROTO: Errno = Errno(EPROTO);
    pub const ECONNRESET: Errno = Errno(ECONNRESET);
    pub const ETIMEDOUT: Errno = Errno(ETIMEDOUT);
    pub const ECONNREFUSED: Errno = Errno(ECONNREFUSED);

    /// The errno of a non-zero `cmd.status` (a positive number is taken as its negation).
    pub const fn from_status(status: i32) -> Errno {
        if status > 0 {
            Errno(status.wrapping_neg())
        } else {
            Errno(status)
        }
    }

    /// The errno an OS error stands for: its own code when it carries one (so a refused
    /// connect stays ECONNREFUSED), else `fallback`.
    pub fn from_io(err: &std::io::Error, fallback: Errno) -> Errno {
        match err.raw_os_error() {
            Some(code) if code > 0 => Errno(code.wrapping_neg()),
            _ => match err.kind() {
                std::io::ErrorKind::TimedOut => Errno::ETIMEDOUT,
                std::io::ErrorKind::ConnectionRefused => Errno::ECONNREFUSED,
                _ => fallback,
            },
        }
    }

    /// The value for `cmd.status`.
    pub const fn status(self) -> i32 {
        self.0
    }

    /// The symbolic name ("ENOENT"), when this implementation knows it.
    pub fn name(self) -> Option<&'static str> {
        name(self.0)
    }

    /// The strerror text.
    pub fn message(self) -> &'static str {
        message(self.0)
    }
}

impl From<Errno> for i32 {
    fn from(e: Errno) -> i32 {
        e.0
    }
}

impl From<i32> for Errno {
    fn from(status: i32) -> Errno {
        Errno::from_status(status)
    }
}

/// "Connection refused: -111", the way Elliptics prints a failure.
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.message(), self.0)
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_errno_has_its_linux_text_and_name() {
        assert_eq!(message(ENOENT), "No such file or directory");
        assert_eq!(message(0), "Success");
        assert_eq!(message(-9999), "Unknown error");
        assert_eq!(name(ECONNREFUSED), Some("ECONNREFUSED"));
        assert_eq!(Errno::ETIMEDOUT.to_string(), "Connection timed out: -110");
        assert_eq!(i32::from(Errno::from_status(104)), ECONNRESET);
    }

    #[test]
    fn an_os_error_keeps_its_cause() {
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(
            Errno::from_io(&refused, Errno::ECONNRESET),
            Errno::ECONNREFUSED
        );
        let unreachable = std::io::Error::from_raw_os_error(113);
        assert_eq!(
            Errno::from_io(&unreachable, Errno::ECONNRESET).name(),
            Some("EHOSTUNREACH")
        );
        let other = std::io::Error::other("no code");
        assert_eq!(Errno::from_io(&other, Errno::ECONNRESET), Errno::ECONNRESET);
    }
}
