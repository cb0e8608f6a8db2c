"""Pure-Python client for the Elliptics 2.26 wire protocol, with the original binding's API.

Public names: Logger, Config, Node, Session, Id, Address, Time, Error, NotFoundError,
TimeoutError, the result entry types, and the flag namespaces below.
"""

from . import wire as _wire
from .core import (Address, Config, Error, ErrorInfo, Id, Logger, NotFoundError, Time,
                   TimeoutError, log_level)
from .indexes import FindIndexesResultEntry, IndexEntry
from .net import Node
from .results import (AsyncResult, CallbackResultEntry, ExecContext, ExecResultEntry,
                      LookupResultEntry, ReadResultEntry)
from .session import RouteList, Session

__version__ = "2.26.11.1"


class io_flags:  # noqa: N801 - binding name
    default = 0
    append = _wire.IO_FLAGS_APPEND
    prepare = _wire.IO_FLAGS_PREPARE
    commit = _wire.IO_FLAGS_COMMIT
    overwrite = _wire.IO_FLAGS_OVERWRITE
    nocsum = _wire.IO_FLAGS_NOCSUM
    plain_write = _wire.IO_FLAGS_PLAIN_WRITE
    nodata = _wire.IO_FLAGS_PLAIN_WRITE
    cache = _wire.IO_FLAGS_CACHE
    cache_only = _wire.IO_FLAGS_CACHE_ONLY
    cache_remove_from_disk = _wire.IO_FLAGS_CACHE_REMOVE_FROM_DISK
    cas_timestamp = 1 << 15
    compare_and_swap = _wire.IO_FLAGS_COMPARE_AND_SWAP
    checksum = _wire.IO_FLAGS_CHECKSUM
    write_no_file_info = _wire.IO_FLAGS_CHECKSUM


class command_flags:  # noqa: N801 - binding name
    default = 0
    direct = _wire.FLAGS_DIRECT
    nolock = _wire.FLAGS_NOLOCK
    checksum = _wire.FLAGS_CHECKSUM
    nocache = _wire.FLAGS_NOCACHE
    direct_backend = _wire.FLAGS_DIRECT_BACKEND
    trace_bit = _wire.FLAGS_TRACE_BIT


class exec_context_flags:  # noqa: N801 - binding name
    src_block = _wire.SPH_FLAGS_SRC_BLOCK
    reply = _wire.SPH_FLAGS_REPLY
    finish = _wire.SPH_FLAGS_FINISH


__all__ = [
    "Address", "AsyncResult", "CallbackResultEntry", "Config", "Error", "ErrorInfo",
    "ExecContext", "ExecResultEntry", "FindIndexesResultEntry", "Id", "IndexEntry", "Logger", "LookupResultEntry", "Node",
    "NotFoundError", "ReadResultEntry", "RouteList", "Session", "Time", "TimeoutError",
    "command_flags", "exec_context_flags", "io_flags", "log_level",
]
