//! Plain socket calls under the ring's TCP types: a socket address in the kernel's layout,
//! creating sockets and setting their options, closing an fd nobody owns, and the probe
//! that tells whether another socket already listens on a port.

#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A socket address in the kernel's layout, boxed so its address is stable.
pub(super) enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    pub(super) fn new(addr: SocketAddr) -> Box<RawAddr> {
        Box::new(match addr {
            SocketAddr::V4(a) => RawAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => RawAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            }),
        })
    }

    pub(super) fn as_ptr(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            RawAddr::V4(a) => (
                (a as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            RawAddr::V6(a) => (
                (a as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }

    pub(super) fn family(&self) -> libc::c_int {
        match self {
            RawAddr::V4(_) => libc::AF_INET,
            RawAddr::V6(_) => libc::AF_INET6,
        }
    }
}

pub(super) fn syscall(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(super) fn new_socket(family: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = syscall(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value points at a live c_int for the duration of the call.
    syscall(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Close a file descriptor that a late accept completion produced after its future was gone.
pub(super) fn close_orphan_fd(result: i32) {
    if result >= 0 {
        // SAFETY: the kernel just created this fd for us and nobody else has seen it.
        drop(unsafe { OwnedFd::from_raw_fd(result) });
    }
}

/// Whether no other socket listens on `addr`: a probe bound without `SO_REUSEPORT` (so it
/// cannot join anyone's reuseport group) succeeds only when the port has no listener. A
/// killed process's listener can outlive the process while the kernel tears down its
/// io_uring (an armed accept holds the socket); joining its group would let it take, and
/// then reset, connections meant for us.
pub fn tcp_port_has_no_listener(addr: SocketAddr) -> io::Result<bool> {
    let raw = RawAddr::new(addr);
    let fd = new_socket(raw.family())?;
    set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    let (ptr, len) = raw.as_ptr();
    // SAFETY: `ptr`/`len` describe the live sockaddr inside `raw`.
    match syscall(unsafe { libc::bind(fd.as_raw_fd(), ptr, len) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(false),
        Err(e) => Err(e),
    }
}
