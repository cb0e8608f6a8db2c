"""The chunked ``write_data(key, data, offset, chunk_size)`` against the original's frames.

``python-write-variants.txt`` holds the 2.26 Python binding's ``write_prepare('pkey', b'aaa',
0, 1024)``, ``write_plain('pkey', b'bbb', 3)`` and ``write_commit('pkey', b'ccc', 6, 9)``.
``write_data('pkey', b'aaabbbccc', 0, 3)`` must send the same three frames: byte for byte,
except the transaction numbers, the clocks, and the PREPARE's reserved size, which the
chunked write sets to the whole value (9) where the capture asked for 1024. A server on
127.0.0.1 answers with the captured replies.
"""

import socket
import struct
import threading

import captures
import elliptics
from elliptics import wire

CAPTURED_SOCKADDR = bytes.fromhex("020004017f000001")
HANDSHAKE = range(0, 4)  # frames #1-#4: REVERSE_LOOKUP, ROUTE_LIST and their replies
PKEY = [(10, 11), (12, 13), (14, 15)]  # (client frame, server reply) indexes
TRANS = slice(0x68, 0x70)
IO = wire.HEADER_SIZE_BYTES
NUM = slice(IO + 0x88, IO + 0x90)
CLOCK = slice(IO + 0x90, IO + 0xA0)


def masked(frame: bytes, prepare: bool) -> bytes:
    out = bytearray(frame)
    out[TRANS] = bytes(8)
    out[CLOCK] = bytes(16)
    if prepare:
        out[NUM] = bytes(8)
    return bytes(out)


def serve(listener, frames, received):
    port = listener.getsockname()[1]
    ours = b"\x02\x00" + struct.pack(">H", port) + bytes([127, 0, 0, 1])
    conn, _ = listener.accept()
    decoder = wire.FrameDecoder()
    queued = []

    def next_frame():
        while not queued:
            data = conn.recv(65536)
            if not data:
                return None
            queued.extend(decoder.feed(data))
        header, payload = queued.pop(0)
        return header.encode() + payload

    with conn:
        for i in (0, 2):
            if next_frame() is None:
                return
            conn.sendall(frames[i + 1].data.replace(CAPTURED_SOCKADDR, ours))
        for _, reply in PKEY:
            got = next_frame()
            if got is None:
                return
            received.append(got)
            answer = bytearray(frames[reply].data.replace(CAPTURED_SOCKADDR, ours))
            answer[TRANS] = got[TRANS]
            conn.sendall(bytes(answer))
        conn.recv(1)


def test_chunked_write_data_sends_the_originals_prepare_plain_commit_frames():
    frames = captures.load("python-write-variants.txt")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received = []
    thread = threading.Thread(target=serve, args=(listener, frames, received), daemon=True)
    thread.start()
    node = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    node.add_remotes([f"127.0.0.1:{listener.getsockname()[1]}:2"])
    s = elliptics.Session(node)
    s.groups = [1]
    written = s.write_data("pkey", b"aaabbbccc", 0, 3).get()
    assert len(received) == 3
    for (client, _), got, prepare in zip(PKEY, received, (True, False, False)):
        assert masked(got, prepare) == masked(frames[client].data, prepare)
    assert struct.unpack("<Q", received[0][NUM])[0] == 9
    assert [struct.unpack("<Q", r[NUM])[0] for r in received[1:]] == [6, 9]
    assert written[0].size == 9 and written[0].error.code == 0
