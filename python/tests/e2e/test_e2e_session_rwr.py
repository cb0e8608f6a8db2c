"""Session read/write scenarios of the original ``test_session_rwr.py`` against real nodes."""

import hashlib
import time

import pytest

import elliptics
from conftest import GROUPS, RECORDS_IN_BLOB, run_tool


def checked_write(session, key, data):
    results = session.write_data(key, data).get()
    assert len(results) == len(session.groups)
    for r in results:
        assert r.error.code == 0 and r.error.message == ""
        assert r.size == len(data)
    return results


def checked_read(session, key, data):
    assert session.read_data(key).get()[0].data == data


def test_write_without_groups(node):
    s = elliptics.Session(node)
    with pytest.raises(elliptics.Error, match="insufficient results count due to checker: "
                                              "0 of 1 \\(1\\): No such device or address: -6"):
        s.write_data("key", "data").get()


@pytest.mark.parametrize("key,data", [("", b"data"), ("all_group_key", b"data"),
                                      ("all_group_key_long", b"data" * 1000)])
def test_write_to_all_groups(session, key, data):
    results = checked_write(session, key, data)
    routes = session.routes
    assert sorted(r.group_id for r in results) == GROUPS
    for r in results:
        assert r.group_id in routes.get_address_groups(r.address)
    for group in GROUPS:
        one = session.clone()
        one.groups = [group]
        checked_read(one, key, data)


def test_write_to_one_group(session):
    for group in GROUPS:
        key, data = f"one_group_key_{group}", b"one group data"
        one = session.clone()
        one.groups = [group]
        checked_write(one, key, data)
        checked_read(one, key, data)
        for other in GROUPS:
            if other == group:
                continue
            miss = session.clone()
            miss.groups = [other]
            with pytest.raises(elliptics.NotFoundError):
                miss.read_data(key).get()


def test_read_falls_back_to_the_next_group(session):
    last = session.clone()
    last.groups = [GROUPS[-1]]
    checked_write(last, "fallback_key", b"only in the last group")
    checked_read(session, "fallback_key", b"only in the last group")


def test_namespaces_keep_separate_data(session):
    a, b = session.clone(), session.clone()
    a.set_namespace("namespace_a")
    b.set_namespace("namespace_b")
    checked_write(a, "ns_key", b"data in a")
    checked_write(b, "ns_key", b"data in b")
    checked_read(a, "ns_key", b"data in a")
    checked_read(b, "ns_key", b"data in b")


def test_append_concatenates(session):
    checked_write(session, "append_key", b"first ")
    app = session.clone()
    app.ioflags = elliptics.io_flags.append
    app.write_data("append_key", b"second").get()
    checked_read(session, "append_key", b"first second")


def test_offsets_overwrite_in_place_and_read_partially(session):
    checked_write(session, "offset_key", b"55555")
    session.write_data("offset_key", b"43210", 1).get()
    checked_read(session, "offset_key", b"543210")
    assert session.read_data("offset_key", 3).get()[0].data == b"210"
    assert session.read_data("offset_key", 2, 1).get()[0].data == b"3"


@pytest.mark.parametrize("namespace", ["", "bulk_namespace"])
def test_bulk_write_and_bulk_read(session, namespace):
    s = session.clone()
    if namespace:
        s.set_namespace(namespace)
    keys = [f"bulk_key_{i}" for i in range(100)]
    results = s.bulk_write([(k, f"bulk data {k}") for k in keys]).get()
    assert len(results) == len(keys) * len(GROUPS)
    read = s.bulk_read(keys).get()
    by_id = {r.id.id: r.data for r in read}
    for k in keys:
        assert by_id[s.transform(k).id] == f"bulk data {k}".encode()


def test_write_cas_with_the_old_checksum(session):
    checked_write(session, "cas_key", b"old")
    csum = hashlib.sha512(b"old").digest()
    session.write_cas("cas_key", b"new", elliptics.Id(csum)).get()
    checked_read(session, "cas_key", b"new")
    with pytest.raises(elliptics.Error):
        session.write_cas("cas_key", b"newer", elliptics.Id(csum)).get()
    checked_read(session, "cas_key", b"new")


def test_write_cas_with_a_converter(session):
    checked_write(session, "cas_conv_key", b"1")
    session.write_cas("cas_conv_key", lambda old: str(int(old) + 1)).get()
    checked_read(session, "cas_conv_key", b"2")


def test_prepare_plain_commit_is_invisible_until_commit(session):
    key = "prepare_simple_key"
    session.write_prepare(key, b"1" * 10, 0, 1024).get()
    for probe in (session.read_data, session.lookup):
        with pytest.raises(elliptics.NotFoundError):
            probe(key).get()
    session.write_plain(key, b"2" * 10, 10).get()
    with pytest.raises(elliptics.NotFoundError):
        session.read_data(key).get()
    session.write_commit(key, b"3" * 10, 20, 30).get()
    checked_read(session, key, b"1" * 10 + b"2" * 10 + b"3" * 10)
    assert session.lookup(key).get()[0].size == 30


def test_prepare_write_commit_across_blob_rotation(session):
    key = "prepare_rotation_key"
    session.write_prepare(key, b"a" * 100, 0, 1024).get()
    for i in range(RECORDS_IN_BLOB * 2 + 1):
        session.write_data(f"filler_{i}", b"x").get()
    session.write_plain(key, b"b" * 100, 100).get()
    session.write_commit(key, b"c" * 100, 200, 300).get()
    checked_read(session, key, b"a" * 100 + b"b" * 100 + b"c" * 100)


def test_remove_then_read_is_not_found(session):
    checked_write(session, "remove_key", b"bye")
    assert len(session.remove("remove_key").get()) == len(GROUPS)
    with pytest.raises(elliptics.NotFoundError):
        session.read_data("remove_key").get()


def test_read_latest_prefers_the_newest_group(session):
    old, new = session.clone(), session.clone()
    old.groups, new.groups = [GROUPS[0]], [GROUPS[1]]
    old.timestamp = elliptics.Time(1000, 0)
    new.timestamp = elliptics.Time(2000, 0)
    checked_write(old, "latest_key", b"older")
    checked_write(new, "latest_key", b"newer")
    assert session.read_latest("latest_key").get()[0].data == b"newer"


def test_user_flags_and_timestamp_come_back_on_read(session):
    s = session.clone()
    s.user_flags = 0xABCDEF
    s.timestamp = elliptics.Time(1234567, 890)
    checked_write(s, "meta_key", b"meta")
    got = session.read_data("meta_key").get()[0]
    assert got.user_flags == 0xABCDEF and got.timestamp == elliptics.Time(1234567, 890)
    assert session.lookup("meta_key").get()[0].timestamp == elliptics.Time(1234567, 890)


def route_of(session, key):
    try:
        return session.lookup_address(key, session.groups[0])
    except elliptics.Error:
        return None


def wait_for_route(session, key, moved_from=None, back_to=None):
    deadline = time.monotonic() + 10
    while True:
        route = route_of(session, key)
        if (moved_from is not None and route != moved_from) or (back_to is not None
                                                                and route == back_to):
            return
        assert time.monotonic() < deadline, f"{key}: routes stay at {route}"
        time.sleep(0.02)


def restart_backend(session, key, address, backend_id):
    """Disable, then enable, one backend with ``dnet_ioclient -B``. The nodes tell the
    session through UPDATE_IDS pushes that reach its connections on their own time: wait
    until the session has seen the backend leave, then come back."""
    run_tool("dnet_ioclient", str(address), "-B", "disable", "-b", str(backend_id))
    wait_for_route(session, key, moved_from=address)
    run_tool("dnet_ioclient", str(address), "-B", "enable", "-b", str(backend_id))
    wait_for_route(session, key, back_to=address)


def test_prepare_plain_commit_with_restarting_backend(session):
    key = "prepare_restart_key"
    one = session.clone()
    one.groups = [GROUPS[0]]
    first = one.write_prepare(key, b"1" * 10, 0, 30).get()[0]
    where = (first.address, first.backend_id)
    restart_backend(one, key, *where)
    plain = one.write_plain(key, b"2" * 10, 10).get()[0]
    assert (plain.address, plain.backend_id) == where
    restart_backend(one, key, *where)
    commit = one.write_commit(key, b"3" * 10, 20, 30).get()[0]
    assert (commit.address, commit.backend_id) == where
    checked_read(one, key, b"1" * 10 + b"2" * 10 + b"3" * 10)
