"""End-to-end fixtures: real ``dnet_ioserv`` nodes started from generated ioserv.json.

Skipped only when ``ELLIPTICS_E2E`` is unset. With it set, a missing binary is a failure:
the binary is ``$DNET_IOSERV`` or ``target/debug/dnet_ioserv`` under the repository root.
The cluster follows the original pytests: 2 nodes, groups 1, 2 and 3, one backend per
group per node, small blobs so that rotation happens quickly. Every node has srw configured
(its own spool and runtime directories), so the exec tests use the same cluster. The CLI
tools are ``$DNET_IOCLIENT`` / ``$DNET_SRW`` or the binaries next to ``dnet_ioserv``.
"""

import json
import os
import pathlib
import socket
import subprocess
import time

import pytest

import elliptics

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
GROUPS = [1, 2, 3]
NODES = 2
RECORDS_IN_BLOB = 50
START_TIMEOUT_S = 20


def _binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("DNET_IOSERV") or REPO_ROOT / "target/debug/dnet_ioserv")
    if not path.is_file():
        pytest.fail(f"ELLIPTICS_E2E is set but dnet_ioserv was not found at {path}")
    return path


def tool(name: str) -> pathlib.Path:
    """A CLI binary: ``$<NAME upper>`` or the one next to dnet_ioserv."""
    path = pathlib.Path(os.environ.get(name.upper()) or _binary().parent / name)
    if not path.is_file():
        pytest.fail(f"ELLIPTICS_E2E is set but {name} was not found at {path}")
    return path


def run_tool(name: str, remote: str, *args: str, group: str = "1") -> str:
    """Run ``name -r remote -g group args...``; fail the test unless it exits 0."""
    out = subprocess.run([str(tool(name)), "-r", remote, "-g", group, *args],
                         capture_output=True, timeout=60)
    if out.returncode != 0:
        pytest.fail(f"{name} {' '.join(args)} exited {out.returncode}\n"
                    f"stdout: {out.stdout.decode(errors='replace')}\n"
                    f"stderr: {out.stderr.decode(errors='replace')}")
    return out.stdout.decode(errors="replace")


def _srw_config(root: pathlib.Path, index: int, remote: str) -> pathlib.Path:
    base = root / f"node{index}" / "cocaine"
    path = root / f"node{index}.srw.json"
    path.write_text(json.dumps({
        "version": 2,
        "paths": {"plugins": "/usr/lib/cocaine", "runtime": str(base / "ipc"),
                  "spool": str(base / "spool")},
        "services": {"logging": {"type": "logging", "args": {"port": 12501}},
                     "storage": {"type": "elliptics"}},
        "storages": {"core": {"type": "elliptics",
                              "args": {"nodes": [remote], "groups": [1], "verbosity": 2}}},
    }, indent=2))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(root: pathlib.Path, index: int, port: int, remotes) -> dict:
    backends = []
    for backend_id, group in enumerate(GROUPS):
        base = root / f"node{index}" / f"backend{backend_id}"
        (base / "history").mkdir(parents=True)
        (base / "data").mkdir()
        (base / "history" / "ids").write_bytes(os.urandom(64 * 4))
        backends.append({"backend_id": backend_id, "type": "blob", "group": group,
                         "history": str(base / "history"), "data": str(base / "data" / "data"),
                         "sync": "-1", "blob_flags": "158", "blob_size": "10M",
                         "records_in_blob": str(RECORDS_IN_BLOB), "periodic_timeout": 15})
    return {
        "logger": {"level": "error", "frontends": [{
            "formatter": {"type": "string", "pattern": "%(message)s"},
            "sink": {"type": "files", "path": str(root / f"node{index}.log"),
                     "autoflush": True, "rotation": {"move": 0}}}]},
        "options": {"join": True, "flags": 4, "remote": remotes,
                    "address": [f"127.0.0.1:{port}:2"], "wait_timeout": 60,
                    "check_timeout": 60, "io_thread_num": 2, "nonblocking_io_thread_num": 2,
                    "net_thread_num": 1, "daemon": False, "auth_cookie": "e2e-cookie",
                    "cache": {"size": 64 << 20},
                    "srw_config": str(_srw_config(root, index, f"127.0.0.1:{port}:2"))},
        "backends": backends,
    }


def _wait_listening(proc, port: int, log: pathlib.Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dnet_ioserv exited with {proc.returncode}; log:\n"
                        f"{log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"dnet_ioserv did not listen on {port} within {START_TIMEOUT_S} s")


def _run_nodes(root: pathlib.Path, count: int):
    """Start ``count`` nodes under ``root``; yields their remotes, stops them after."""
    if not os.environ.get("ELLIPTICS_E2E"):
        pytest.skip("end-to-end tests run only with ELLIPTICS_E2E set")
    binary = _binary()
    ports = [_free_port() for _ in range(count)]
    procs = []
    try:
        for index, port in enumerate(ports):
            remotes = [f"127.0.0.1:{p}:2" for p in ports[:index]]
            path = root / f"node{index}.json"
            path.write_text(json.dumps(_config(root, index, port, remotes), indent=2))
            stderr = open(root / f"node{index}.stderr", "wb")
            proc = subprocess.Popen([str(binary), "-c", str(path)], cwd=str(root),
                                    stdout=stderr, stderr=subprocess.STDOUT)
            procs.append(proc)
            _wait_listening(proc, port, root / f"node{index}.stderr")
        yield [f"127.0.0.1:{p}:2" for p in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """``NODES`` nodes, each joined to the ones started before it."""
    yield from _run_nodes(tmp_path_factory.mktemp("cluster"), NODES)


@pytest.fixture(scope="session")
def single_node(tmp_path_factory):
    """One node: the tutorial's setup, where one remote is the whole route table."""
    yield from _run_nodes(tmp_path_factory.mktemp("single"), 1)


@pytest.fixture
def node(cluster):
    n = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    n.add_remotes(cluster)
    return n


@pytest.fixture
def session(node):
    s = elliptics.Session(node)
    s.groups = GROUPS
    return s


@pytest.fixture
def single_session(single_node):
    """A session on ``single_node`` with group 1, the tutorial's group."""
    n = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    n.add_remotes(single_node)
    s = elliptics.Session(n)
    s.groups = [1]
    return s
