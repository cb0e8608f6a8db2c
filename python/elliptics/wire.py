"""Elliptics 2.26 wire codec: packed little-endian layouts, pure functions over bytes.

Owns encoding and decoding of every structure the client puts on or takes off the wire.
Does no I/O and keeps no state except the streaming ``FrameDecoder`` buffer. Every length
read from the network is checked against the bytes actually present before it is used.

Byte tables (all integers little-endian unless marked BE):

``dnet_cmd`` header, 120 bytes::

    off size field
      0   64 id.id            key id (sha512), or version ints for REVERSE_LOOKUP
     64    4 id.group_id u32
     68    8 id.reserved u64
     76    4 status i32       0 or -errno
     80    4 cmd i32
     84    4 backend_id i32
     88    8 trace_id u64
     96    8 flags u64
    104    8 trans u64
    112    8 size u64         payload bytes that follow

``dnet_io_attr``, 208 bytes::

      0 64 parent   64 64 id   128 8 start   136 8 num   144 8 tsec   152 8 tnsec
    160 8 user_flags   168 8 total_size   176 8 record_flags   184 4 reserved2
    188 4 flags u32    192 8 offset       200 8 size

``dnet_addr``, 32 bytes: 28 bytes raw sockaddr (family u16 LE, port u16 BE, address),
then addr_len u16 at 28 and family u16 at 30.

``dnet_file_info``, 112 bytes (natural alignment, 4 padding bytes at 68)::

      0 4 flen i32   4 64 checksum   68 4 pad   72 8 record_flags   80 8 size
     88 8 offset     96 8 mtime.tsec  104 8 mtime.tnsec

``sph`` (exec header), 128 bytes::

      0 64 src   64 8 data_size   72 8 flags   80 4 event_size i32   84 4 status i32
     88 4 __key   92 4 src_key i32   96 32 addr (dnet_addr)

``dnet_addr_container``: node_addr_num i32, addr_num i32, then addr_num × dnet_addr.
``dnet_id_container``: backends_count i32, then per backend {backend_id i32, group_id i32,
flags u32, ids_count u32} followed by ids_count × 64-byte ids.
"""

import socket
import struct
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

ID_SIZE_BYTES = 64
HEADER_SIZE_BYTES = 120
IO_ATTR_SIZE_BYTES = 208
ADDR_SIZE_BYTES = 32
FILE_INFO_SIZE_BYTES = 112
SPH_SIZE_BYTES = 128
BACKEND_IDS_SIZE_BYTES = 16
# Largest payload accepted from a peer; anything larger is a protocol error.
FRAME_PAYLOAD_BYTES_MAX = 1 << 30
# Largest element count accepted in an address or id container.
CONTAINER_ENTRIES_MAX = 1 << 20

VERSION = (2, 26, 11, 1)
INDEXES_SHARD_COUNT = 16

# Commands.
CMD_LOOKUP = 1
CMD_REVERSE_LOOKUP = 2
CMD_JOIN = 3
CMD_WRITE = 4
CMD_READ = 5
CMD_EXEC = 7
CMD_ROUTE_LIST = 8
CMD_DEL = 11
CMD_BULK_READ = 17
CMD_UPDATE_IDS = 24
CMD_BACKEND_STATUS = 26

# Command flags.
FLAGS_NEED_ACK = 1 << 0
FLAGS_MORE = 1 << 1
FLAGS_DESTROY = 1 << 2
FLAGS_DIRECT = 1 << 3
FLAGS_NOLOCK = 1 << 4
FLAGS_CHECKSUM = 1 << 5
FLAGS_NOCACHE = 1 << 6
FLAGS_DIRECT_BACKEND = 1 << 7
FLAGS_TRACE_BIT = 1 << 8
FLAGS_REPLY = 1 << 9

# IO flags.
IO_FLAGS_APPEND = 1 << 1
IO_FLAGS_PREPARE = 1 << 4
IO_FLAGS_COMMIT = 1 << 5
IO_FLAGS_OVERWRITE = 1 << 7
IO_FLAGS_NOCSUM = 1 << 8
IO_FLAGS_PLAIN_WRITE = 1 << 9
IO_FLAGS_CACHE = 1 << 10
IO_FLAGS_CACHE_ONLY = 1 << 11
IO_FLAGS_CACHE_REMOVE_FROM_DISK = 1 << 12
IO_FLAGS_COMPARE_AND_SWAP = 1 << 13
IO_FLAGS_CHECKSUM = 1 << 14

# Exec (sph) flags.
SPH_FLAGS_SRC_BLOCK = 1 << 0
SPH_FLAGS_REPLY = 1 << 1
SPH_FLAGS_FINISH = 1 << 2

BACKEND_DISABLE = 1
TIME_EMPTY = (2**64 - 1, 2**64 - 1)

_HEADER = struct.Struct("<64sIQiiiQQQQ")
_IO_ATTR = struct.Struct("<64s64sQQQQQQQIIQQ")
_FILE_INFO = struct.Struct("<i64s4xQQQQQ")
_SPH = struct.Struct("<64sQQiiii32s")
_ADDR_TAIL = struct.Struct("<HH")
_CONTAINER_HEAD = struct.Struct("<ii")
_BACKEND_IDS = struct.Struct("<iiII")
assert _HEADER.size == HEADER_SIZE_BYTES
assert _IO_ATTR.size == IO_ATTR_SIZE_BYTES
assert _FILE_INFO.size == FILE_INFO_SIZE_BYTES
assert _SPH.size == SPH_SIZE_BYTES


class DecodeError(ValueError):
    """Bytes from a peer do not form a valid structure."""


def _need(buf: bytes, size: int, what: str) -> None:
    if len(buf) < size:
        raise DecodeError(f"{what}: need {size} bytes, have {len(buf)}")


def _id64(raw: bytes) -> bytes:
    if len(raw) > ID_SIZE_BYTES:
        raise ValueError(f"id longer than {ID_SIZE_BYTES} bytes")
    return bytes(raw).ljust(ID_SIZE_BYTES, b"\0")


@dataclass
class Header:
    id: bytes = b"\0" * ID_SIZE_BYTES
    group_id: int = 0
    status: int = 0
    cmd: int = 0
    backend_id: int = 0
    trace_id: int = 0
    flags: int = 0
    trans: int = 0
    size: int = 0
    reserved: int = 0

    def encode(self) -> bytes:
        return _HEADER.pack(_id64(self.id), self.group_id, self.reserved, self.status, self.cmd,
                            self.backend_id, self.trace_id, self.flags, self.trans, self.size)

    @classmethod
    def decode(cls, buf: bytes) -> "Header":
        _need(buf, HEADER_SIZE_BYTES, "dnet_cmd")
        (id_, group, reserved, status, cmd, backend, trace, flags, trans,
         size) = _HEADER.unpack_from(buf)
        return cls(id_, group, status, cmd, backend, trace, flags, trans, size, reserved)

    @property
    def is_reply(self) -> bool:
        return bool(self.flags & FLAGS_REPLY)

    @property
    def more(self) -> bool:
        return bool(self.flags & FLAGS_MORE)


@dataclass
class IoAttr:
    parent: bytes = b"\0" * ID_SIZE_BYTES
    id: bytes = b"\0" * ID_SIZE_BYTES
    start: int = 0
    num: int = 0
    tsec: int = 0
    tnsec: int = 0
    user_flags: int = 0
    total_size: int = 0
    record_flags: int = 0
    reserved2: int = 0
    flags: int = 0
    offset: int = 0
    size: int = 0

    def encode(self) -> bytes:
        return _IO_ATTR.pack(_id64(self.parent), _id64(self.id), self.start, self.num, self.tsec,
                             self.tnsec, self.user_flags, self.total_size, self.record_flags,
                             self.reserved2, self.flags, self.offset, self.size)

    @classmethod
    def decode(cls, buf: bytes) -> "IoAttr":
        _need(buf, IO_ATTR_SIZE_BYTES, "dnet_io_attr")
        return cls(*_IO_ATTR.unpack_from(buf))


@dataclass(frozen=True)
class NetAddr:
    """A decoded ``dnet_addr``: host text, port, family (2 or 10)."""

    host: str
    port: int
    family: int = socket.AF_INET

    def encode(self) -> bytes:
        if self.family == socket.AF_INET6:
            raw = struct.pack("<H", socket.AF_INET6) + struct.pack(">HI", self.port, 0)
            raw += socket.inet_pton(socket.AF_INET6, self.host) + b"\0" * 4
            addr_len = 28
        else:
            raw = struct.pack("<H", socket.AF_INET) + struct.pack(">H", self.port)
            raw += socket.inet_pton(socket.AF_INET, self.host) + b"\0" * 8
            addr_len = 16
        return raw.ljust(28, b"\0") + _ADDR_TAIL.pack(addr_len, self.family)

    @classmethod
    def decode(cls, buf: bytes) -> "NetAddr":
        _need(buf, ADDR_SIZE_BYTES, "dnet_addr")
        addr_len, family = _ADDR_TAIL.unpack_from(buf, 28)
        (port,) = struct.unpack_from(">H", buf, 2)
        if family == socket.AF_INET and addr_len == 16:
            host = socket.inet_ntop(socket.AF_INET, bytes(buf[4:8]))
        elif family == socket.AF_INET6 and addr_len == 28:
            host = socket.inet_ntop(socket.AF_INET6, bytes(buf[8:24]))
        else:
            raise DecodeError(f"dnet_addr: unsupported family {family} addr_len {addr_len}")
        return cls(host, port, family)


@dataclass
class FileInfo:
    flen: int = 0
    checksum: bytes = b"\0" * ID_SIZE_BYTES
    record_flags: int = 0
    size: int = 0
    offset: int = 0
    mtime_tsec: int = 0
    mtime_tnsec: int = 0

    def encode(self) -> bytes:
        return _FILE_INFO.pack(self.flen, _id64(self.checksum), self.record_flags, self.size,
                               self.offset, self.mtime_tsec, self.mtime_tnsec)

    @classmethod
    def decode(cls, buf: bytes) -> "FileInfo":
        _need(buf, FILE_INFO_SIZE_BYTES, "dnet_file_info")
        return cls(*_FILE_INFO.unpack_from(buf))


@dataclass
class LookupReply:
    """WRITE / LOOKUP reply payload: dnet_addr + dnet_file_info + path (NUL included)."""

    addr: NetAddr
    info: FileInfo
    path: str

    @classmethod
    def decode(cls, buf: bytes) -> "LookupReply":
        _need(buf, ADDR_SIZE_BYTES + FILE_INFO_SIZE_BYTES, "lookup reply")
        addr = NetAddr.decode(buf)
        info = FileInfo.decode(buf[ADDR_SIZE_BYTES:])
        start = ADDR_SIZE_BYTES + FILE_INFO_SIZE_BYTES
        if info.flen < 0 or len(buf) - start < info.flen:
            raise DecodeError(f"lookup reply: path length {info.flen} exceeds payload")
        path = bytes(buf[start:start + info.flen]).rstrip(b"\0").decode("utf-8", "replace")
        return cls(addr, info, path)


@dataclass
class Sph:
    src: bytes = b"\0" * ID_SIZE_BYTES
    data_size: int = 0
    flags: int = 0
    event_size: int = 0
    status: int = 0
    key: int = 0
    src_key: int = -1
    addr: bytes = b"\0" * ADDR_SIZE_BYTES

    def encode(self) -> bytes:
        return _SPH.pack(_id64(self.src), self.data_size, self.flags, self.event_size,
                         self.status, self.key, self.src_key, bytes(self.addr).ljust(32, b"\0"))

    @classmethod
    def decode(cls, buf: bytes) -> "Sph":
        _need(buf, SPH_SIZE_BYTES, "sph")
        return cls(*_SPH.unpack_from(buf))


def encode_exec(sph: Sph, event: bytes, data: bytes) -> bytes:
    """sph ‖ event ‖ data with the sizes filled in."""
    sph.event_size = len(event)
    sph.data_size = len(data)
    return sph.encode() + event + data


def decode_exec(buf: bytes) -> Tuple[Sph, bytes, bytes]:
    sph = Sph.decode(buf)
    if sph.event_size < 0:
        raise DecodeError(f"sph: negative event_size {sph.event_size}")
    need = SPH_SIZE_BYTES + sph.event_size + sph.data_size
    if len(buf) < need:
        raise DecodeError(f"sph: event {sph.event_size} + data {sph.data_size} exceed payload")
    event_end = SPH_SIZE_BYTES + sph.event_size
    return sph, bytes(buf[SPH_SIZE_BYTES:event_end]), bytes(buf[event_end:need])


def encode_version_id(version=VERSION, shard_count: int = INDEXES_SHARD_COUNT) -> bytes:
    """The REVERSE_LOOKUP ``cmd.id``: four i32 version numbers, then the shard count at 20."""
    return (struct.pack("<4i", *version) + b"\0" * 4 + struct.pack("<i", shard_count)).ljust(
        ID_SIZE_BYTES, b"\0")


def decode_version_id(raw: bytes) -> Tuple[Tuple[int, int, int, int], int]:
    _need(raw, 24, "version id")
    version = struct.unpack_from("<4i", raw)
    (shards,) = struct.unpack_from("<i", raw, 20)
    return version, shards


def decode_addr_container(buf: bytes) -> Tuple[int, List[NetAddr], int]:
    """Returns (node_addr_num, addresses, bytes consumed)."""
    _need(buf, _CONTAINER_HEAD.size, "dnet_addr_container")
    node_addr_num, addr_num = _CONTAINER_HEAD.unpack_from(buf)
    if not 0 <= addr_num <= CONTAINER_ENTRIES_MAX:
        raise DecodeError(f"dnet_addr_container: addr_num {addr_num} out of range")
    end = _CONTAINER_HEAD.size + addr_num * ADDR_SIZE_BYTES
    _need(buf, end, "dnet_addr_container entries")
    addrs = [NetAddr.decode(buf[_CONTAINER_HEAD.size + i * ADDR_SIZE_BYTES:])
             for i in range(addr_num)]
    return node_addr_num, addrs, end


def encode_addr_container(addrs: List[NetAddr], node_addr_num: Optional[int] = None) -> bytes:
    node_addr_num = len(addrs) if node_addr_num is None else node_addr_num
    return _CONTAINER_HEAD.pack(node_addr_num, len(addrs)) + b"".join(a.encode() for a in addrs)


@dataclass
class BackendIds:
    backend_id: int
    group_id: int
    flags: int = 0
    ids: List[bytes] = field(default_factory=list)


def decode_id_container(buf: bytes) -> Tuple[List[BackendIds], int]:
    """Returns (backends, bytes consumed); the caller checks for trailing bytes."""
    _need(buf, 4, "dnet_id_container")
    (count,) = struct.unpack_from("<i", buf)
    if not 0 <= count <= CONTAINER_ENTRIES_MAX:
        raise DecodeError(f"dnet_id_container: backends_count {count} out of range")
    pos = 4
    backends = []
    for _ in range(count):
        _need(buf, pos + BACKEND_IDS_SIZE_BYTES, "dnet_backend_ids")
        backend_id, group_id, flags, ids_count = _BACKEND_IDS.unpack_from(buf, pos)
        pos += BACKEND_IDS_SIZE_BYTES
        if ids_count > CONTAINER_ENTRIES_MAX:
            raise DecodeError(f"dnet_backend_ids: ids_count {ids_count} out of range")
        end = pos + ids_count * ID_SIZE_BYTES
        _need(buf, end, "dnet_backend_ids ids")
        ids = [bytes(buf[pos + i * ID_SIZE_BYTES:pos + (i + 1) * ID_SIZE_BYTES])
               for i in range(ids_count)]
        backends.append(BackendIds(backend_id, group_id, flags, ids))
        pos = end
    return backends, pos


def encode_id_container(backends: List[BackendIds]) -> bytes:
    out = [struct.pack("<i", len(backends))]
    for b in backends:
        out.append(_BACKEND_IDS.pack(b.backend_id, b.group_id, b.flags, len(b.ids)))
        out.extend(_id64(i) for i in b.ids)
    return b"".join(out)


class FrameDecoder:
    """Streaming splitter: feed bytes, get back complete (Header, payload) frames."""

    def __init__(self, payload_bytes_max: int = FRAME_PAYLOAD_BYTES_MAX):
        self._buf = bytearray()
        self._header: Optional[Header] = None
        self._payload_bytes_max = payload_bytes_max

    def feed(self, data: bytes) -> List[Tuple[Header, bytes]]:
        self._buf += data
        frames = []
        while True:
            if self._header is None:
                if len(self._buf) < HEADER_SIZE_BYTES:
                    break
                header = Header.decode(bytes(self._buf[:HEADER_SIZE_BYTES]))
                if header.size > self._payload_bytes_max:
                    raise DecodeError(
                        f"frame payload {header.size} exceeds {self._payload_bytes_max}")
                del self._buf[:HEADER_SIZE_BYTES]
                self._header = header
            if len(self._buf) < self._header.size:
                break
            payload = bytes(self._buf[:self._header.size])
            del self._buf[:self._header.size]
            frames.append((self._header, payload))
            self._header = None
        return frames
