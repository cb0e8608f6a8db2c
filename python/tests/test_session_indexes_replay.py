"""Secondary indexes against the captured replies of the original 2.26 server.

The peer replays ``python-indexes.txt``: every frame our client sends must equal what the
original Python binding sent (set_indexes, update_indexes, find_all/find_any, list_indexes,
remove_indexes), and the results must be what the binding printed in that session.
"""

import hashlib

import captures
import elliptics
from test_client_replay import ReplayServer


def sha(key: str) -> elliptics.Id:
    return elliptics.Id(hashlib.sha512(key.encode()).digest())


def as_dict(entries):
    return {e.index: e.data for e in entries}


def test_index_calls_send_exactly_what_the_python_binding_sent():
    server = ReplayServer(captures.load("python-indexes.txt"))
    node = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    node.add_remotes([f"127.0.0.1:{server.port}:2"])
    s = elliptics.Session(node)
    s.groups = [1]
    assert node.indexes_shard_count == 2, "the count the node announced"

    set_result = s.set_indexes("doc1", ["idx-a", "idx-b"], [b"data-a", b"data-b"]).get()
    update_result = s.update_indexes("doc2", ["idx-a"], [b"data-a2"]).get()
    found_all = s.find_all_indexes(["idx-a", "idx-b"]).get()
    found_any = s.find_any_indexes(["idx-a", "idx-b"]).get()
    listed = s.list_indexes("doc1").get()
    remove_result = s.remove_indexes("doc1", ["idx-b"]).get()
    after = s.find_any_indexes(["idx-a", "idx-b"]).get()

    assert server.mismatch is None, f"frame #{server.mismatch[0]} differs from the capture"
    assert len(server.received) == 12
    assert [(r.error.code, r.error.message) for r in set_result] == [(0, "")]
    assert [(r.error.code, r.error.message) for r in update_result] == [(0, ""), (0, "")]
    assert [(r.error.code, r.error.message) for r in remove_result] == [(0, ""), (0, "")]

    a, b = sha("idx-a"), sha("idx-b")
    assert [f.id for f in found_all] == [sha("doc1")]
    assert as_dict(found_all[0].indexes) == {a: b"data-a", b: b"data-b"}
    assert [f.id for f in found_any] == [sha("doc1"), sha("doc2")]
    assert as_dict(found_any[1].indexes) == {a: b"data-a2"}
    assert [(e.index, e.data) for e in listed] == [(b, b"data-b"), (a, b"data-a")]
    assert {f.id: as_dict(f.indexes) for f in after} == {
        sha("doc1"): {a: b"data-a"}, sha("doc2"): {a: b"data-a2"}}
