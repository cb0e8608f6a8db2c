"""The original suite's ``test_session_indexes.py`` against real nodes: two nodes, groups
1, 2 and 3, so index tables of one object live on both nodes (the node that updates an
object's list sends the changes of tables it does not own to their node)."""

import elliptics
from conftest import GROUPS


def as_bytes(data):
    return data.encode() if isinstance(data, str) else data


def check_indexes_results(session, results, indexes, datas):
    assert len(results) == len(indexes)
    got = {r.index: r.data for r in results}
    want = {session.transform(idx): as_bytes(datas[i]) for i, idx in enumerate(indexes)}
    assert got == want


def check_find_results(session, results, key, indexes, datas):
    assert len(results) == 1
    result = results[0]
    assert result.id == session.transform(key)
    check_indexes_results(session, result.indexes, indexes, datas)


def check_indexes(session, key, indexes, datas):
    indexes, datas = list(indexes), list(datas)
    check_find_results(session, session.find_any_indexes(indexes).get(), key, indexes, datas)
    check_find_results(session, session.find_all_indexes(indexes).get(), key, indexes, datas)
    check_indexes_results(session, session.list_indexes(key).get(), indexes, datas)


def test_indexes_simple(session):
    check = {}
    key = "simple_key"
    indexes = [f"simple_index_{i}" for i in range(1, 6)]
    datas = [f"key_data_{i}" for i in range(1, 6)]
    session.set_indexes(key, indexes, datas).wait()
    check.update(zip(indexes, datas))
    check_indexes(session, key, check.keys(), check.values())

    indexes_2 = ["simple_index_4", "simple_index_5", "simple_index_6", "simple_index_7"]
    datas_2 = ["key_data_4.2", "key_data_5.2", "key_data_6.2", "key_data_7.2"]
    session.update_indexes(key, indexes_2, datas_2).wait()
    check.update(zip(indexes_2, datas_2))
    check_indexes(session, key, check.keys(), check.values())

    removed = indexes[:3]
    session.remove_indexes(key, removed).wait()
    for idx in removed:
        del check[idx]
    check_indexes(session, key, check.keys(), check.values())
    assert session.find_any_indexes(removed).get() == []


def test_indexes_dict(session):
    key = "dict_key"
    indexes = {f"dict_index_{i}": f"key_data_{i}" for i in range(1, 6)}
    result = session.set_indexes(key, indexes)
    assert len(result.get()) == len(session.groups) == len(GROUPS)
    check_indexes(session, key, indexes.keys(), indexes.values())

    indexes_2 = {"dict_index_4": "key_data_4.2", "dict_index_5": "key_data_5.2",
                 "dict_index_6": "key_data_6.2", "dict_index_7": "key_data_7.2"}
    session.update_indexes(key, indexes_2).wait()
    indexes.update(indexes_2)
    check_indexes(session, key, indexes.keys(), indexes.values())


def test_indexes_are_kept_in_every_group(session):
    key = "every_group_key"
    session.set_indexes(key, {"group_index": b"in all groups"}).wait()
    for group in GROUPS:
        one = session.clone()
        one.groups = [group]
        found = one.find_all_indexes(["group_index"]).get()
        assert [f.id for f in found] == [session.transform(key)]
        assert [e.data for e in one.list_indexes(key).get()] == [b"in all groups"]


def test_list_indexes_of_a_key_without_indexes_is_not_found(session):
    try:
        session.list_indexes("never_indexed").get()
    except elliptics.NotFoundError:
        return
    raise AssertionError("list_indexes of a key without indexes succeeded")
