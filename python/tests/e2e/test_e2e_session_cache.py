"""The in-memory cache through the Python bindings against real nodes (their config has
``"cache": {"size": 64 MiB}``): the original suite's cache write/read/remove rules."""

import pytest

import elliptics


def flagged(session, ioflags):
    s = session.clone()
    s.ioflags = ioflags
    return s


def test_cache_write_then_read_returns_the_data_and_user_flags(session):
    s = flagged(session, elliptics.io_flags.cache)
    s.user_flags = 0x1234
    results = s.write_data("py-cache-key", b"cached data").get()
    assert [r.size for r in results] == [11] * len(session.groups)
    entry = s.read_data("py-cache-key").get()[0]
    assert entry.data == b"cached data"
    assert entry.user_flags == 0x1234


def test_cache_only_write_is_not_on_disk_and_disk_key_is_not_in_cache(session):
    only = flagged(session, elliptics.io_flags.cache | elliptics.io_flags.cache_only)
    only.write_data("py-cache-only", b"memory only").get()
    assert only.read_data("py-cache-only").get()[0].data == b"memory only"
    nocache = flagged(session, 0)
    nocache.cflags = elliptics.command_flags.nocache
    with pytest.raises(elliptics.NotFoundError):
        nocache.lookup("py-cache-only").get()
    flagged(session, 0).write_data("py-disk-only", b"on disk").get()
    with pytest.raises(elliptics.NotFoundError):
        only.read_data("py-disk-only").get()
    cache = flagged(session, elliptics.io_flags.cache)
    assert cache.read_data("py-disk-only").get()[0].data == b"on disk"
    assert only.read_data("py-disk-only").get()[0].data == b"on disk"


def test_remove_with_cache_flags_drops_cache_and_disk(session):
    s = flagged(session, elliptics.io_flags.cache)
    s.write_cache("py-cache-gone", b"short lived", 60).get()
    flagged(session, elliptics.io_flags.cache
            | elliptics.io_flags.cache_remove_from_disk).remove("py-cache-gone").get()
    with pytest.raises(elliptics.NotFoundError):
        flagged(session, 0).read_data("py-cache-gone").get()
