"""The server-side processing tutorial, run as written against real nodes.

The elaborate ``test_app.py`` (struct-unpacks ``data[80:84]``, writes
``data[128 + event_size:]`` to TESTKEY through ``elliptics.Session``) is packed with
``tar -cf``, uploaded with ``dnet_srw`` (the tutorial's manifest, trailing comma included,
plus an ``environment``), started with ``start-task`` and fed ``test_app@test_event
SOME_DATA`` with ``dnet_ioclient -c``; ``dnet_ioclient -D TESTKEY`` then prints SOME_DATA.
That runs twice: with this repository's ``cocaine`` fallback worker, and with the real PyPI
``cocaine==0.12.14.5`` framework in a venv (see ``conftest_cocaine``). The only edit to the
script is the node address. The tutorial's Python client app (``exec_`` without a key)
reaches the worker on every node.

The script does not wait for its ``write_data`` (neither did the original binding's
users): the worker closes its response, and the caller's acknowledgement can arrive a few
milliseconds before the node has applied the write. Reads of TESTKEY therefore poll for up
to ``TESTKEY_WAIT_S``.
"""

import json
import os
import pathlib
import subprocess
import time

import pytest

import elliptics
from conftest import REPO_ROOT, run_tool
from conftest_cocaine import real_cocaine_env

PYTHON_DIR = REPO_ROOT / "python"
TESTKEY_WAIT_S = 2.0

TEST_APP = '''#!/usr/bin/env python
from cocaine.worker import Worker
import elliptics
import struct

elog = elliptics.Logger("/tmp/worker", 0)
cfg = elliptics.Config()
node = elliptics.Node(elog, cfg)
node.add_remotes(["localhost:1025:2"])

def test_event(request, response):
    try:
         data = yield request.read()
         s = elliptics.Session(node)
         s.set_groups([1])
         event_size = struct.unpack('<i', data[80:84])[0]
         s.write_data("TESTKEY", data[128 + event_size:], 0)
    except Exception as err:
         response.error(1, str(err))
    finally:
         response.close()

W = Worker()
W.run({"test_event" : test_event})
'''

TUTORIAL_MANIFEST = '{\n    "slave" : "test_app.py",\n}\n'
PROFILE = '{"isolate": {"type": "process", "args": {"spool": "/var/tmp/cocaine/spool"}}}'


def fallback_env(tmp_path: pathlib.Path) -> dict:
    """Worker environment that resolves ``cocaine`` to this repository's fallback."""
    site = tmp_path / "fallback-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import cocaine_compat\ncocaine_compat.install_fallback()\n")
    return {"PYTHONPATH": f"{PYTHON_DIR}:{site}"}


def deploy(tmp_path: pathlib.Path, remote: str, environment: dict, name: str = "test_app"):
    """Upload the tutorial app as ``name`` with ``environment``, then stop and start it
    (the tutorial's update procedure: upload, stop-task, start-task)."""
    work = tmp_path / name
    work.mkdir(parents=True, exist_ok=True)
    script = work / "test_app.py"
    script.write_text(TEST_APP.replace("localhost:1025:2", remote))
    script.chmod(0o755)
    subprocess.run(["tar", "-cf", "test_app.tar", "test_app.py"], cwd=work, check=True)
    # The tutorial's manifest as written first: the relaxed JSON must be accepted.
    (work / "test_app_manifest.json").write_text(TUTORIAL_MANIFEST)
    run_tool("dnet_srw", remote, "app", "upload", "--manifest",
             str(work / "test_app_manifest.json"), "--package", str(work / "test_app.tar"),
             "--name", name)
    manifest = {"slave": "test_app.py", "environment": environment}
    (work / "manifest_env.json").write_text(json.dumps(manifest))
    run_tool("dnet_srw", remote, "app", "upload", "--manifest", str(work / "manifest_env.json"),
             "--package", str(work / "test_app.tar"), "--name", name)
    (work / "process_isolate.profile").write_text(PROFILE)
    run_tool("dnet_srw", remote, "profile", "upload", "--profile",
             str(work / "process_isolate.profile"), "--name", name)
    run_tool("dnet_ioclient", remote, "-c", f"{name}@stop-task")
    out = run_tool("dnet_ioclient", remote, "-c", f"{name}@start-task")
    assert "acknowledge" in out, out


def forget_testkey(session):
    s = session.clone()
    s.groups = [1]
    try:
        s.remove("TESTKEY").get()
    except elliptics.NotFoundError:
        pass
    with pytest.raises(elliptics.NotFoundError):
        s.read_data("TESTKEY").get()


def eventually(read):
    """``read()`` until it stops raising NotFoundError, for up to TESTKEY_WAIT_S."""
    deadline = time.monotonic() + TESTKEY_WAIT_S
    while True:
        try:
            return read()
        except elliptics.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def exec_with_ioclient_then_read_testkey(remote: str, session) -> None:
    forget_testkey(session)
    out = run_tool("dnet_ioclient", remote, "-c", "test_app@test_event SOME_DATA")
    assert "acknowledge" in out, out
    eventually(lambda: session.read_data("TESTKEY").get())
    assert run_tool("dnet_ioclient", remote, "-D", "TESTKEY") == "SOME_DATA"


def test_tutorial_app_with_the_fallback_worker_writes_testkey(single_node, single_session,
                                                              tmp_path):
    deploy(tmp_path, single_node[0], fallback_env(tmp_path))
    exec_with_ioclient_then_read_testkey(single_node[0], single_session)


def test_tutorial_app_with_pypi_cocaine_writes_testkey(single_node, single_session, tmp_path):
    env = real_cocaine_env()
    deploy(tmp_path, single_node[0], env)
    exec_with_ioclient_then_read_testkey(single_node[0], single_session)
    info = json.loads(app_info(single_node[0]))
    assert info["state"] == "running"
    assert info["counters"]["test_app@test_event"]["blocked"] >= 1


def app_info(remote: str) -> str:
    """The styled JSON of ``dnet_ioclient -c test_app@info`` (its first node's answer)."""
    out = run_tool("dnet_ioclient", remote, "-c", "test_app@info")
    start, end = out.index("{"), out.index("\n}") + 2
    return out[start:end]


def tutorial_client_app(remotes):
    """The tutorial's client app, verbatim but for the address list; returns the session."""
    elog = elliptics.Logger("/tmp/worker", 0)
    cfg = elliptics.Config()
    node = elliptics.Node(elog, cfg)
    node.add_remotes(remotes)
    s = elliptics.Session(node)
    s.set_groups([1])
    result = s.exec_(event="test_app@test_event", data="MSG\n")
    # The worker writes no reply chunk, and exec results list only data replies
    # (filter positive), so every node's bare acknowledgement gives no entry.
    assert result.get() == []
    assert result.successful()
    return s


def assert_one_test_event_per_node(s, expected_nodes):
    """``app@info`` broadcast: one answer per node, each counting one blocked test_event."""
    infos = s.exec_(event="test_app@info").get()
    addresses = sorted(str(r.address) for r in infos)
    assert addresses == sorted(expected_nodes)
    for r in infos:
        assert r.context.address == r.address
        counters = json.loads(r.context.data)["counters"]
        assert counters["test_app@test_event"]["blocked"] == 1, r.context.data


def test_tutorial_python_client_app_on_the_tutorial_node(single_node, single_session,
                                                          tmp_path):
    deploy(tmp_path, single_node[0], fallback_env(tmp_path))
    forget_testkey(single_session)
    s = tutorial_client_app(single_node)
    assert eventually(lambda: single_session.read_data("TESTKEY").get())[0].data == b"MSG\n"
    assert_one_test_event_per_node(s, single_node)


def test_tutorial_python_client_app_gets_one_answer_per_node(cluster, tmp_path):
    # As in the tutorial: one remote, the rest of the cluster comes from its route list.
    deploy(tmp_path, cluster[0], fallback_env(tmp_path))
    s = tutorial_client_app([cluster[0]])
    assert_one_test_event_per_node(s, cluster)


def test_worker_environment_shim_is_what_makes_pypi_cocaine_import():
    env = real_cocaine_env()
    python = pathlib.Path(env["PATH"].split(":")[0]) / "python"
    probe = ("import cocaine.worker; "
             "print(cocaine.worker.Worker.__module__, cocaine.worker.__file__)")
    full = dict(os.environ, **env)
    out = subprocess.run([str(python), "-c", probe], env=full, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    module, path = out.stdout.split()
    assert module == "cocaine.worker.worker"
    assert "site-packages" in path and "cocaine_compat" not in path
    no_shim = dict(full, PYTHONPATH=str(PYTHON_DIR))
    out = subprocess.run([str(python), "-c", probe], env=no_shim, capture_output=True, text=True)
    assert out.returncode != 0 and "MutableMapping" in out.stderr


def worker_pids(app: str) -> set:
    """Pids of the processes started with ``--app <app>``."""
    pids = set()
    for proc in pathlib.Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--app" in argv and argv[argv.index(b"--app") + 1:][:1] == [app.encode()]:
            pids.add(int(proc.name))
    return pids


def test_pypi_cocaine_workers_outlive_their_heartbeat_timers(single_node, single_session,
                                                             tmp_path):
    # The real Worker sends a heartbeat at start and every 20 s, and quits ("disowned")
    # when no reply comes within 5 s: workers alive after 26 s got their replies.
    deploy(tmp_path, single_node[0], real_cocaine_env(), name="test_app_hb")
    before = worker_pids("test_app_hb")
    assert before
    time.sleep(26)
    assert worker_pids("test_app_hb") == before
    forget_testkey(single_session)
    run_tool("dnet_ioclient", single_node[0], "-c", "test_app_hb@test_event AFTER_HEARTBEATS")
    data = eventually(lambda: single_session.read_data("TESTKEY").get())[0].data
    assert data == b"AFTER_HEARTBEATS"
    assert worker_pids("test_app_hb") == before
    # stop-task terminates them: the real Worker echoes the terminate and exits.
    run_tool("dnet_ioclient", single_node[0], "-c", "test_app_hb@stop-task")
    deadline = time.monotonic() + 10
    while worker_pids("test_app_hb") & before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not worker_pids("test_app_hb") & before
