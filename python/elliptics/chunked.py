"""Values in chunks, as the original binding does them.

``write_data(key, data, offset, chunk_size)`` with ``chunk_size > 0`` and more data than
one chunk reserves the whole value with a PREPARE|PLAIN_WRITE of the first chunk
(``io.num`` = offset + size), sends the middle chunks as PLAIN_WRITE (``io.num`` = end of
the chunk) and the last one as COMMIT|PLAIN_WRITE (``io.num`` = offset + size); every chunk
lands at offset + its place in the value, and each step goes only to the groups where the
previous one succeeded. Reads in chunks are READs of ``chunk_size`` bytes at growing
offsets, all from the group that answered the first one. No frame holds more than one
chunk, and ``write_file`` / ``read_file`` hold one chunk of the file at a time.
"""

import errno
import os

from . import wire
from .results import ReadResultEntry, check

FILE_CHUNK_BYTES = 8 << 20


def write_chunked_op(session, key_id: bytes, source, total: int, offset: int,
                     chunk_size: int):
    """PREPARE / PLAIN_WRITE / COMMIT of ``total`` bytes; ``source(at, n)`` gives the bytes."""
    if chunk_size <= 0 or total <= chunk_size:
        data = source(0, total)
        return session._write_op(key_id, data, session._io(key_id, data, offset=offset,
                                                           stamp=True))
    end = offset + total
    s = session.clone()
    first = source(0, chunk_size)
    io = s._io(key_id, first, flags=wire.IO_FLAGS_PREPARE | wire.IO_FLAGS_PLAIN_WRITE,
               offset=offset, num=end, stamp=True)
    entries, err = s._write_op(key_id, first, io)
    done = chunk_size
    while err is None:
        s.set_groups(sorted({e.group_id for e in entries}))
        if done + chunk_size >= total:
            last = source(done, total - done)
            io = s._io(key_id, last, flags=wire.IO_FLAGS_COMMIT | wire.IO_FLAGS_PLAIN_WRITE,
                       offset=offset + done, num=end, stamp=True)
            return s._write_op(key_id, last, io)
        piece = source(done, chunk_size)
        io = s._io(key_id, piece, flags=wire.IO_FLAGS_PLAIN_WRITE, offset=offset + done,
                   num=offset + done + len(piece), stamp=True)
        entries, err = s._write_op(key_id, piece, io)
        done += chunk_size
    return entries, err


def read_chunked_op(session, key_id: bytes, offset: int, size: int, chunk_size: int, out):
    """READs of at most ``chunk_size`` bytes; ``out(bytes)`` gets each piece in order.
    Returns ([entry of the first READ with size = bytes read], None) or ([], error)."""
    if chunk_size <= 0:
        first_len = size
    else:
        first_len = min(size, chunk_size) if size else chunk_size
    entries, err = session._read_op(key_id, offset, first_len)
    if err is not None:
        return [], err
    first = entries[0]
    out(first.data)
    end = first.total_size if size == 0 else min(offset + size, first.total_size)
    at = offset + len(first.data)
    while at < end and first.data and chunk_size > 0:
        got, err = session._read_op(key_id, at, min(chunk_size, end - at),
                                    groups=[first.group_id])
        if err is not None:
            return [], err
        if not got or not got[0].data:
            break
        out(got[0].data)
        at += len(got[0].data)
    io = first.io_attribute
    io.offset, io.size = offset, at - offset
    entry = ReadResultEntry(first.address, first.group_id, first.backend_id, io, b"")
    return [entry], None


def read_data_chunked_op(session, key_id: bytes, offset: int, size: int, chunk_size: int):
    pieces = []
    entries, err = read_chunked_op(session, key_id, offset, size, chunk_size, pieces.append)
    if err is None:
        entries[0].data = b"".join(pieces)
    return entries, err


def write_file_op(session, key_id: bytes, filename, offset: int, local_offset: int,
                  size: int, chunk_size: int):
    try:
        f = open(filename, "rb")
    except OSError as e:
        return check([], [-(e.errno or errno.EIO)])
    with f:
        left = max(os.fstat(f.fileno()).st_size - local_offset, 0)
        total = min(size, left) if size else left

        def source(at: int, n: int) -> bytes:
            return os.pread(f.fileno(), n, local_offset + at)

        return write_chunked_op(session, key_id, source, total, offset, chunk_size)


def read_file_op(session, key_id: bytes, filename, offset: int, size: int, chunk_size: int):
    try:
        f = open(filename, "wb")
    except OSError as e:
        return check([], [-(e.errno or errno.EIO)])
    with f:
        return read_chunked_op(session, key_id, offset, size, chunk_size, f.write)
