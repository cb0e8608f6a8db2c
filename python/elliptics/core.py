"""Value types of the public API: errors, Id, Address, Time, Logger, Config.

Owns the user-facing data objects that mirror the original Python binding. Holds no
network state; ``net`` and ``session`` build on these.
"""

import errno as _errno
import hashlib
import os
import socket
import threading
import time
from typing import Iterable, Optional, Union

ETIMEDOUT = _errno.ETIMEDOUT
ENOENT = _errno.ENOENT
ENXIO = _errno.ENXIO


def strerror(code: int) -> str:
    return os.strerror(abs(code)) if code else ""


class Error(Exception):
    """An Elliptics failure; ``code`` is the negative errno."""

    def __init__(self, code: int, message: Optional[str] = None):
        self.code = code
        self.message = message if message is not None else f"{strerror(code)}: {code}"
        super().__init__(self.message)


class NotFoundError(Error):
    pass


class TimeoutError(Error):  # noqa: A001 - the binding's public name
    pass


def make_error(code: int, message: Optional[str] = None) -> Error:
    if code == -ENOENT:
        return NotFoundError(code, message)
    if code == -ETIMEDOUT:
        return TimeoutError(code, message)
    return Error(code, message)


class ErrorInfo:
    """``entry.error``: code 0 and an empty message on success."""

    def __init__(self, code: int = 0, message: str = ""):
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"<error code={self.code} message={self.message!r}>"


class Time:
    """``elliptics.Time``: seconds and nanoseconds, ordered."""

    def __init__(self, tsec: int = 2**64 - 1, tnsec: int = 2**64 - 1):
        self.tsec = int(tsec)
        self.tnsec = int(tnsec)

    @classmethod
    def now(cls) -> "Time":
        micros = time.time_ns() // 1000
        return cls(micros // 1_000_000, (micros % 1_000_000) * 1000)

    def is_empty(self) -> bool:
        return self.tsec == 2**64 - 1 and self.tnsec == 2**64 - 1

    def _key(self):
        return (self.tsec, self.tnsec)

    def __eq__(self, other):
        return isinstance(other, Time) and self._key() == other._key()

    def __lt__(self, other):
        return self._key() < other._key()

    def __le__(self, other):
        return self._key() <= other._key()

    def __gt__(self, other):
        return self._key() > other._key()

    def __ge__(self, other):
        return self._key() >= other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"<Time {self.tsec}.{self.tnsec:09d}>"


class Id:
    """A raw 64-byte key id plus a group; ``Id(b'...', group)`` or ``Id([ints], group)``."""

    def __init__(self, id: Union[bytes, bytearray, Iterable[int]] = b"", group: int = 0):
        raw = bytes(id) if not isinstance(id, (bytes, bytearray)) else bytes(id)
        if len(raw) > 64:
            raise ValueError("id longer than 64 bytes")
        self.id = raw.ljust(64, b"\0")
        self.group_id = int(group)

    @property
    def group(self) -> int:
        return self.group_id

    def __eq__(self, other):
        return isinstance(other, Id) and (self.id, self.group_id) == (other.id, other.group_id)

    def __hash__(self):
        return hash((self.id, self.group_id))

    def __repr__(self):
        return f"<Id {self.group_id}:{self.id.hex()[:16]}...>"

    def __str__(self):
        return f"{self.group_id}:{self.id.hex()}"


def transform(key, namespace: bytes = b"") -> bytes:
    """Key -> 64-byte id: sha512(key), or sha512(ns ‖ NUL ‖ key) inside a namespace."""
    if isinstance(key, Id):
        return key.id
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if namespace:
        raw = namespace + b"\0" + raw
    return hashlib.sha512(raw).digest()


class Address:
    """``elliptics.Address(host, port, family=2)``; string form ``host:port:family``."""

    def __init__(self, host: str, port: int, family: int = socket.AF_INET):
        self.port = int(port)
        self.family = int(family)
        self.host = _resolve(host, self.port, self.family)

    @classmethod
    def from_host_port_family(cls, text: str) -> "Address":
        parts = text.rsplit(":", 2)
        if len(parts) == 3 and parts[2].split("-")[0].isdigit() and parts[1].isdigit():
            return cls(parts[0], int(parts[1]), int(parts[2].split("-")[0]))
        parts = text.rsplit(":", 1)
        if len(parts) == 2 and parts[1].isdigit():
            return cls(parts[0], int(parts[1]))
        raise ValueError(f"address {text!r} is not host:port[:family]")

    from_host_port = from_host_port_family

    def _key(self):
        return (self.host, self.port, self.family)

    def __eq__(self, other):
        return isinstance(other, Address) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __str__(self):
        return f"{self.host}:{self.port}:{self.family}"

    def __repr__(self):
        return f"<Address: {self}>"


def _resolve(host: str, port: int, family: int) -> str:
    host = host.strip("[]")
    try:
        socket.inet_pton(family, host)
        return host
    except OSError:
        pass
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    if not infos:
        raise Error(-ENXIO, f"cannot resolve {host}")
    return infos[0][4][0]


def to_address(remote) -> Address:
    if isinstance(remote, Address):
        return remote
    if isinstance(remote, str):
        return Address.from_host_port_family(remote)
    if isinstance(remote, (tuple, list)) and 2 <= len(remote) <= 3:
        return Address(*remote)
    raise TypeError(f"cannot make an address from {remote!r}")


class log_level:  # noqa: N801 - binding name
    error = 0
    warning = 1
    info = 2
    notice = 3
    debug = 4


class Logger:
    """``elliptics.Logger(path, level)``: appends lines at or below ``level`` to ``path``."""

    def __init__(self, path: str, level: int = log_level.error):
        self.path = path
        self.level = int(level)
        self._lock = threading.Lock()

    def log(self, level: int, message: str) -> None:
        if int(level) > self.level:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {os.getpid()} {level}: {message}\n"
        with self._lock:
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(line)
            except OSError:
                pass


class Config:
    """``elliptics.Config()`` with the binding's defaults."""

    def __init__(self) -> None:
        self.wait_timeout = 5
        self.check_timeout = 20
        self.io_thread_num = 1
        self.net_thread_num = 1
        self.nonblocking_io_thread_num = 1
        self.flags = 0
        self.client_prio = 0
        self._cookie = b"\0" * 32

    @property
    def cookie(self) -> str:
        """The 32-byte cookie as text (latin-1): at most 31 characters, NUL padded."""
        return self._cookie.decode("latin-1")

    @cookie.setter
    def cookie(self, value) -> None:
        raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        self._cookie = raw[:31].ljust(32, b"\0")
