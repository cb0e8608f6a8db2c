"""Config and Session parameters, and errors that need no server (test_config /
test_session_parameters / write_without_groups of the original suite)."""

import pytest

import elliptics


@pytest.fixture
def node():
    return elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())


def test_config_defaults_match_the_binding():
    cfg = elliptics.Config()
    assert cfg.wait_timeout == 5 and cfg.check_timeout == 20
    assert cfg.io_thread_num == 1 and cfg.net_thread_num == 1
    assert cfg.nonblocking_io_thread_num == 1 and cfg.flags == 0
    assert cfg.cookie == "\0" * 32


def test_config_cookie_is_truncated_to_31_characters_plus_nul():
    cfg = elliptics.Config()
    cfg.cookie = "test"
    assert cfg.cookie == "test" + "\0" * 28
    cfg.cookie = "a" * 40
    assert cfg.cookie == "a" * 31 + "\0"


def test_session_defaults(node):
    s = elliptics.Session(node)
    assert s.timeout == 5 and s.groups == [] and s.cflags == 0 and s.ioflags == 0
    assert s.timestamp == elliptics.Time(2**64 - 1, 2**64 - 1)
    assert s.trace_id == 0 and s.user_flags == 0


def test_timeout_zero_resets_to_five(node):
    s = elliptics.Session(node)
    s.timeout = 17
    assert s.timeout == 17
    s.timeout = 0
    assert s.timeout == 5


def test_clone_copies_every_parameter(node):
    s = elliptics.Session(node)
    s.groups = [1, 2]
    s.set_namespace("ns")
    s.ioflags = elliptics.io_flags.append
    c = s.clone()
    assert (c.groups, c.namespace, c.ioflags) == ([1, 2], b"ns", elliptics.io_flags.append)
    c.groups = [3]
    assert s.groups == [1, 2]


def test_write_without_groups_raises_the_binding_message(node):
    s = elliptics.Session(node)
    with pytest.raises(elliptics.Error) as info:
        s.write_data("key", "data").get()
    assert str(info.value) == ("insufficient results count due to checker: 0 of 1 (1): "
                               "No such device or address: -6")
    assert info.value.code == -6


def test_group_without_route_is_enxio_for_every_operation(node):
    s = elliptics.Session(node)
    s.groups = [99]
    for result in (s.read_data("k"), s.lookup("k"), s.remove("k"), s.read_latest("k"),
                   s.exec_("k", event="app@ev")):
        with pytest.raises(elliptics.Error) as info:
            result.get()
        assert info.value.code == -6


def test_exec_requires_an_event(node):
    s = elliptics.Session(node)
    with pytest.raises(TypeError):
        s.exec_(data="x")


def test_namespace_changes_the_key_id(node):
    s = elliptics.Session(node)
    plain = s.transform("key").id
    s.set_namespace("apps")
    import hashlib
    assert s.transform("key").id == hashlib.sha512(b"apps\0key").digest() != plain


def test_address_parsing_accepts_host_port_family_strings():
    a = elliptics.Address.from_host_port_family("localhost:1025:2")
    assert (a.host, a.port, a.family) == ("127.0.0.1", 1025, 2)
    assert str(a) == "127.0.0.1:1025:2"
    assert elliptics.Address.from_host_port("127.0.0.1:1025") == a
