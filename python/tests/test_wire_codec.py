"""Codec tests against the original 2.26.11.1 wire captures."""

import hashlib

import pytest

import captures
from elliptics import wire


@pytest.mark.parametrize("name", captures.ALL_CAPTURES)
def test_every_captured_frame_header_roundtrips_byte_identically(name):
    for frame in captures.load(name):
        header = wire.Header.decode(frame.data)
        assert header.size == len(frame.data) - wire.HEADER_SIZE_BYTES
        assert header.encode() == frame.data[:wire.HEADER_SIZE_BYTES]


def test_python_handshake_request_is_reencoded_byte_identically():
    sent = captures.load("python-write-read.txt")[0]
    ours = wire.Header(id=wire.encode_version_id(), cmd=wire.CMD_REVERSE_LOOKUP,
                       flags=wire.FLAGS_DIRECT | wire.FLAGS_NOLOCK, trans=0)
    assert ours.encode() == sent.data


def test_handshake_reply_decodes_addresses_and_backend_ids():
    reply = captures.load("python-write-read.txt")[1].data
    header = wire.Header.decode(reply)
    assert header.flags == wire.FLAGS_NOLOCK | wire.FLAGS_REPLY
    version, shards = wire.decode_version_id(header.id)
    assert version == (2, 26, 11, 1) and shards == 2
    payload = reply[wire.HEADER_SIZE_BYTES:]
    node_addr_num, addrs, used = wire.decode_addr_container(payload)
    assert node_addr_num == 1
    assert addrs == [wire.NetAddr("127.0.0.1", 1025, 2)]
    backends, used2 = wire.decode_id_container(payload[used:])
    assert used + used2 == len(payload)
    assert [(b.backend_id, b.group_id, b.flags, len(b.ids)) for b in backends] == [(1, 1, 0, 1)]
    assert backends[0].ids[0].hex().startswith("24934cf0cc6e0f17")
    assert wire.encode_addr_container(addrs) + wire.encode_id_container(backends) == payload


def test_write_request_is_reencoded_byte_identically():
    sent = captures.load("python-write-read.txt")[4].data
    key_id = hashlib.sha512(b"pykey").digest()
    data = b"python wire test"
    io = wire.IoAttr(id=key_id, tsec=1795806410, tnsec=268558000, size=len(data))
    header = wire.Header(id=key_id, group_id=1, cmd=wire.CMD_WRITE, backend_id=1,
                         flags=wire.FLAGS_NEED_ACK, trans=2, size=wire.IO_ATTR_SIZE_BYTES + 16)
    assert header.encode() + io.encode() + data == sent


def test_write_reply_decodes_file_info_with_padding():
    frame = captures.load("python-write-read.txt")[5].data
    reply = wire.LookupReply.decode(frame[wire.HEADER_SIZE_BYTES:])
    assert reply.addr == wire.NetAddr("127.0.0.1", 1025, 2)
    assert reply.info.size == 16 and reply.info.offset == 516
    assert reply.info.record_flags == 0x140
    assert (reply.info.mtime_tsec, reply.info.mtime_tnsec) == (1795806410, 268558000)
    assert reply.path == "/srv/ell/run/data/data-0.0"
    payload = frame[wire.HEADER_SIZE_BYTES:]
    assert reply.addr.encode() + reply.info.encode() == payload[:144]


def test_read_reply_carries_io_attr_then_data():
    frame = captures.load("python-write-read.txt")[7].data
    io = wire.IoAttr.decode(frame[wire.HEADER_SIZE_BYTES:])
    assert io.total_size == 16 and io.size == 16 and io.record_flags == 0x140
    assert frame[wire.HEADER_SIZE_BYTES + wire.IO_ATTR_SIZE_BYTES:] == b"python wire test"
    assert io.encode() == frame[wire.HEADER_SIZE_BYTES:wire.HEADER_SIZE_BYTES + 208]


def test_missing_key_reply_is_a_bare_ack_with_enoent():
    frames = captures.load("ioclient-read-missing.txt")
    last = wire.Header.decode(frames[-1].data)
    assert last.is_reply and not last.more
    assert last.status == -2 and last.size == 0


def test_frame_decoder_reassembles_frames_fed_one_byte_at_a_time():
    stream = b"".join(f.data for f in captures.load("python-write-read.txt")
                      if f.sender == "server")
    decoder = wire.FrameDecoder()
    frames = []
    for i in range(len(stream)):
        frames.extend(decoder.feed(stream[i:i + 1]))
    assert [h.trans for h, _ in frames] == [0, 1, 2, 3]
    assert frames[3][1].endswith(b"python wire test")


def test_frame_decoder_rejects_payload_over_limit_before_buffering_it():
    header = wire.Header(cmd=wire.CMD_READ, size=1 << 40).encode()
    with pytest.raises(wire.DecodeError):
        wire.FrameDecoder().feed(header)


def test_truncated_containers_are_rejected_not_trusted():
    payload = wire.encode_id_container([wire.BackendIds(1, 1, 0, [b"\1" * 64, b"\2" * 64])])
    with pytest.raises(wire.DecodeError):
        wire.decode_id_container(payload[:-1])
    with pytest.raises(wire.DecodeError):
        wire.decode_addr_container(b"\1\0\0\0\xff\xff\xff\x7f")
    with pytest.raises(wire.DecodeError):
        wire.LookupReply.decode(b"\0" * 100)


def test_sph_places_event_size_where_the_tutorial_reads_it():
    packet = wire.encode_exec(wire.Sph(src=b"\7" * 64, flags=1, src_key=-1),
                              b"test_app@test_event", b"SOME_DATA")
    import struct
    event_size = struct.unpack("<i", packet[80:84])[0]
    assert packet[128 + event_size:] == b"SOME_DATA"
    sph, event, data = wire.decode_exec(packet)
    assert (event, data, sph.src_key, sph.data_size) == (b"test_app@test_event", b"SOME_DATA",
                                                         -1, 9)
    with pytest.raises(wire.DecodeError):
        wire.decode_exec(packet[:-1])


def test_ipv6_address_roundtrips():
    addr = wire.NetAddr("::1", 1025, 10)
    raw = addr.encode()
    assert len(raw) == wire.ADDR_SIZE_BYTES
    assert wire.NetAddr.decode(raw) == addr
