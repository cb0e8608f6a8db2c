"""Session: per-call parameters and the key-value operations over a Node.

Owns request building and multi-group behaviour: writes and removes go to the key's owner
in every session group in parallel; reads and lookups try groups in order and stop at the
first success; read_latest looks up every group and reads the newest first. Each call runs
on the node's executor and returns an ``AsyncResult``. Exec lives in ``exec_ops``.
"""

import errno
import hashlib
from typing import Iterable, List, Optional, Tuple

from . import chunked, exec_ops, wire
from . import indexes as indexes_module
from .core import Address, ErrorInfo, Id, Time, transform
from .net import Node, Transaction
from .results import (AsyncResult, CallbackResultEntry, LookupResultEntry, ReadResultEntry,
                      check)

DEFAULT_TIMEOUT_S = 5
CAS_RETRIES_DEFAULT = 10


def _as_bytes(data) -> bytes:
    if data is None:
        return b""
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


class Route:
    """One route of ``session.routes``: the binding's ``id``, ``address``, ``backend_id``."""

    def __init__(self, entry):
        self.id = Id(entry.point, entry.group_id)
        self.address = entry.owner.address
        self.group_id = entry.group_id
        self.backend_id = entry.backend_id

    def __repr__(self) -> str:
        return f"<Route {self.id.id[:6].hex()} g{self.group_id} {self.address}/{self.backend_id}>"


class RouteList:
    """``session.routes``: a snapshot view of the route table."""

    def __init__(self, node: Node):
        self._entries = [Route(e) for e in node.routes.entries()]

    def groups(self) -> List[int]:
        return sorted({e.group_id for e in self._entries})

    def addresses(self) -> List[Address]:
        out: List[Address] = []
        for e in self._entries:
            if e.address not in out:
                out.append(e.address)
        return out

    def get_address_groups(self, address: Address) -> List[int]:
        return sorted({e.group_id for e in self._entries if e.address == address})

    def get_address_backends(self, address: Address) -> List[int]:
        return sorted({e.backend_id for e in self._entries if e.address == address})

    def filter_by_group(self, group_id: int) -> List[Route]:
        return [e for e in self._entries if e.group_id == group_id]

    def get_unique_routes(self) -> List[Route]:
        """The first route of every (address, backend)."""
        seen, out = set(), []
        for e in self._entries:
            if (e.address, e.backend_id) not in seen:
                seen.add((e.address, e.backend_id))
                out.append(e)
        return out

    def __iter__(self):
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


class Session:
    def __init__(self, node: Node):
        self._node = node
        self._groups: List[int] = []
        self._timeout_s = DEFAULT_TIMEOUT_S
        self.cflags = 0
        self.ioflags = 0
        self.user_flags = 0
        self.trace_id = 0
        self._timestamp = Time()
        self._namespace = b""

    # -- parameters ---------------------------------------------------------------------

    @property
    def groups(self) -> List[int]:
        return list(self._groups)

    @groups.setter
    def groups(self, groups: Iterable[int]) -> None:
        self._groups = [int(g) for g in groups]

    def set_groups(self, groups: Iterable[int]) -> None:
        self.groups = groups

    def add_groups(self, groups: Iterable[int]) -> None:
        self.groups = self._groups + [int(g) for g in groups]

    def get_groups(self) -> List[int]:
        return self.groups

    @property
    def timeout(self) -> int:
        return self._timeout_s

    @timeout.setter
    def timeout(self, seconds: int) -> None:
        self._timeout_s = int(seconds) or DEFAULT_TIMEOUT_S

    def set_timeout(self, seconds: int) -> None:
        self.timeout = seconds

    @property
    def timestamp(self) -> Time:
        return self._timestamp

    @timestamp.setter
    def timestamp(self, value) -> None:
        self._timestamp = value if isinstance(value, Time) else Time(*value)

    def set_namespace(self, namespace) -> None:
        self._namespace = _as_bytes(namespace)

    @property
    def namespace(self) -> bytes:
        return self._namespace

    def set_cflags(self, cflags: int) -> None:
        self.cflags = cflags

    def set_ioflags(self, ioflags: int) -> None:
        self.ioflags = ioflags

    def set_user_flags(self, user_flags: int) -> None:
        self.user_flags = user_flags

    def set_trace_id(self, trace_id: int) -> None:
        self.trace_id = trace_id

    def set_timestamp(self, value) -> None:
        self.timestamp = value

    @property
    def routes(self) -> RouteList:
        return RouteList(self._node)

    def clone(self) -> "Session":
        other = Session(self._node)
        other.__dict__.update({k: (list(v) if isinstance(v, list) else v)
                               for k, v in self.__dict__.items()})
        return other

    def transform(self, key) -> Id:
        return Id(transform(key, self._namespace))

    def lookup_address(self, key, group_id: int) -> Address:
        route = self._node.routes.lookup(group_id, self._key_id(key))
        if route is None:
            raise exec_ops.no_route_error(group_id)
        return route.owner.address

    # -- plumbing -----------------------------------------------------------------------

    @property
    def node(self) -> Node:
        return self._node

    def _key_id(self, key) -> bytes:
        return transform(key, self._namespace)

    def _submit(self, fn, *args) -> AsyncResult:
        return AsyncResult(self._node.submit(fn, *args))

    def _send(self, group: int, key_id: bytes, cmd: int, payload: bytes,
              use_backend: bool = True) -> Tuple[Optional[Transaction], int]:
        """Send to the owner of key_id in group: (transaction, 0) or (None, -ENXIO)."""
        route = self._node.routes.lookup(group, key_id)
        if route is None:
            return None, -errno.ENXIO
        header = wire.Header(id=key_id, group_id=group, cmd=cmd,
                             backend_id=route.backend_id if use_backend else 0,
                             trace_id=self.trace_id,
                             flags=wire.FLAGS_NEED_ACK | self.cflags)
        return self._node.request(route.owner, header, payload, self._timeout_s), 0

    def _io(self, key_id: bytes, data: bytes = b"", *, flags: int = 0, offset: int = 0,
            size: Optional[int] = None, num: int = 0, parent: Optional[bytes] = None,
            stamp: bool = False) -> wire.IoAttr:
        ts = self._timestamp if not self._timestamp.is_empty() else Time.now()
        return wire.IoAttr(parent=parent if parent is not None else b"\0" * 64, id=key_id,
                           num=num, tsec=ts.tsec if stamp else 0,
                           tnsec=ts.tnsec if stamp else 0,
                           user_flags=self.user_flags if stamp else 0,
                           flags=self.ioflags | flags, offset=offset,
                           size=len(data) if size is None else size)

    # -- write --------------------------------------------------------------------------

    def _write_op(self, key_id: bytes, data: bytes, io: wire.IoAttr):
        sent = [(g,) + self._send(g, key_id, wire.CMD_WRITE, io.encode() + data)
                for g in self._groups]
        entries, statuses = [], []
        for group, tx, status in sent:
            if tx is None:
                statuses.append(status)
                continue
            tx.wait()
            statuses.append(tx.status)
            if tx.status:
                continue
            reply = None
            for header, payload in tx.replies:
                if payload:
                    try:
                        reply = wire.LookupReply.decode(payload)
                    except wire.DecodeError:
                        reply = None
            entries.append(LookupResultEntry(tx.conn.address, group,
                                             tx.replies[-1][0].backend_id if tx.replies else 0,
                                             reply))
        return check(entries, statuses or [-errno.ENXIO])

    def write_data(self, key, data, offset: int = 0, chunk_size: int = 0) -> AsyncResult:
        """Write ``data`` at ``offset``; with ``chunk_size`` > 0 and more data than one
        chunk, as PREPARE / PLAIN_WRITE / COMMIT frames of at most ``chunk_size`` bytes."""
        key_id, raw = self._key_id(key), _as_bytes(data)
        if chunk_size > 0 and len(raw) > chunk_size:
            view = memoryview(raw)
            return self._submit(chunked.write_chunked_op, self, key_id,
                                lambda at, n: bytes(view[at:at + n]), len(raw), offset,
                                chunk_size)
        io = self._io(key_id, raw, offset=offset, stamp=True)
        return self._submit(self._write_op, key_id, raw, io)

    def write_file(self, key, filename, offset: int = 0, local_offset: int = 0, size: int = 0,
                   chunk_size: int = chunked.FILE_CHUNK_BYTES) -> AsyncResult:
        """Write ``size`` bytes (0: to its end) of ``filename`` from ``local_offset`` at
        ``offset``, one chunk of the file in memory at a time."""
        return self._submit(chunked.write_file_op, self, self._key_id(key), filename, offset,
                            local_offset, size, chunk_size)

    def read_file(self, key, filename, offset: int = 0, size: int = 0,
                  chunk_size: int = chunked.FILE_CHUNK_BYTES) -> AsyncResult:
        """Read ``size`` bytes (0: to the end) at ``offset`` into ``filename`` with READs of
        at most ``chunk_size`` bytes; the entry's ``size`` is the byte count."""
        return self._submit(chunked.read_file_op, self, self._key_id(key), filename, offset,
                            size, chunk_size)

    def read_data_chunked(self, key, offset: int = 0, size: int = 0,
                          chunk_size: int = chunked.FILE_CHUNK_BYTES) -> AsyncResult:
        """``read_data`` with READs of at most ``chunk_size`` bytes, joined in the entry."""
        return self._submit(chunked.read_data_chunked_op, self, self._key_id(key), offset,
                            size, chunk_size)

    def write_cache(self, key, data, timeout: int) -> AsyncResult:
        """Write into the nodes' caches (ioflag CACHE) with a lifetime of ``timeout``
        seconds (``io_attr.start``; 0 = none)."""
        key_id, raw = self._key_id(key), _as_bytes(data)
        io = self._io(key_id, raw, flags=wire.IO_FLAGS_CACHE, stamp=True)
        io.start = timeout
        return self._submit(self._write_op, key_id, raw, io)

    def write_prepare(self, key, data, remote_offset: int, psize: int) -> AsyncResult:
        key_id, raw = self._key_id(key), _as_bytes(data)
        io = self._io(key_id, raw, flags=wire.IO_FLAGS_PREPARE | wire.IO_FLAGS_PLAIN_WRITE,
                      offset=remote_offset, num=psize, stamp=True)
        return self._submit(self._write_op, key_id, raw, io)

    def write_plain(self, key, data, remote_offset: int) -> AsyncResult:
        key_id, raw = self._key_id(key), _as_bytes(data)
        io = self._io(key_id, raw, flags=wire.IO_FLAGS_PLAIN_WRITE, offset=remote_offset,
                      num=len(raw) + remote_offset, stamp=True)
        return self._submit(self._write_op, key_id, raw, io)

    def write_commit(self, key, data, remote_offset: int, csize: int) -> AsyncResult:
        key_id, raw = self._key_id(key), _as_bytes(data)
        io = self._io(key_id, raw, flags=wire.IO_FLAGS_COMMIT | wire.IO_FLAGS_PLAIN_WRITE,
                      offset=remote_offset, num=csize, stamp=True)
        return self._submit(self._write_op, key_id, raw, io)

    def write_cas(self, key, data, remote_csum=None, remote_offset: int = 0,
                  count: int = CAS_RETRIES_DEFAULT) -> AsyncResult:
        """CAS write: with data and the old checksum, or with a converter(old) -> new."""
        key_id = self._key_id(key)
        if callable(data):
            offset = remote_csum if isinstance(remote_csum, int) else remote_offset
            return self._submit(self._cas_loop, key_id, data, offset, count)
        csum = remote_csum.id if isinstance(remote_csum, Id) else _as_bytes(remote_csum)
        raw = _as_bytes(data)
        io = self._io(key_id, raw, flags=wire.IO_FLAGS_COMPARE_AND_SWAP, offset=remote_offset,
                      num=len(raw) + remote_offset, parent=csum.ljust(64, b"\0"), stamp=True)
        return self._submit(self._write_op, key_id, raw, io)

    def _cas_loop(self, key_id: bytes, converter, offset: int, count: int):
        outcome = ([], None)
        for _ in range(max(count, 1)):
            old_entries, err = self._read_op(key_id, 0, 0)
            old = old_entries[0].data if old_entries else b""
            if err is not None and err.code != -errno.ENOENT:
                return [], err
            csum = hashlib.sha512(old).digest() if old_entries else b"\0" * 64
            new = _as_bytes(converter(old))
            io = self._io(key_id, new, flags=wire.IO_FLAGS_COMPARE_AND_SWAP, offset=offset,
                          num=len(new) + offset, parent=csum, stamp=True)
            outcome = self._write_op(key_id, new, io)
            if outcome[1] is None or outcome[1].code != -errno.EBADFD:
                return outcome
        return outcome

    def bulk_write(self, datas) -> AsyncResult:
        items = list(datas.items()) if isinstance(datas, dict) else list(datas)
        jobs = []
        for key, data in items:
            key_id, raw = self._key_id(key), _as_bytes(data)
            jobs.append((key_id, raw, self._io(key_id, raw, stamp=True)))

        def run():
            entries, statuses = [], []
            for key_id, raw, io in jobs:
                got, err = self._write_op(key_id, raw, io)
                entries.extend(got)
                statuses.append(err.code if err is not None else 0)
            return check(entries, statuses)

        return self._submit(run)

    # -- read / lookup / remove ---------------------------------------------------------

    def _read_one(self, group: int, key_id: bytes, offset: int, size: int):
        io = self._io(key_id, offset=offset, size=size, parent=key_id)
        tx, status = self._send(group, key_id, wire.CMD_READ, io.encode())
        if tx is None:
            return None, status
        tx.wait()
        if tx.status:
            return None, tx.status
        for header, payload in tx.replies:
            if len(payload) >= wire.IO_ATTR_SIZE_BYTES:
                got = wire.IoAttr.decode(payload)
                data = payload[wire.IO_ATTR_SIZE_BYTES:]
                return ReadResultEntry(tx.conn.address, group, header.backend_id, got, data), 0
        return None, -errno.EPROTO

    def _read_op(self, key_id: bytes, offset: int, size: int, groups=None):
        statuses = []
        for group in self._groups if groups is None else groups:
            entry, status = self._read_one(group, key_id, offset, size)
            statuses.append(status)
            if entry is not None:
                return check([entry], statuses)
        return check([], statuses or [-errno.ENXIO])

    def read_data(self, key, offset: int = 0, size: int = 0) -> AsyncResult:
        return self._submit(self._read_op, self._key_id(key), offset, size)

    def _lookup_one(self, group: int, key_id: bytes):
        tx, status = self._send(group, key_id, wire.CMD_LOOKUP, b"", use_backend=False)
        if tx is None:
            return None, status
        tx.wait()
        if tx.status:
            return None, tx.status
        for header, payload in tx.replies:
            if payload:
                try:
                    reply = wire.LookupReply.decode(payload)
                except wire.DecodeError:
                    return None, -errno.EPROTO
                return LookupResultEntry(tx.conn.address, group, header.backend_id, reply), 0
        return None, -errno.EPROTO

    def _lookup_op(self, key_id: bytes):
        statuses = []
        for group in self._groups:
            entry, status = self._lookup_one(group, key_id)
            statuses.append(status)
            if entry is not None:
                return check([entry], statuses)
        return check([], statuses or [-errno.ENXIO])

    def lookup(self, key) -> AsyncResult:
        return self._submit(self._lookup_op, self._key_id(key))

    def _read_latest_op(self, key_id: bytes, offset: int, size: int):
        found, statuses = [], []
        for group in self._groups:
            entry, status = self._lookup_one(group, key_id)
            statuses.append(status)
            if entry is not None:
                found.append(entry)
        if not found:
            return check([], statuses or [-errno.ENXIO])
        found.sort(key=lambda e: e.timestamp, reverse=True)
        return self._read_op(key_id, offset, size, groups=[e.group_id for e in found])

    def read_latest(self, key, offset: int = 0, size: int = 0) -> AsyncResult:
        return self._submit(self._read_latest_op, self._key_id(key), offset, size)

    def _remove_op(self, key_id: bytes):
        io = self._io(key_id, parent=key_id, size=0)
        sent = [(g,) + self._send(g, key_id, wire.CMD_DEL, io.encode()) for g in self._groups]
        entries, statuses = [], []
        for group, tx, status in sent:
            if tx is not None:
                status = tx.wait().status
                if status == 0:
                    entries.append(CallbackResultEntry(tx.conn.address, group))
            statuses.append(status)
        return check(entries, statuses or [-errno.ENXIO])

    def remove(self, key) -> AsyncResult:
        return self._submit(self._remove_op, self._key_id(key))

    def bulk_read(self, keys) -> AsyncResult:
        key_ids = [self._key_id(k) for k in keys]
        return self._submit(exec_ops.bulk_read_op, self, key_ids)

    # -- secondary indexes --------------------------------------------------------------

    def set_indexes(self, id, indexes, datas=None) -> AsyncResult:
        """Replace the key's indexes: ``(id, names, datas)`` or ``(id, {name: data})``."""
        entries = indexes_module.pairs(self, indexes, datas)
        return self._submit(indexes_module.update_op, self, self._key_id(id), entries, 0)

    def update_indexes(self, id, indexes, datas=None) -> AsyncResult:
        """Add the indexes to the key (or change their data), keeping the others."""
        entries = indexes_module.pairs(self, indexes, datas)
        return self._submit(indexes_module.update_op, self, self._key_id(id), entries,
                            indexes_module.FLAGS_UPDATE_ONLY)

    def remove_indexes(self, id, indexes) -> AsyncResult:
        """Drop the key from the indexes, keeping the others."""
        entries = indexes_module.pairs(self, list(indexes))
        return self._submit(indexes_module.update_op, self, self._key_id(id),
                            [(i, b"") for i, _ in entries], indexes_module.FLAGS_REMOVE_ONLY)

    def find_all_indexes(self, indexes) -> AsyncResult:
        """The objects in every index: FindIndexesResultEntry (``id``, ``indexes``)."""
        return self._submit(indexes_module.find_op, self,
                            indexes_module.name_ids(self, indexes), indexes_module.FLAGS_INTERSECT)

    def find_any_indexes(self, indexes) -> AsyncResult:
        """The objects in any of the indexes."""
        return self._submit(indexes_module.find_op, self,
                            indexes_module.name_ids(self, indexes), indexes_module.FLAGS_UNITE)

    def list_indexes(self, id) -> AsyncResult:
        """The key's indexes: IndexEntry (``index``, ``data``)."""
        return self._submit(indexes_module.list_op, self, self._key_id(id))

    # -- exec ---------------------------------------------------------------------------

    def exec_(self, id=None, event=None, data=None, src_key: int = -1) -> AsyncResult:
        if event is None:
            raise TypeError("exec_() missing required argument: 'event'")
        return self._submit(exec_ops.exec_op, self, id, _as_bytes(event), _as_bytes(data),
                            int(src_key))

    def push(self, id, context, event, data=None) -> AsyncResult:
        return self._submit(exec_ops.push_op, self, id, context, _as_bytes(event),
                            _as_bytes(data))

    def reply(self, context, data=None, final: bool = False) -> AsyncResult:
        return self._submit(exec_ops.reply_op, self, context, _as_bytes(data), bool(final))


__all__ = ["Session", "RouteList", "ErrorInfo"]
