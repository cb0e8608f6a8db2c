"""Exec routing and reply parsing against a small in-test node speaking the 2.26 framing.

The node answers the handshake with one backend per group given, an empty route list, and
every EXEC with a data reply (sph ‖ event ‖ "reply:" + data, MORE set) then a final ack,
the way srw answers a blocking exec whose worker wrote one chunk and closed.
"""

import socket
import struct
import threading

import pytest

import elliptics
from elliptics import wire


class ExecNode:
    def __init__(self, groups, ack_status=0):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.groups = groups
        self.ack_status = ack_status
        self.execs = []
        self.seen = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _reply(self, conn, req, payload=b"", more=False, status=0):
        flags = (req.flags & ~(wire.FLAGS_NEED_ACK | wire.FLAGS_MORE)) | wire.FLAGS_REPLY
        header = wire.Header(id=req.id, group_id=req.group_id, cmd=req.cmd, status=status,
                             flags=flags | (wire.FLAGS_MORE if more else 0), trans=req.trans,
                             size=len(payload))
        conn.sendall(header.encode() + payload)

    def _conn(self, conn):
        decoder = wire.FrameDecoder()
        me = wire.NetAddr("127.0.0.1", self.port, 2)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            for req, payload in decoder.feed(data):
                if req.cmd == wire.CMD_REVERSE_LOOKUP:
                    backends = [wire.BackendIds(i, g, 0, [bytes([0x10 * (i + 1)]) * 64])
                                for i, g in enumerate(self.groups)]
                    body = wire.encode_addr_container([me]) + wire.encode_id_container(backends)
                    self._reply(conn, req, body)
                elif req.cmd == wire.CMD_ROUTE_LIST:
                    self._reply(conn, req, wire.encode_addr_container([], 1))
                elif req.cmd == wire.CMD_EXEC:
                    sph, event, body = wire.decode_exec(payload)
                    self.execs.append((req, sph, event, body))
                    self.seen.set()
                    if not self.ack_status:
                        out = wire.encode_exec(wire.Sph(**vars(sph)), event, b"reply:" + body)
                        self._reply(conn, req, out, more=True)
                    self._reply(conn, req, status=self.ack_status)


@pytest.fixture
def exec_node():
    return ExecNode([1, 2])


def session_for(node_srv, groups):
    node = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    node.add_remotes([f"127.0.0.1:{node_srv.port}:2"])
    s = elliptics.Session(node)
    s.groups = groups
    return s


def test_exec_with_a_string_key_goes_to_the_owner_in_every_group(exec_node):
    s = session_for(exec_node, [1, 2])
    results = s.exec_("some key", event="test_app@test_event", data="MSG\n").get()
    assert sorted(r.group_id for r in results) == [1, 2]
    key_id = s.transform("some key").id
    for req, sph, event, body in exec_node.execs:
        assert req.id == key_id and sph.src == key_id
        assert sph.flags == wire.SPH_FLAGS_SRC_BLOCK and sph.src_key == -1
        assert req.flags & wire.FLAGS_NEED_ACK
        assert wire.NetAddr.decode(sph.addr).port == exec_node.port
        assert (event, body) == (b"test_app@test_event", b"MSG\n")
    for r in results:
        assert r.context.data == b"reply:MSG\n"
        assert r.context.event == "test_app@test_event"
        assert r.context.address == r.address
        assert r.error.code == 0


def test_exec_without_a_key_sends_one_request_per_node(exec_node):
    s = session_for(exec_node, [1, 2])
    results = s.exec_(event="test_app@info", src_key=7).get()
    assert len(results) == 1 and len(exec_node.execs) == 1
    req, sph, _, _ = exec_node.execs[0]
    assert req.group_id == 1 and sph.src == b"\x10" * 64 and sph.src_key == 7


def test_exec_to_an_id_with_a_group_sends_exactly_one_request(exec_node):
    s = session_for(exec_node, [1, 2])
    s.exec_(elliptics.Id(b"\x55" * 64, 2), event="app@ev").get()
    assert [req.group_id for req, *_ in exec_node.execs] == [2]


def test_a_worker_error_reaches_the_client_as_the_ack_status():
    srv = ExecNode([1], ack_status=-1)
    s = session_for(srv, [1])
    with pytest.raises(elliptics.Error) as info:
        s.exec_("k", event="test_app@test_event", data="x").get()
    assert info.value.code == -1


def test_an_exec_nobody_waits_for_is_still_sent(exec_node):
    s = session_for(exec_node, [1])
    s.exec_(event="test_app@test_event", data="MSG\n")
    assert exec_node.seen.wait(5)


def test_reply_marks_reply_and_finish_and_routes_to_the_source_id(exec_node):
    s = session_for(exec_node, [1])
    ctx = s.exec_("k", event="app@echo", data="d").get()[0].context
    exec_node.execs.clear()
    s.reply(ctx, "answer", final=True).get()
    req, sph, event, body = exec_node.execs[0]
    assert sph.flags == wire.SPH_FLAGS_REPLY | wire.SPH_FLAGS_FINISH
    assert req.id == ctx.src_id.id and event == b"app@echo" and body == b"answer"
    assert struct.unpack("<i", sph.encode()[92:96])[0] == ctx.src_key
