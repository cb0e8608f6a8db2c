"""Per-invocation streams handed to a handler: ``Request`` (chunks in) and ``Response``.

Owns the handler-side view of one channel. ``request.read()`` returns a future the handler
yields (``data = yield request.read()``); it resolves to the next chunk, raises
``ChokeEvent`` after the engine closed the stream and ``RequestError`` after an error.
``Response`` sends ``[ch, 0, [chunk]]``, ``[ch, 1, [[category, code], reason]]`` and
``[ch, 2, []]``; error and close are terminal and idempotent.
"""

import collections
import threading
import time
from typing import Callable, Optional

from ..exceptions import ChokeEvent, ClosedError, InvalidChunk, RequestError, TimeoutError

ERROR_CATEGORY = 42
ERROR_UNCAUGHT_EXCEPTION = 100
ERROR_NO_HANDLER = 200

RPC_CHUNK = 0
RPC_ERROR = 1
RPC_CLOSE = 2


class ReadFuture:
    """What ``request.read()`` returns; ``result()`` blocks until the next stream item."""

    def __init__(self, request: "Request", timeout_s: float):
        self._request = request
        self._timeout_s = timeout_s

    def result(self):
        return self._request._next(self._timeout_s)


class Request:
    def __init__(self, channel: int, event: bytes):
        self.channel = channel
        self.event = event
        self._items = collections.deque()
        self._cond = threading.Condition()
        self._ended = None  # the terminal item once seen

    # engine side
    def push(self, chunk: bytes) -> None:
        with self._cond:
            self._items.append(("chunk", chunk))
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._items.append(("close",))
            self._cond.notify_all()

    def error(self, category: int, code: int, reason: str) -> None:
        with self._cond:
            self._items.append(("error", category, code, reason))
            self._cond.notify_all()

    # handler side
    def read(self, timeout: float = 0) -> ReadFuture:
        return ReadFuture(self, timeout)

    def _next(self, timeout_s: float):
        deadline = time.monotonic() + timeout_s if timeout_s else None
        with self._cond:
            while not self._items and self._ended is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no chunk within {timeout_s} s")
                self._cond.wait(remaining)
            item = self._items.popleft() if self._items else self._ended
            if item[0] != "chunk":
                self._ended = item
        if item[0] == "chunk":
            return item[1]
        if item[0] == "close":
            raise ChokeEvent("the request stream is closed")
        raise RequestError(item[1], item[2], item[3])


class Response:
    def __init__(self, channel: int, send: Callable[[list], None]):
        self.channel = channel
        self._send = send
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, chunk) -> None:
        if not isinstance(chunk, (str, bytes, bytearray)):
            raise InvalidChunk(f"chunk must be str or bytes, not {type(chunk).__name__}")
        with self._lock:
            if self._closed:
                raise ClosedError("the response stream is closed")
            data = bytes(chunk) if isinstance(chunk, bytearray) else chunk
            self._send([self.channel, RPC_CHUNK, [data]])

    def error(self, code: int, message, category: Optional[int] = None) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._send([self.channel, RPC_ERROR,
                        [[ERROR_CATEGORY if category is None else category, int(code)],
                         str(message)]])

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._send([self.channel, RPC_CLOSE, []])
