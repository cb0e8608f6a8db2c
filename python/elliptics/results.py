"""Result objects: the async handle returned by every Session call and its entries.

Owns ``AsyncResult`` (``get``/``wait``/iteration/``connect``) and the entry types with the
attribute names of the original binding. The checker rule lives here: an operation fails
only when none of its attempts succeeded (the binding's ``at_least_one``).
"""

import concurrent.futures
from typing import Callable, List, Optional

from . import wire
from .core import Address, ErrorInfo, Id, Time, make_error, strerror


class LookupResultEntry:
    """WRITE / LOOKUP result: where the object lives and its file info."""

    def __init__(self, address: Address, group_id: int, backend_id: int,
                 reply: Optional[wire.LookupReply]):
        self.address = address
        self.group_id = group_id
        self.backend_id = backend_id
        self.status = 0
        self.error = ErrorInfo()
        info = reply.info if reply is not None else wire.FileInfo()
        self.storage_address = (Address(reply.addr.host, reply.addr.port, reply.addr.family)
                                if reply is not None else address)
        self.size = info.size
        self.offset = info.offset
        self.record_flags = info.record_flags
        self.checksum = info.checksum
        self.timestamp = Time(info.mtime_tsec, info.mtime_tnsec)
        self.filepath = reply.path if reply is not None else ""

    def __repr__(self) -> str:
        return f"<LookupResultEntry {self.address} g{self.group_id} size={self.size}>"


class ReadResultEntry:
    def __init__(self, address: Address, group_id: int, backend_id: int, io: wire.IoAttr,
                 data: bytes):
        self.address = address
        self.group_id = group_id
        self.backend_id = backend_id
        self.status = 0
        self.error = ErrorInfo()
        self.id = Id(io.id, group_id)
        self.data = data
        self.timestamp = Time(io.tsec, io.tnsec)
        self.user_flags = io.user_flags
        self.offset = io.offset
        self.size = io.size
        self.total_size = io.total_size
        self.record_flags = io.record_flags
        self.io_attribute = io

    def __repr__(self) -> str:
        return f"<ReadResultEntry {self.address} g{self.group_id} size={self.size}>"


class CallbackResultEntry:
    """A bare acknowledgement (remove)."""

    def __init__(self, address: Address, group_id: int, status: int = 0):
        self.address = address
        self.group_id = group_id
        self.status = status
        self.error = ErrorInfo(status, _message(status))


class ExecContext:
    """The exec packet as seen by the client: event, data, src_key, src_id, address."""

    def __init__(self, sph: wire.Sph, event: bytes, data: bytes):
        self.sph = sph
        self.event = event.decode("utf-8", "replace")
        self.data = data
        self.src_key = sph.src_key
        self.src_id = Id(sph.src)
        self.flags = sph.flags
        self.status = sph.status
        try:
            addr = wire.NetAddr.decode(sph.addr)
            self.address = Address(addr.host, addr.port, addr.family)
        except (wire.DecodeError, OSError, ValueError):
            self.address = None

    def is_final(self) -> bool:
        return bool(self.flags & wire.SPH_FLAGS_FINISH)


class ExecResultEntry:
    def __init__(self, address: Address, group_id: int, context: ExecContext):
        self.address = address
        self.group_id = group_id
        self.context = context
        self.status = 0
        self.error = ErrorInfo()


def _message(code: int) -> str:
    return f"{strerror(code)}: {code}" if code else ""


def check(entries: list, statuses: List[int]):
    """at_least_one checker: (entries, None) or ([], Error) when no attempt succeeded."""
    total = max(len(statuses), 1)
    ok = sum(1 for s in statuses if s == 0)
    if ok:
        return entries, None
    code = next((s for s in statuses if s), -6)
    return [], make_error(code, f"insufficient results count due to checker: {ok} of {total} "
                                f"({total}): {strerror(code)}: {code}")


class AsyncResult:
    """What every Session call returns; the operation runs whether or not it is waited for."""

    def __init__(self, future: concurrent.futures.Future):
        self._future = future

    def _outcome(self):
        entries, error = self._future.result()
        return entries, error

    def get(self) -> list:
        entries, error = self._outcome()
        if error is not None:
            raise error
        return list(entries)

    def wait(self) -> None:
        self.get()

    def ready(self) -> bool:
        return self._future.done()

    def successful(self) -> bool:
        return self._outcome()[1] is None

    def error(self) -> ErrorInfo:
        error = self._outcome()[1]
        return ErrorInfo() if error is None else ErrorInfo(error.code, error.message)

    def __iter__(self):
        entries, _ = self._outcome()
        return iter(list(entries))

    def connect(self, result_handler: Optional[Callable] = None,
                final_handler: Optional[Callable] = None) -> None:
        """Call ``result_handler(entry)`` per entry, then ``final_handler(error_info)``."""

        def done(_):
            entries, error = self._outcome()
            if result_handler is not None:
                for entry in entries:
                    result_handler(entry)
            if final_handler is not None:
                final_handler(ErrorInfo() if error is None else ErrorInfo(error.code,
                                                                          error.message))

        self._future.add_done_callback(done)
