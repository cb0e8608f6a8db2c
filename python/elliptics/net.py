"""Client node: TCP connections, handshake, route list, transactions, one network thread.

Owns every socket of a ``Node``. ``add_remotes`` dials synchronously (REVERSE_LOOKUP
handshake, then ROUTE_LIST and the nodes it names); afterwards one background thread per
Node reads all connections, matches replies to transactions by trans number, applies
UPDATE_IDS, expires transactions past their deadline (-ETIMEDOUT) and fails the pending
ones of a dropped connection (-ECONNRESET). A checker thread re-dials lost addresses every
``check_timeout`` seconds. Session operations run on a small executor so that a result
nobody waits for still completes; ``Node.submit`` returns once the operation has written
its first requests (it starts waiting for a reply, or finishes), as the C++ client sends
in the caller's thread. So a request made before another leaves first: a worker's
unwaited ``write_data`` is on the wire before its ``response.close()``.
"""

import concurrent.futures
import errno
import itertools
import os
import selectors
import socket
import threading
import time
from typing import Dict, List, Optional, Tuple

from . import wire
from .core import Address, Config, Error, Logger, log_level, to_address
from .route import DuplicateRouteError, RouteTable

RECV_CHUNK_BYTES = 1 << 16
SEND_TIMEOUT_S = 60.0
LOOP_TICK_S = 0.1

# Per executor thread: the event that tells ``Node.submit``'s caller the requests are out.
_op_local = threading.local()


def _mark_sent() -> None:
    sent = getattr(_op_local, "sent", None)
    if sent is not None:
        sent.set()


class Transaction:
    """One request in flight: collects reply frames until a frame without MORE."""

    def __init__(self, trans: int, conn: "Connection", deadline: float):
        self.trans = trans
        self.conn = conn
        self.deadline = deadline
        self.replies: List[Tuple[wire.Header, bytes]] = []
        self.status = 0
        self._done = threading.Event()

    def on_frame(self, header: wire.Header, payload: bytes) -> bool:
        self.replies.append((header, payload))
        if header.status and not self.status:
            self.status = header.status
        return not header.more

    def complete(self, status: int = 0) -> None:
        if status and not self.status:
            self.status = status
        self._done.set()

    def wait(self) -> "Transaction":
        _mark_sent()
        self._done.wait()
        return self


class Connection:
    def __init__(self, node: "Node", sock: socket.socket, address: Address,
                 advertised: List[wire.NetAddr], backends: List[wire.BackendIds]):
        self.node = node
        self.sock = sock
        self.address = address
        self.advertised = advertised
        self.backends = backends
        self.decoder = wire.FrameDecoder()
        self.pending: Dict[int, Transaction] = {}
        self.send_lock = threading.Lock()
        self.alive = True

    def send(self, header: wire.Header, payload: bytes = b"") -> None:
        header.size = len(payload)
        with self.send_lock:
            self.sock.sendall(header.encode() + payload)

    def __repr__(self) -> str:
        return f"<Connection {self.address}>"


def _read_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(min(size - len(buf), RECV_CHUNK_BYTES))
        if not chunk:
            raise Error(-errno.ECONNRESET, "connection closed during handshake")
        buf += chunk
    return bytes(buf)


class Node:
    """``elliptics.Node(logger, config)``."""

    def __init__(self, logger: Optional[Logger] = None, config: Optional[Config] = None):
        self.logger = logger or Logger(os.devnull, log_level.error)
        self.config = config or Config()
        self.routes = RouteTable()
        # The nodes' indexes_shard_count from the handshake (the secondary indexes use it).
        self.indexes_shard_count = wire.INDEXES_SHARD_COUNT
        self._trans_counter = itertools.count(1)
        self._trans_lock = threading.Lock()
        self._lock = threading.Lock()
        self._conns: Dict[Address, Connection] = {}
        self._lost: Dict[Address, float] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._register_queue: List[Connection] = []
        self._stopped = threading.Event()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=16, thread_name_prefix="elliptics-op")
        self._loop_thread = threading.Thread(target=self._loop, name="elliptics-net",
                                             daemon=True)
        self._loop_thread.start()
        self._checker_thread = threading.Thread(target=self._checker, name="elliptics-check",
                                                daemon=True)
        self._checker_thread.start()

    # -- public API ---------------------------------------------------------------------

    def add_remotes(self, remotes) -> None:
        if isinstance(remotes, (str, Address)):
            remotes = [remotes]
        addresses = [to_address(r) for r in remotes]
        errors = []
        for address in addresses:
            try:
                self._add_and_discover(address)
            except (Error, OSError) as err:
                errors.append((address, err))
                self.logger.log(log_level.error, f"{address}: failed to add remote: {err}")
        if addresses and len(errors) == len(addresses):
            code = _code_of(errors[0][1])
            raise Error(code, f"Failed to add remote addresses: {os.strerror(-code)}: {code}")

    add_remote = add_remotes

    def connections(self) -> List[Connection]:
        with self._lock:
            return [c for c in self._conns.values() if c.alive]

    def connection_for(self, address: Address) -> Optional[Connection]:
        with self._lock:
            conn = self._conns.get(address)
            return conn if conn is not None and conn.alive else None

    def submit(self, fn, *args) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the executor; return once it sent its requests."""
        if getattr(_op_local, "in_op", False):
            return self.executor.submit(fn, *args)
        sent = threading.Event()

        def run():
            _op_local.in_op, _op_local.sent = True, sent
            try:
                return fn(*args)
            finally:
                sent.set()
                _op_local.in_op, _op_local.sent = False, None

        future = self.executor.submit(run)
        sent.wait(SEND_TIMEOUT_S)
        return future

    def next_trans(self) -> int:
        with self._trans_lock:
            return next(self._trans_counter)

    def request(self, conn: Connection, header: wire.Header, payload: bytes,
                timeout_s: float) -> Transaction:
        """Send a request and return its transaction (already failed if the send failed)."""
        header.trans = self.next_trans()
        tx = Transaction(header.trans, conn, time.monotonic() + timeout_s)
        with self._lock:
            if not conn.alive:
                tx.complete(-errno.ECONNRESET)
                return tx
            conn.pending[header.trans] = tx
        try:
            conn.send(header, payload)
        except OSError as err:
            self._drop(conn, err)
        return tx

    # -- connecting ---------------------------------------------------------------------

    def _add_and_discover(self, address: Address) -> None:
        conn, idx = self._dial(address)
        self._discover(conn, idx)

    def _dial(self, address: Address) -> Tuple[Connection, int]:
        existing = self.connection_for(address)
        if existing is not None:
            return existing, 0
        timeout_s = float(self.config.wait_timeout or 5)
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout_s)
            sock.connect((address.host, address.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hello = wire.Header(id=wire.encode_version_id(), cmd=wire.CMD_REVERSE_LOOKUP,
                                flags=wire.FLAGS_DIRECT | wire.FLAGS_NOLOCK, trans=0)
            sock.sendall(hello.encode())
            header = wire.Header.decode(_read_exact(sock, wire.HEADER_SIZE_BYTES))
            if header.size > wire.FRAME_PAYLOAD_BYTES_MAX:
                raise Error(-errno.EPROTO, f"{address}: handshake reply too large")
            payload = _read_exact(sock, header.size)
            if header.status:
                raise Error(header.status, f"{address}: handshake failed: {header.status}")
            version, shards = wire.decode_version_id(header.id)
            if shards > 0:
                self.indexes_shard_count = shards
            if version[:2] != wire.VERSION[:2]:
                raise Error(-errno.EPROTO, f"{address}: version {version} is not 2.26")
            try:
                _, addrs, used = wire.decode_addr_container(payload)
                backends, used2 = wire.decode_id_container(payload[used:])
            except wire.DecodeError as err:
                raise Error(-errno.EPROTO, f"{address}: bad handshake reply: {err}") from err
            me = wire.NetAddr(address.host, address.port, address.family)
            if me not in addrs:
                raise Error(-errno.EPROTO, f"{address}: not among advertised {addrs}")
            sock.settimeout(SEND_TIMEOUT_S)
        except BaseException:
            sock.close()
            raise
        conn = Connection(self, sock, address, addrs, backends)
        try:
            for backend in backends:
                self.routes.add_backend(conn, backend)
        except DuplicateRouteError as err:
            self.routes.remove_owner(conn)
            sock.close()
            raise Error(-errno.EEXIST, f"{address}: {err}") from err
        with self._lock:
            self._conns[address] = conn
            self._lost.pop(address, None)
            self._register_queue.append(conn)
        self._wake()
        self.logger.log(log_level.info, f"{address}: connected, {len(backends)} backends")
        return conn, addrs.index(me)

    def _discover(self, conn: Connection, idx: int) -> None:
        header = wire.Header(cmd=wire.CMD_ROUTE_LIST,
                             flags=wire.FLAGS_NEED_ACK | wire.FLAGS_DIRECT | wire.FLAGS_NOLOCK)
        tx = self.request(conn, header, b"", float(self.config.wait_timeout or 5)).wait()
        for reply_header, payload in tx.replies:
            if reply_header.status or not payload:
                continue
            try:
                per_node, addrs, _ = wire.decode_addr_container(payload)
            except wire.DecodeError as err:
                self.logger.log(log_level.error, f"{conn.address}: bad route list: {err}")
                continue
            per_node = max(per_node, 1)
            for start in range(0, len(addrs), per_node):
                group = addrs[start:start + per_node]
                pick = group[idx] if idx < len(group) else group[0]
                address = Address(pick.host, pick.port, pick.family)
                if self.connection_for(address) is not None:
                    continue
                try:
                    self._dial(address)
                except (Error, OSError) as err:
                    self.logger.log(log_level.error, f"{address}: route-list dial failed: {err}")
                    with self._lock:
                        self._lost.setdefault(address, time.monotonic())

    # -- network thread -----------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _loop(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                queue, self._register_queue = self._register_queue, []
            for conn in queue:
                self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            for key, _ in self._selector.select(LOOP_TICK_S):
                if key.data is None:
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                    continue
                self._on_readable(key.data)
            self._expire()

    def _on_readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(RECV_CHUNK_BYTES)
        except (BlockingIOError, socket.timeout):
            return
        except OSError as err:
            self._drop(conn, err)
            return
        if not data:
            self._drop(conn, Error(-errno.ECONNRESET, "peer closed the connection"))
            return
        try:
            frames = conn.decoder.feed(data)
        except wire.DecodeError as err:
            self._drop(conn, err)
            return
        for header, payload in frames:
            self._on_frame(conn, header, payload)

    def _on_frame(self, conn: Connection, header: wire.Header, payload: bytes) -> None:
        if not header.is_reply:
            if header.cmd == wire.CMD_UPDATE_IDS:
                self._on_update_ids(conn, payload)
            return
        with self._lock:
            tx = conn.pending.get(header.trans)
        if tx is None:
            self.logger.log(log_level.notice, f"{conn.address}: reply for unknown trans "
                                              f"{header.trans}")
            return
        if tx.on_frame(header, payload):
            with self._lock:
                conn.pending.pop(header.trans, None)
            tx.complete()

    def _on_update_ids(self, conn: Connection, payload: bytes) -> None:
        try:
            backends, _ = wire.decode_id_container(payload)
        except wire.DecodeError as err:
            self.logger.log(log_level.error, f"{conn.address}: bad UPDATE_IDS: {err}")
            return
        for backend in backends:
            self.routes.remove_backend(conn, backend.backend_id)
            conn.backends = [b for b in conn.backends if b.backend_id != backend.backend_id]
            if backend.flags & wire.BACKEND_DISABLE:
                continue
            try:
                self.routes.add_backend(conn, backend)
                conn.backends.append(backend)
            except DuplicateRouteError as err:
                self.logger.log(log_level.error, f"{conn.address}: UPDATE_IDS: {err}")

    def _expire(self) -> None:
        now = time.monotonic()
        expired = []
        with self._lock:
            for conn in self._conns.values():
                for trans, tx in list(conn.pending.items()):
                    if tx.deadline <= now:
                        del conn.pending[trans]
                        expired.append(tx)
        for tx in expired:
            tx.complete(-errno.ETIMEDOUT)

    def _drop(self, conn: Connection, err) -> None:
        with self._lock:
            if not conn.alive:
                return
            conn.alive = False
            pending, conn.pending = conn.pending, {}
            if self._conns.get(conn.address) is conn:
                del self._conns[conn.address]
            self._lost[conn.address] = time.monotonic()
        self.routes.remove_owner(conn)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        self.logger.log(log_level.error, f"{conn.address}: connection dropped: {err}")
        for tx in pending.values():
            tx.complete(-errno.ECONNRESET)

    def _checker(self) -> None:
        while not self._stopped.wait(float(self.config.check_timeout or 20)):
            with self._lock:
                lost = list(self._lost)
            for address in lost:
                try:
                    self._add_and_discover(address)
                except (Error, OSError):
                    pass


def _code_of(err) -> int:
    if isinstance(err, Error):
        return err.code
    if isinstance(err, socket.timeout):
        return -errno.ETIMEDOUT
    if isinstance(err, OSError) and err.errno:
        return -err.errno
    return -errno.ENXIO
