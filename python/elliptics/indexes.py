"""Secondary indexes of a Session, sent as the 2.26 bindings send them.

Owns the index bodies (``dnet_indexes_request`` 136 B + entries of 124 B + data,
``dnet_indexes_reply`` 48 B + entries of 84 B), the stored tables and find results
(msgpack in the old raw format, behind the u64 magic for tables), and the ids they live
under: an object's index list under sha512(id + "\\0object_table\\0"); an index's object
list for index shard s under sha512(name + "\\0index_table\\0") with its first 32 bytes
zeroed and bytes 0..4 = BE u32 (2^32 * s / shard_count). The shard count is the one the
node announced in the handshake.

- set_indexes: INDEXES_UPDATE to the object table in every group (the node updates the
  index tables); update_indexes / remove_indexes add INDEXES_INTERNAL per index and group.
- find_all_indexes / find_any_indexes: INDEXES_FIND, the shards of one node in one
  command, group after group for the shards not answered yet.
- list_indexes: read_latest of the object table.
"""

import errno
import hashlib
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import msgpack

from . import wire
from .core import Id, make_error, strerror, transform
from .results import CallbackResultEntry, check

CMD_INDEXES_UPDATE = 20
CMD_INDEXES_INTERNAL = 21
CMD_INDEXES_FIND = 22

FLAGS_INTERSECT = 1 << 0
FLAGS_UNITE = 1 << 1
FLAGS_UPDATE_ONLY = 1 << 2
FLAGS_MORE = 1 << 3
FLAGS_REMOVE_ONLY = 1 << 4
ENTRY_INSERT = 1 << 0
ENTRY_REMOVE = 1 << 1

INDEX_TABLE_MAGIC = 0x5DA38CFBE7734027

_REQUEST = struct.Struct("<64sIQIII40sQ")
_ENTRY = struct.Struct("<64sQIII32sQ")
_REPLY = struct.Struct("<40sQ")
_REPLY_ENTRY = struct.Struct("<64si16s")


class IndexEntry:
    """An index of an object: ``index`` (Id of the name's hash) and ``data``."""

    def __init__(self, index: bytes, data: bytes):
        self.index = Id(index)
        self.data = data

    def __repr__(self) -> str:
        return f"<IndexEntry {self.index.id.hex()[:16]} {self.data!r}>"


class FindIndexesResultEntry:
    """An object found by a find: ``id`` and ``indexes`` (IndexEntry per index)."""

    def __init__(self, id: bytes, indexes: List[IndexEntry]):
        self.id = Id(id)
        self.indexes = indexes

    def __repr__(self) -> str:
        return f"<FindIndexesResultEntry {self.id.id.hex()[:16]} {self.indexes}>"


# -- ids and layouts ----------------------------------------------------------------------

def object_table_id(object_id: bytes) -> bytes:
    return hashlib.sha512(object_id + b"\0object_table\0").digest()


def index_table_id(name_id: bytes, shard: int, shard_count: int) -> bytes:
    base = hashlib.sha512(name_id + b"\0index_table\0").digest()
    prefix = ((shard << 32) // max(shard_count, 1)) & 0xFFFFFFFF
    return struct.pack(">I", prefix) + b"\0" * 28 + base[32:]


def index_shard_of(table_id: bytes, shard_count: int) -> int:
    return int.from_bytes(table_id, "big") % max(shard_count, 1)


def encode_request(object_id: bytes, entries: Sequence[Tuple[bytes, int, bytes]], *,
                   group: int = 0, flags: int = 0, shard_id: int = 0,
                   shard_count: int = 0, entry_shards: bool = False) -> bytes:
    """One dnet_indexes_request; entries are (id, entry flags, data)."""
    out = _REQUEST.pack(object_id, group, 0, flags, shard_id, shard_count, b"", len(entries))
    for entry_id, entry_flags, data in entries:
        es, ec = (shard_id, shard_count) if entry_shards else (0, 0)
        out += _ENTRY.pack(entry_id, entry_flags, 0, es, ec, b"", len(data)) + data
    return out


def decode_reply(payload: bytes) -> List[Tuple[bytes, int]]:
    """dnet_indexes_reply -> [(table id, status)]."""
    if len(payload) < _REPLY.size:
        raise wire.DecodeError("dnet_indexes_reply is too short")
    _, count = _REPLY.unpack_from(payload)
    if _REPLY.size + count * _REPLY_ENTRY.size != len(payload):
        raise wire.DecodeError("dnet_indexes_reply entries_count does not match its size")
    return [_REPLY_ENTRY.unpack_from(payload, _REPLY.size + i * _REPLY_ENTRY.size)[:2]
            for i in range(count)]


def _raw(value) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise wire.DecodeError("index table: expected a raw")
    return bytes(value)


def decode_table(data: bytes) -> List[Tuple[bytes, bytes]]:
    """A stored table -> [(id, data)] in stored (id) order."""
    if len(data) < 8 or struct.unpack_from("<Q", data)[0] != INDEX_TABLE_MAGIC:
        raise wire.DecodeError("index table: bad magic")
    try:
        table = msgpack.unpackb(data[8:], raw=True)
    except (ValueError, msgpack.UnpackException) as err:
        raise wire.DecodeError(f"index table: {err}") from err
    if not isinstance(table, (list, tuple)) or len(table) < 2 or table[0] != 2:
        raise wire.DecodeError("index table: unknown version")
    return [(_raw(e[0]), _raw(e[1])) for e in table[1]]


def decode_find(payload: bytes) -> List[Tuple[bytes, List[Tuple[bytes, bytes]]]]:
    """An INDEXES_FIND reply -> [(object id, [(table id, data)])]."""
    try:
        results = msgpack.unpackb(payload, raw=True)
    except (ValueError, msgpack.UnpackException) as err:
        raise wire.DecodeError(f"find result: {err}") from err
    out = []
    for r in results:
        if len(r) != 3 or r[0] != 1:
            raise wire.DecodeError("find result: unknown version")
        out.append((_raw(r[1]), [(_raw(i[0]), _raw(i[1])) for i in r[2]]))
    return out


# -- operations ---------------------------------------------------------------------------

def name_ids(session, names) -> List[bytes]:
    return [transform(n, session.namespace) for n in names]


def update_op(session, object_id: bytes, entries: List[Tuple[bytes, bytes]], flags: int):
    """INDEXES_UPDATE per group, plus INDEXES_INTERNAL per index and group for UPDATE_ONLY
    and REMOVE_ONLY; one entry per transaction, with its final status."""
    groups = session.groups
    if not groups:
        return [], make_error(-errno.ENXIO, "session_set_indexes: groups list is empty: "
                                            f"{strerror(-errno.ENXIO)}: {-errno.ENXIO}")
    table = object_table_id(object_id)
    sent = []
    for group in groups:
        body = encode_request(object_id, [(i, 0, d) for i, d in entries], group=group,
                              flags=flags)
        sent.append((group,) + session._send(group, table, CMD_INDEXES_UPDATE, body,
                                             use_backend=False))
    if flags & (FLAGS_UPDATE_ONLY | FLAGS_REMOVE_ONLY):
        count = session.node.indexes_shard_count
        shard = index_shard_of(table, count)
        action = ENTRY_INSERT if flags & FLAGS_UPDATE_ONLY else ENTRY_REMOVE
        for name, data in entries:
            index_table = index_table_id(name, shard, count)
            body = encode_request(object_id, [(index_table, action, data)], shard_id=shard,
                                  shard_count=count, entry_shards=True)
            for group in groups:
                sent.append((group,) + session._send(group, index_table, CMD_INDEXES_INTERNAL,
                                                     body, use_backend=False))
    results, statuses = [], []
    for group, tx, status in sent:
        if tx is not None:
            status = tx.wait().status
            results.append(CallbackResultEntry(tx.conn.address, group, status))
        statuses.append(status)
    positive = [r for r in results if r.status == 0]
    return check(positive, statuses)


def find_op(session, names: List[bytes], flags: int):
    if not names:
        return [], None
    count = session.node.indexes_shard_count
    tables = [[index_table_id(n, shard, count) for n in names] for shard in range(count)]
    name_of: Dict[bytes, bytes] = {t: n for shard in tables for t, n in zip(shard, names)}
    pending = list(range(count))
    found: List[FindIndexesResultEntry] = []
    answered, statuses = False, []
    for group in session.groups:
        if not pending:
            break
        batches: List[Tuple[object, List[int]]] = []
        for shard in pending:
            route = session.node.routes.lookup(group, tables[shard][0])
            owner = route.owner if route is not None else None
            if batches and owner is not None and batches[-1][0] is owner:
                batches[-1][1].append(shard)
            else:
                batches.append((owner, [shard]))
        sent = []
        for owner, batch in batches:
            body = b"".join(
                encode_request(tables[s][0], [(t, 0, b"") for t in tables[s]], group=group,
                               flags=flags | (FLAGS_MORE if i + 1 < len(batch) else 0))
                for i, s in enumerate(batch))
            tx, status = session._send(group, tables[batch[0]][0], CMD_INDEXES_FIND, body,
                                       use_backend=False)
            sent.append((batch, tx, status))
        still = []
        for batch, tx, status in sent:
            if tx is None:
                statuses.append(status)
                still.extend(batch)
                continue
            tx.wait()
            got_data = False
            for header, payload in tx.replies:
                if header.status or not payload:
                    continue
                got_data = True
                for object_id, indexes in decode_find(payload):
                    found.append(FindIndexesResultEntry(object_id, [
                        IndexEntry(name_of[t], d) for t, d in indexes if t in name_of]))
            statuses.append(tx.status)
            # A node that searched and found nothing answers with an error status: an
            # empty result, not a failure (the binding's find has no checker).
            if got_data or tx.status not in (-errno.ENXIO, -errno.ETIMEDOUT,
                                              -errno.ECONNRESET):
                answered = True
            if not got_data:
                still.extend(batch)
        pending = still
    if answered:
        return found, None
    return check([], statuses or [-errno.ENXIO])


def list_op(session, object_id: bytes):
    entries, error = session._read_latest_op(object_table_id(object_id), 0, 0)
    if error is not None:
        return [], error
    try:
        table = decode_table(entries[0].data)
    except wire.DecodeError as err:
        return [], make_error(-errno.EINVAL, f"list_indexes: {err}: -22")
    return [IndexEntry(i, d) for i, d in table], None


def pairs(session, indexes, datas: Optional[Sequence] = None) -> List[Tuple[bytes, bytes]]:
    """(names, datas) or {name: data} -> [(name hash, data bytes)]."""
    if isinstance(indexes, dict):
        items = list(indexes.items())
    else:
        names = list(indexes)
        values = list(datas) if datas is not None else [b""] * len(names)
        if len(values) != len(names):
            raise ValueError("indexes and datas sizes mismatch")
        items = list(zip(names, values))
    out = []
    for name, data in items:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data or b"")
        out.append((transform(name, session.namespace), raw))
    return out
