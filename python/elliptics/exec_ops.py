"""Exec (server-side processing) and bulk-read operations of a Session.

Owns the routing rules of §1.10: no key broadcasts one EXEC per connected node (first
backend in a session group); a string key goes to its owner in every session group; an
``Id`` with a nonzero group goes to exactly that group. Every exec sets SRC_BLOCK; ``push``
clears it; ``reply`` marks REPLY (plus FINISH when final) and routes to ``context.src_id``.
Also owns BULK_READ: one request per owner, group after group for the keys still missing.
"""

import errno
from typing import Dict, List, Tuple

from . import wire
from .core import Id, make_error, strerror
from .results import ExecContext, ExecResultEntry, ReadResultEntry, check


def no_route_error(group_id: int):
    code = -errno.ENXIO
    return make_error(code, f"no route for group {group_id}: {strerror(code)}: {code}")


def _targets(session, key) -> List[Tuple[object, bytes, int, int]]:
    """(connection, id, group, backend_id) per EXEC to send; connection None = no route."""
    node = session.node
    groups = session.groups
    if key is None:
        out = []
        for conn in node.connections():
            for backend in conn.backends:
                if backend.group_id in groups and backend.ids:
                    out.append((conn, backend.ids[0], backend.group_id, backend.backend_id))
                    break
        return out
    if isinstance(key, ExecContext):
        key = key.src_id
    if isinstance(key, Id) and key.group_id:
        targets_groups, key_id = [key.group_id], key.id
    else:
        targets_groups = groups
        key_id = key.id if isinstance(key, Id) else session._key_id(key)
    out = []
    for group in targets_groups:
        route = node.routes.lookup(group, key_id)
        out.append((route.owner if route else None, key_id, group,
                    route.backend_id if route else 0))
    return out


def _send_exec(session, targets, make_sph, event: bytes, data: bytes):
    sent = []
    for conn, key_id, group, backend_id in targets:
        if conn is None:
            sent.append((group, None, -errno.ENXIO))
            continue
        sph = make_sph(key_id, conn)
        header = wire.Header(id=key_id, group_id=group, cmd=wire.CMD_EXEC, backend_id=backend_id,
                             trace_id=session.trace_id,
                             flags=wire.FLAGS_NEED_ACK | session.cflags)
        payload = wire.encode_exec(sph, event, data)
        sent.append((group, session.node.request(conn, header, payload, session.timeout), 0))
    entries, statuses = [], []
    for group, tx, status in sent:
        if tx is None:
            statuses.append(status)
            continue
        tx.wait()
        statuses.append(tx.status)
        for header, payload in tx.replies:
            if header.status or len(payload) < wire.SPH_SIZE_BYTES:
                continue
            try:
                sph, ev, body = wire.decode_exec(payload)
            except wire.DecodeError:
                continue
            entries.append(ExecResultEntry(tx.conn.address, group, ExecContext(sph, ev, body)))
    return check(entries, statuses or [-errno.ENXIO])


def _addr_of(conn) -> bytes:
    a = conn.address
    return wire.NetAddr(a.host, a.port, a.family).encode()


def exec_op(session, key, event: bytes, data: bytes, src_key: int):
    def make(key_id, conn):
        return wire.Sph(src=key_id, flags=wire.SPH_FLAGS_SRC_BLOCK, src_key=src_key,
                        addr=_addr_of(conn))
    return _send_exec(session, _targets(session, key), make, event, data)


def push_op(session, key, context: ExecContext, event: bytes, data: bytes):
    def make(key_id, conn):
        sph = wire.Sph(**vars(context.sph))
        sph.flags &= ~(wire.SPH_FLAGS_SRC_BLOCK | wire.SPH_FLAGS_REPLY | wire.SPH_FLAGS_FINISH)
        return sph
    return _send_exec(session, _targets(session, key), make, event, data)


def reply_op(session, context: ExecContext, data: bytes, final: bool):
    event = context.event.encode("utf-8")

    def make(key_id, conn):
        sph = wire.Sph(**vars(context.sph))
        sph.flags &= ~wire.SPH_FLAGS_SRC_BLOCK
        sph.flags |= wire.SPH_FLAGS_REPLY | (wire.SPH_FLAGS_FINISH if final else 0)
        return sph
    return _send_exec(session, _targets(session, Id(context.sph.src)), make, event, data)


def bulk_read_op(session, key_ids: List[bytes]):
    remaining = list(dict.fromkeys(key_ids))
    entries, statuses = [], []
    for group in session.groups:
        if not remaining:
            break
        batches: Dict[Tuple[int, int], list] = {}
        for key_id in remaining:
            route = session.node.routes.lookup(group, key_id)
            if route is None:
                statuses.append(-errno.ENXIO)
                continue
            batches.setdefault((id(route.owner), route.backend_id), [route]).append(key_id)
        txs = []
        for (_, backend_id), (route, *ids) in batches.items():
            body = b"".join(wire.IoAttr(parent=k, id=k, flags=session.ioflags).encode()
                            for k in ids)
            head = wire.IoAttr(parent=ids[0], id=ids[0], flags=session.ioflags,
                               size=len(ids) * wire.IO_ATTR_SIZE_BYTES)
            header = wire.Header(id=ids[0], group_id=group, cmd=wire.CMD_BULK_READ,
                                 backend_id=backend_id, trace_id=session.trace_id,
                                 flags=wire.FLAGS_NEED_ACK | session.cflags)
            txs.append(session.node.request(route.owner, header, head.encode() + body,
                                            session.timeout))
        for tx in txs:
            tx.wait()
            got_any = False
            for header, payload in tx.replies:
                if header.status or len(payload) < wire.IO_ATTR_SIZE_BYTES:
                    continue
                io = wire.IoAttr.decode(payload)
                data = payload[wire.IO_ATTR_SIZE_BYTES:]
                entries.append(ReadResultEntry(tx.conn.address, group, header.backend_id, io,
                                               data))
                got_any = True
                if io.id in remaining:
                    remaining.remove(io.id)
            statuses.append(0 if got_any else (tx.status or -errno.ENOENT))
    return check(entries, statuses or [-errno.ENXIO])
