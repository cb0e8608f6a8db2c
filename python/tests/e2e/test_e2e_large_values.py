"""Values larger than one chunk and larger than ``blob_size`` (10M here) through the chunked
``write_data`` / ``read_data_chunked`` / ``write_file`` / ``read_file`` against real nodes."""

import hashlib

from conftest import GROUPS

VALUE_BYTES = (12 << 20) + 4321
CHUNK_BYTES = 1 << 20


def value() -> bytes:
    block = hashlib.sha512(b"large").digest() * 1024
    return (block * (VALUE_BYTES // len(block) + 1))[:VALUE_BYTES]


def test_chunked_write_data_stores_a_value_larger_than_blob_size_in_every_group(session):
    data = value()
    written = session.write_data("chunked-large", data, 0, CHUNK_BYTES).get()
    assert sorted(r.group_id for r in written) == GROUPS
    assert all(r.error.code == 0 and r.size == len(data) for r in written)
    for group in GROUPS:
        s = session.clone()
        s.groups = [group]
        assert s.read_data("chunked-large").get()[0].data == data


def test_chunked_read_returns_the_value_and_its_ranges(session):
    data = value()
    session.write_data("chunked-read", data, 0, CHUNK_BYTES).get()
    whole = session.read_data_chunked("chunked-read", chunk_size=700_000).get()[0]
    assert whole.data == data and whole.size == len(data)
    part = session.read_data_chunked("chunked-read", 1_000_001, 3_000_000, 333_333).get()[0]
    assert part.data == data[1_000_001:4_000_001]


def test_write_file_and_read_file_round_trip_in_chunks(session, tmp_path):
    data = value()
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(data)
    written = session.write_file("file-large", str(src), chunk_size=CHUNK_BYTES).get()
    assert all(r.size == len(data) for r in written)
    got = session.read_file("file-large", str(dst), chunk_size=CHUNK_BYTES).get()
    assert got[0].size == len(data)
    assert dst.read_bytes() == data
