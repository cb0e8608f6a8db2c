"""The worker module against a node side played by the test over a real unix socket.

Each test writes an app file into a tmp dir, spawns it the way the engine does
(``--app --endpoint --locator --protocol 1 --uuid``), accepts its connection and checks
the v1 frames both ways.
"""

import os
import pathlib
import socket
import struct
import subprocess
import sys
import textwrap
import time
import uuid as uuidlib

import msgpack
import pytest

PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]

# The tutorial's minimal app, verbatim.
MINIMAL_APP = '''#!/usr/bin/env python
from cocaine.worker import Worker

def test_event(request, response):
    response.close()

W = Worker()
W.run({"test_event" : test_event})
'''

# The tutorial's test_app.py handler shape; the elliptics write is replaced by an echo so
# the test needs no storage node (the unmodified file runs in the end-to-end tests).
SHAPE_APP = '''#!/usr/bin/env python
from cocaine.worker import Worker
from cocaine.exceptions import ChokeEvent
import struct

def test_event(request, response):
    try:
         data = yield request.read()
         event_size = struct.unpack('<i', data[80:84])[0]
         payload = data[128 + event_size:]
         if payload == b"FAIL":
             raise RuntimeError("asked to fail")
         response.write(payload)
         response.write("second-chunk")
    except Exception as err:
         response.error(1, str(err))
    finally:
         response.close()

def multi(request, response):
    got = []
    try:
        while True:
            got.append((yield request.read()))
    except ChokeEvent:
        pass
    response.write(b"|".join(got))

def boom(request, response):
    yield request.read()
    raise ValueError("handler failed")

W = Worker()
W.run({"test_event": test_event, "multi": multi, "boom": boom})
'''


def sph_packet(event: bytes, data: bytes) -> bytes:
    head = b"\0" * 64 + struct.pack("<QQiiii", len(data), 1, len(event), 0, 0, 2)
    return head + b"\0" * 32 + event + data


class FakeEngine:
    def __init__(self, tmp: pathlib.Path, app_source: str):
        self.uuid = str(uuidlib.uuid4())
        self.sock_path = str(tmp / "engine.sock")
        site = tmp / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            "import cocaine_compat\ncocaine_compat.install_fallback()\n")
        app = tmp / "test_app.py"
        app.write_text(app_source)
        app.chmod(0o755)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.sock_path)
        self.listener.listen(1)
        self.listener.settimeout(15)
        env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{PYTHON_DIR}")
        self.proc = subprocess.Popen(
            [sys.executable, str(app), "--app", "test_app", "--endpoint", self.sock_path,
             "--locator", "127.0.0.1:10053", "--protocol", "1", "--uuid", self.uuid],
            cwd=str(tmp), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.conn, _ = self.listener.accept()
        except socket.timeout:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"worker never connected; stderr:\n{err.decode()}")
        self.conn.settimeout(15)
        self.unpacker = msgpack.Unpacker(raw=False)

    def send(self, *frame) -> None:
        self.conn.sendall(msgpack.packb(list(frame), use_bin_type=True))

    def recv(self):
        while True:
            for frame in self.unpacker:
                return frame
            data = self.conn.recv(65536)
            if not data:
                return None
            self.unpacker.feed(data)

    def start(self) -> None:
        assert self.recv() == [1, 0, [self.uuid]]
        assert self.recv() == [1, 0, []]
        self.send(1, 0, [])

    def finish(self) -> int:
        self.send(1, 1, [11, "engine stopping"])
        assert self.recv() == [1, 1, [11, "engine stopping"]]
        assert self.recv() is None
        return self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.conn.close()
        self.listener.close()


@pytest.fixture
def engine_factory(tmp_path):
    made = []

    def make(source):
        engine = FakeEngine(tmp_path, source)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


def test_minimal_tutorial_app_handshakes_and_closes_each_invocation(engine_factory):
    engine = engine_factory(MINIMAL_APP)
    engine.start()
    engine.send(2, 0, [b"test_event"])
    engine.send(2, 0, [sph_packet(b"test_app@test_event", b"MSG\n")])
    engine.send(2, 2, [])
    assert engine.recv() == [2, 2, []]
    assert engine.finish() == 0


def test_tutorial_handler_shape_reads_the_sph_chunk_and_replies(engine_factory):
    engine = engine_factory(SHAPE_APP)
    engine.start()
    engine.send(2, 0, [b"test_event"], [])  # with an (empty) header list
    engine.send(2, 0, [sph_packet(b"test_app@test_event", b"SOME_DATA")])
    engine.send(2, 2, [])
    assert engine.recv() == [2, 0, [b"SOME_DATA"]]
    assert engine.recv() == [2, 0, ["second-chunk"]]
    assert engine.recv() == [2, 2, []]
    assert engine.finish() == 0


def test_handler_error_is_sent_once_and_the_later_close_is_a_no_op(engine_factory):
    engine = engine_factory(SHAPE_APP)
    engine.start()
    engine.send(2, 0, [b"test_event"])
    engine.send(2, 0, [sph_packet(b"test_app@test_event", b"FAIL")])
    engine.send(2, 2, [])
    assert engine.recv() == [2, 1, [[42, 1], "asked to fail"]]
    engine.send(3, 0, [b"test_event"])
    engine.send(3, 0, [sph_packet(b"test_app@test_event", b"ok")])
    engine.send(3, 2, [])
    assert engine.recv() == [3, 0, [b"ok"]]  # nothing else arrived for channel 2
    assert engine.recv() == [3, 0, ["second-chunk"]]
    assert engine.recv() == [3, 2, []]
    assert engine.finish() == 0


def test_multi_chunk_read_until_choke_then_auto_close(engine_factory):
    engine = engine_factory(SHAPE_APP)
    engine.start()
    engine.send(2, 0, [b"multi"])
    engine.send(2, 0, [b"a"])
    engine.send(2, 0, ["b"])  # a str payload is accepted as bytes
    engine.send(2, 2, [])
    assert engine.recv() == [2, 0, [b"a|b"]]
    assert engine.recv() == [2, 2, []]
    assert engine.finish() == 0


def test_uncaught_exception_and_unknown_event_map_to_category_42_codes(engine_factory):
    engine = engine_factory(SHAPE_APP)
    engine.start()
    engine.send(2, 0, [b"boom"])
    engine.send(2, 0, [b"x"])
    engine.send(2, 2, [])
    assert engine.recv() == [2, 1, [[42, 100], "handler failed"]]
    engine.send(3, 0, [b"nosuch"])
    engine.send(3, 2, [])
    assert engine.recv() == [3, 1, [[42, 200], "there is no handler for event b'nosuch'"]]
    assert engine.finish() == 0


def test_worker_without_heartbeat_replies_disowns_and_exits_cleanly(engine_factory):
    engine = engine_factory(MINIMAL_APP)
    assert engine.recv() == [1, 0, [engine.uuid]]
    assert engine.recv() == [1, 0, []]
    started = time.monotonic()
    assert engine.recv() is None  # never answered: the worker hangs up
    assert engine.proc.wait(10) == 0
    assert 4.0 <= time.monotonic() - started <= 9.0
    assert b"disowned" in engine.proc.stderr.read()
