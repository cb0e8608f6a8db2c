"""The client stack against the captured server replies, checking what it sends.

A one-connection server replays the server frames of ``python-write-read.txt``: for each
frame our client sends, it asserts byte equality with what the original Python binding
sent, then answers with the captured reply. The only change to the captured replies is the
port inside advertised addresses (1025 -> the test's ephemeral port), since the client
checks that the address it dialled is advertised.
"""

import socket
import struct
import threading

import pytest

import captures
import elliptics
from elliptics import wire

CAPTURED_SOCKADDR = bytes.fromhex("020004017f000001")


class ReplayServer:
    def __init__(self, frames):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        ours = b"\x02\x00" + struct.pack(">H", self.port) + bytes([127, 0, 0, 1])
        self.script = []
        for frame in frames:
            if frame.sender == "client":
                self.script.append((frame.data, []))
            else:
                self.script[-1][1].append(frame.data.replace(CAPTURED_SOCKADDR, ours))
        self.received = []
        self.mismatch = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.listener.accept()
        decoder = wire.FrameDecoder()
        queued = []  # frames that arrived together with an earlier one
        with conn:
            for expected, replies in self.script:
                while not queued:
                    data = conn.recv(65536)
                    if not data:
                        return
                    queued.extend(decoder.feed(data))
                frame = queued.pop(0)
                raw = frame[0].encode() + frame[1]
                self.received.append(raw)
                if raw != expected and self.mismatch is None:
                    self.mismatch = (len(self.received), raw, expected)
                for reply in replies:
                    conn.sendall(reply)
            conn.recv(1)


def test_write_and_read_send_exactly_what_the_python_binding_sent():
    server = ReplayServer(captures.load("python-write-read.txt"))
    node = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    node.add_remotes([f"127.0.0.1:{server.port}:2"])
    s = elliptics.Session(node)
    s.set_groups([1])
    s.timestamp = elliptics.Time(1795806410, 268558000)  # the captured write's clock
    written = s.write_data("pykey", b"python wire test").get()
    s.timestamp = elliptics.Time()
    read = s.read_data("pykey").get()
    assert server.mismatch is None, f"frame #{server.mismatch[0]} differs from the capture"
    assert len(server.received) == 4
    assert len(written) == 1
    entry = written[0]
    assert entry.size == 16 and entry.group_id == 1 and entry.error.code == 0
    assert entry.error.message == ""
    assert entry.filepath == "/srv/ell/run/data/data-0.0"
    assert entry.address == elliptics.Address("127.0.0.1", server.port, 2)
    assert read[0].data == b"python wire test"
    assert read[0].timestamp == elliptics.Time(1795806410, 268558000)
    assert read[0].total_size == 16


def test_route_table_holds_the_handshake_backend():
    server = ReplayServer(captures.load("python-write-read.txt"))
    node = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    node.add_remotes([elliptics.Address("127.0.0.1", server.port, 2)])
    routes = elliptics.Session(node).routes
    assert routes.groups() == [1]
    assert routes.addresses() == [elliptics.Address("127.0.0.1", server.port, 2)]
    assert routes.get_address_backends(routes.addresses()[0]) == [1]


def test_a_server_that_never_answers_times_out_with_timeout_error():
    frames = captures.load("python-write-read.txt")[:4]  # handshake and route list only
    server = ReplayServer(frames + [captures.Frame(99, "client", b"")])
    node = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    node.add_remotes([f"127.0.0.1:{server.port}:2"])
    s = elliptics.Session(node)
    s.groups = [1]
    s.timeout = 1
    with pytest.raises(elliptics.TimeoutError) as info:
        s.read_data("pykey").get()
    assert info.value.code == -110


def test_add_remotes_fails_with_an_error_when_nothing_listens():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    node = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    with pytest.raises(elliptics.Error) as info:
        node.add_remotes([f"127.0.0.1:{port}:2"])
    assert info.value.code == -111
