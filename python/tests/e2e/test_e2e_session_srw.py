"""Exec scenarios of the original ``test_session_srw.py`` against real nodes with srw.

The original suite used ``dnet_cpp_srw_test_app@info``; here the app is a small Python
worker (``from cocaine.worker import Worker``, our fallback) with an ``echo`` event that
writes the exec payload back, started on every node. ``app@info`` is answered by the node
itself. Result counts: a string key gives one result per session group, no key one per
node, an ``Id`` with a group exactly one; every result's ``context.address`` is the address
it came from. The app is uploaded and started through the first node only: the other
node learns the routes by JOIN and reads the app's records from the cluster.
"""

import json
import threading

import pytest

import elliptics
from conftest import GROUPS, NODES, run_tool
from test_e2e_tutorial import PROFILE, fallback_env

APP = "srw_test_app"
ECHO_APP = '''#!/usr/bin/env python
import struct
from cocaine.worker import Worker

def echo(request, response):
    data = yield request.read()
    event_size = struct.unpack('<i', data[80:84])[0]
    response.write(data[128 + event_size:])
    response.close()

Worker().run({"echo": echo})
'''


@pytest.fixture(scope="module")
def srw_app(cluster, tmp_path_factory):
    work = tmp_path_factory.mktemp("srw_app")
    script = work / "echo.py"
    script.write_text(ECHO_APP)
    script.chmod(0o755)
    import tarfile
    with tarfile.open(work / "echo.tar", "w") as tar:
        tar.add(script, arcname="echo.py")
    (work / "manifest.json").write_text(
        json.dumps({"slave": "echo.py", "environment": fallback_env(work)}))
    (work / "profile.json").write_text(PROFILE)
    remote = cluster[0]
    run_tool("dnet_srw", remote, "app", "upload", "--manifest", str(work / "manifest.json"),
             "--package", str(work / "echo.tar"), "--name", APP)
    run_tool("dnet_srw", remote, "profile", "upload", "--profile",
             str(work / "profile.json"), "--name", APP)
    run_tool("dnet_ioclient", remote, "-c", f"{APP}@start-task")
    return APP


def assert_addresses_match(results):
    for r in results:
        assert r.error.code == 0
        assert r.context.address == r.address


def test_exec_requires_an_event_and_accepts_missing_or_none_data(session, srw_app):
    with pytest.raises(TypeError):
        session.exec_("key", data="x")
    for kwargs in ({}, {"data": None}):
        results = session.exec_("key", event=f"{srw_app}@info", **kwargs).get()
        assert len(results) == len(GROUPS)


def test_string_key_gives_one_result_per_group(session, srw_app):
    results = session.exec_("some key", event=f"{srw_app}@info").get()
    assert sorted(r.group_id for r in results) == GROUPS
    assert_addresses_match(results)
    for r in results:
        assert r.context.event == f"{srw_app}@info"
        assert json.loads(r.context.data)["state"] == "running"


def test_no_key_gives_one_result_per_node(session, cluster, srw_app):
    results = session.exec_(None, event=f"{srw_app}@info").get()
    assert sorted(str(r.address) for r in results) == sorted(cluster)
    assert_addresses_match(results)


def test_route_id_gives_exactly_one_result(session, srw_app):
    routes = session.routes.get_unique_routes()
    assert len(routes) == len(GROUPS) * NODES
    for route in routes:
        results = session.exec_(route.id, event=f"{srw_app}@info").get()
        assert len(results) == 1
        assert results[0].group_id == route.id.group_id
        assert results[0].address == route.address
        assert_addresses_match(results)


def test_sync_iterator_and_callback_styles_agree(session, srw_app):
    event = f"{srw_app}@info"
    sync = session.exec_("style key", event=event).get()
    iterated = list(session.exec_("style key", event=event))
    got, final = [], []
    done = threading.Event()

    def on_final(error):
        final.append(error)
        done.set()

    session.exec_("style key", event=event).connect(got.append, on_final)
    assert done.wait(10)
    assert final[0].code == 0
    for results in (sync, iterated, got):
        assert len(results) == len(GROUPS)
        assert all(r.error.code == 0 for r in results)


def test_worker_reply_chunk_comes_back_per_group(session, srw_app):
    results = session.exec_("echo key", event=f"{srw_app}@echo", data=b"ping \x00\xff").get()
    assert sorted(r.group_id for r in results) == GROUPS
    assert_addresses_match(results)
    for r in results:
        assert r.context.data == b"ping \x00\xff"
        assert r.context.event == f"{srw_app}@echo"
        assert r.context.src_id == session.transform("echo key")


def test_worker_reply_without_a_key_comes_from_every_node(session, cluster, srw_app):
    results = session.exec_(event=f"{srw_app}@echo", data="hello").get()
    assert sorted(str(r.address) for r in results) == sorted(cluster)
    assert all(r.context.data == b"hello" for r in results)


def test_event_of_an_app_that_is_not_started_is_not_found(session, srw_app):
    with pytest.raises(elliptics.NotFoundError):
        session.exec_("key", event="no_such_app@echo").get()


def test_event_without_an_at_sign_is_invalid(session, srw_app):
    with pytest.raises(elliptics.Error) as info:
        session.exec_("key", event="no-at-sign").get()
    assert info.value.code == -22
