"""``Worker``: the worker end of the Cocaine v1 protocol over the engine's unix socket.

Owns the connection to ``--endpoint``: msgpack arrays back to back, no length prefix,
``[channel, type, args]`` (an optional 4th element, headers, is accepted and ignored).
Channel 1 is control: the worker sends handshake ``[1, 0, [uuid]]`` first, then heartbeats
``[1, 0, []]`` every ``heartbeat_timeout`` seconds; the engine answers each heartbeat with
``[1, 0, []]`` and a missing answer after ``disown_timeout`` seconds makes the worker quit.
``[1, 1, [code, reason]]`` from the engine is terminate: echoed, then the worker stops.
A channel above the highest seen opens an invocation (type 0, ``[event]``); on a known
channel type 0 is a chunk, 1 an error and 2 the end of the request stream. Each invocation
runs its handler on its own thread, so a blocking handler never stalls heartbeats.
"""

import argparse
import inspect
import socket
import sys
import threading
import traceback
from typing import Dict, Optional

import msgpack

from .stream import (ERROR_NO_HANDLER, ERROR_UNCAUGHT_EXCEPTION, ReadFuture, Request, Response,
                     RPC_CHUNK, RPC_CLOSE, RPC_ERROR)

CONTROL_CHANNEL = 1
CONTROL_HEARTBEAT = 0
CONTROL_TERMINATE = 1
FRAME_BYTES_MAX = 100 * 1024 * 1024
RECV_CHUNK_BYTES = 1 << 16
PROTOCOL_VERSION = 1


def _parse_args(argv):
    parser = argparse.ArgumentParser(add_help=False)
    for name in ("--app", "--uuid", "--endpoint", "--locator", "--protocol"):
        parser.add_argument(name)
    known, _ = parser.parse_known_args(argv)
    return known


def _as_bytes(value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise TypeError(f"expected bytes or str, got {type(value).__name__}")


def _resolve(yielded):
    if isinstance(yielded, ReadFuture):
        return yielded.result()
    if isinstance(yielded, (list, tuple)):
        return type(yielded)(_resolve(y) for y in yielded)
    if hasattr(yielded, "result") and callable(yielded.result):
        return yielded.result()
    if hasattr(yielded, "get") and callable(yielded.get):
        return yielded.get()
    return yielded


class Worker:
    def __init__(self, disown_timeout: float = 5.0, heartbeat_timeout: float = 20.0,
                 app: Optional[str] = None, endpoint: Optional[str] = None,
                 uuid: Optional[str] = None, argv=None):
        args = _parse_args(sys.argv[1:] if argv is None else argv)
        self.app = app or args.app or "app/standalone"
        self.endpoint = endpoint or args.endpoint
        self.uuid = uuid or args.uuid
        if not self.endpoint or not self.uuid:
            raise ValueError("--endpoint and --uuid are required")
        if args.protocol not in (None, str(PROTOCOL_VERSION)):
            self._log(f"--protocol {args.protocol} requested; this worker speaks v1 only")
        self.disown_timeout_s = float(disown_timeout)
        self.heartbeat_timeout_s = float(heartbeat_timeout)
        self._handlers: Dict[bytes, object] = {}
        self._sock: Optional[socket.socket] = None
        self._send_lock = threading.Lock()
        self._stopped = threading.Event()
        self._heartbeat_answered = threading.Event()
        self._requests: Dict[int, Request] = {}
        self._max_channel = CONTROL_CHANNEL
        self.disowned = False

    def on(self, event, handler) -> None:
        self._handlers[_as_bytes(event) if isinstance(event, str) else event] = handler

    def run(self, binds: Optional[dict] = None) -> None:
        for event, handler in (binds or {}).items():
            self.on(event, handler)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(self.endpoint)
        self._send([CONTROL_CHANNEL, CONTROL_HEARTBEAT, [self.uuid]])
        threading.Thread(target=self._heartbeat_loop, name="cocaine-heartbeat",
                         daemon=True).start()
        try:
            self._read_loop()
        finally:
            self._stopped.set()
            try:
                self._sock.close()
            except OSError:
                pass

    # -- transport ----------------------------------------------------------------------

    def _send(self, frame: list) -> None:
        data = msgpack.packb(frame, use_bin_type=True)
        with self._send_lock:
            if self._sock is None:
                return
            try:
                self._sock.sendall(data)
            except OSError as err:
                self._log(f"send failed: {err}")
                self._stop()

    def _stop(self) -> None:
        self._stopped.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _read_loop(self) -> None:
        unpacker = msgpack.Unpacker(raw=False, use_list=True, max_buffer_size=FRAME_BYTES_MAX,
                                    unicode_errors="surrogateescape")
        while not self._stopped.is_set():
            try:
                data = self._sock.recv(RECV_CHUNK_BYTES)
            except OSError:
                break
            if not data:
                break
            try:
                unpacker.feed(data)
                for frame in unpacker:
                    self._on_frame(frame)
                    if self._stopped.is_set():
                        break
            except (msgpack.exceptions.BufferFull, ValueError) as err:
                self._log(f"protocol error: {err}")
                break

    def _heartbeat_loop(self) -> None:
        while not self._stopped.is_set():
            self._heartbeat_answered.clear()
            self._send([CONTROL_CHANNEL, CONTROL_HEARTBEAT, []])
            if not self._heartbeat_answered.wait(self.disown_timeout_s):
                if not self._stopped.is_set():
                    self.disowned = True
                    self._log("disowned")
                    self._stop()
                return
            if self._stopped.wait(self.heartbeat_timeout_s):
                return

    # -- dispatch -----------------------------------------------------------------------

    def _on_frame(self, frame) -> None:
        if (not isinstance(frame, list) or len(frame) not in (3, 4)
                or not isinstance(frame[0], int) or not isinstance(frame[1], int)
                or not isinstance(frame[2], list)):
            self._log(f"dropping malformed frame {frame!r:.200}")
            return
        channel, kind, args = frame[0], frame[1], frame[2]
        if channel == CONTROL_CHANNEL:
            if kind == CONTROL_HEARTBEAT:
                self._heartbeat_answered.set()
            elif kind == CONTROL_TERMINATE:
                code, reason = (list(args) + [0, ""])[:2]
                self._send([CONTROL_CHANNEL, CONTROL_TERMINATE, [code, reason]])
                self._stop()
            return
        if channel < CONTROL_CHANNEL:
            return
        if channel > self._max_channel:
            self._max_channel = channel
            if kind != 0 or not args:
                self._log(f"channel {channel}: first frame is type {kind}, not invoke")
                return
            self._invoke(channel, _as_bytes(args[0]))
            return
        request = self._requests.get(channel)
        if request is None:
            return
        try:
            if kind == RPC_CHUNK and args:
                request.push(_as_bytes(args[0]))
            elif kind == RPC_CLOSE:
                request.close()
                self._requests.pop(channel, None)
            elif kind == RPC_ERROR:
                (category, code), reason = args[0], args[1]
                request.error(int(category), int(code), str(reason))
                self._requests.pop(channel, None)
        except (TypeError, ValueError, IndexError) as err:
            self._log(f"channel {channel}: bad frame {frame!r:.200}: {err}")

    def _invoke(self, channel: int, event: bytes) -> None:
        response = Response(channel, self._send)
        handler = self._handlers.get(event)
        if handler is None:
            response.error(ERROR_NO_HANDLER, f"there is no handler for event {event!r}")
            return
        request = Request(channel, event)
        self._requests[channel] = request
        threading.Thread(target=self._drive, args=(handler, request, response),
                         name=f"cocaine-ch{channel}", daemon=True).start()

    def _drive(self, handler, request: Request, response: Response) -> None:
        try:
            result = handler(request, response)
            if inspect.isgenerator(result):
                value, exc = None, None
                while True:
                    try:
                        yielded = result.throw(exc) if exc is not None else result.send(value)
                    except StopIteration:
                        break
                    value, exc = None, None
                    try:
                        value = _resolve(yielded)
                    except Exception as err:  # delivered into the handler at its yield
                        exc = err
        except Exception as err:
            self._log(f"handler for {request.event!r} failed:\n{traceback.format_exc()}")
            response.error(ERROR_UNCAUGHT_EXCEPTION, str(err))
        finally:
            response.close()

    @staticmethod
    def _log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
