"""Owner search: greatest point <= key, wrap-around, duplicates, removal."""

import pytest

from elliptics.route import DuplicateRouteError, RouteTable
from elliptics.wire import BackendIds


def pid(byte: int) -> bytes:
    return bytes([byte]) + b"\0" * 63


@pytest.fixture
def table():
    t = RouteTable()
    t.add_backend("a", BackendIds(0, 1, 0, [pid(0x10), pid(0x80)]))
    t.add_backend("b", BackendIds(3, 1, 0, [pid(0x40)]))
    t.add_backend("c", BackendIds(0, 2, 0, [pid(0x20)]))
    return t


def test_owner_is_the_greatest_point_not_above_the_key(table):
    assert table.lookup(1, pid(0x10)).owner == "a"
    assert table.lookup(1, pid(0x3f) + b"").owner == "a"
    assert table.lookup(1, pid(0x40)).owner == "b"
    assert table.lookup(1, b"\x7f" + b"\xff" * 63).owner == "b"
    assert table.lookup(1, pid(0xff)).owner == "a"
    assert table.lookup(1, pid(0x40)).backend_id == 3


def test_key_below_every_point_wraps_to_the_largest(table):
    assert table.lookup(1, pid(0x00)).point == pid(0x80)
    assert table.search_range(1, pid(0x05)) == (pid(0x80), pid(0x10))
    assert table.search_range(1, pid(0x50)) == (pid(0x40), pid(0x80))


def test_groups_are_separate_rings_and_unknown_groups_have_no_route(table):
    assert table.lookup(2, pid(0x00)).owner == "c"
    assert table.lookup(99, pid(0x00)) is None
    assert table.groups() == [1, 2]


def test_duplicate_points_are_ignored_and_an_all_duplicate_backend_is_refused(table):
    assert table.add_backend("d", BackendIds(1, 1, 0, [pid(0x10), pid(0x90)])) == 1
    assert table.lookup(1, pid(0x10)).owner == "a"
    with pytest.raises(DuplicateRouteError):
        table.add_backend("e", BackendIds(0, 1, 0, [pid(0x40)]))


def test_removing_an_owner_hands_its_range_to_the_preceding_point(table):
    table.remove_owner("b")
    assert table.lookup(1, pid(0x50)).owner == "a"
    table.remove_backend("c", 0)
    assert table.lookup(2, pid(0x20)) is None
    assert table.groups() == [1]
