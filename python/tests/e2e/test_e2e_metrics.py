"""``GET /metrics`` of a real node, read with ``prometheus_client``'s own text parser.

One node with a monitor port; the test writes and reads through the Python client, reads
a key that does not exist, and checks what a Prometheus server would ingest: the families
and their types, the labels, counters that match the traffic sent, a latency histogram
whose buckets only grow and end at its count, and backend gauges that saw the bytes.
"""

import json
import os
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import elliptics
from conftest import _binary, _config, _free_port, _wait_listening

WRITES = 40


@pytest.fixture(scope="module")
def metrics_node(tmp_path_factory):
    if not os.environ.get("ELLIPTICS_E2E"):
        pytest.skip("end-to-end tests run only with ELLIPTICS_E2E set")
    root = tmp_path_factory.mktemp("metrics")
    port, http = _free_port(), _free_port()
    config = _config(root, 0, port, [])
    config["options"]["monitor"] = {"port": http}
    config["options"]["shard_count"] = 2
    del config["options"]["srw_config"]
    path = root / "node0.json"
    path.write_text(json.dumps(config, indent=2))
    with open(root / "node0.stderr", "wb") as stderr:
        proc = subprocess.Popen([str(_binary()), "-c", str(path)], cwd=str(root),
                                stdout=stderr, stderr=subprocess.STDOUT)
    try:
        _wait_listening(proc, port, root / "node0.stderr")
        yield f"127.0.0.1:{port}:2", http
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def scrape(http):
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family, name=None, **labels):
    return [s for s in family.samples
            if (name is None or s.name == name)
            and all(s.labels.get(k) == v for k, v in labels.items())]


def test_metrics_parse_and_count_the_traffic_sent(metrics_node):
    remote, http = metrics_node
    n = elliptics.Node(elliptics.Logger("/dev/null", 0), elliptics.Config())
    n.add_remotes([remote])
    s = elliptics.Session(n)
    s.groups = [1]
    for i in range(WRITES):
        s.write_data(f"metrics-{i}", b"x" * 1000).get()
        s.read_data(f"metrics-{i}").get()
    with pytest.raises(elliptics.NotFoundError):
        s.read_data("metrics-never-written").get()

    families = scrape(http)
    # prometheus_client names counters without their _total suffix.
    kinds = {"elliptics_requests": "counter", "elliptics_request_errors": "counter",
             "elliptics_request_duration_seconds": "histogram",
             "elliptics_shard_queue_depth": "gauge", "elliptics_shard_cpu_seconds": "counter",
             "elliptics_backend_disk_bytes": "gauge", "elliptics_backend_live_bytes": "gauge",
             "elliptics_backend_defrag_running": "gauge", "elliptics_connections": "gauge",
             "elliptics_cluster_nodes": "gauge", "elliptics_uptime_seconds": "gauge"}
    for name, kind in kinds.items():
        assert name in families, f"{name} missing from {sorted(families)}"
        assert families[name].type == kind, name

    writes = sum(x.value for x in samples(families["elliptics_requests"], command="WRITE"))
    assert writes == WRITES
    shards = {x.labels["shard"] for x in samples(families["elliptics_requests"])}
    assert shards <= {"0", "1"}
    assert len(samples(families["elliptics_shard_queue_depth"])) == 2

    missing = samples(families["elliptics_request_errors"], status="ENOENT")
    assert sum(x.value for x in missing) >= 1

    hist = families["elliptics_request_duration_seconds"]
    for command in ("READ", "WRITE"):
        buckets = samples(hist, "elliptics_request_duration_seconds_bucket", command=command)
        count = samples(hist, "elliptics_request_duration_seconds_count", command=command)
        assert buckets and count, command
        values = [b.value for b in buckets]
        assert values == sorted(values), "cumulative buckets only grow"
        assert buckets[-1].labels["le"] == "+Inf" and values[-1] == count[0].value
        assert 0 < count[0].value <= 2 * WRITES + 1, "sampled: at most every request"

    # Backend gauges are published once a second by the shards.
    import time
    deadline = time.monotonic() + 5
    while True:
        disk = samples(scrape(http)["elliptics_backend_disk_bytes"], backend="0", group="1")
        if disk and disk[0].value >= WRITES * 1000 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert disk[0].value >= WRITES * 1000


def test_the_original_json_paths_are_unchanged_beside_the_new_ones(metrics_node):
    _, http = metrics_node
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/all", timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["monitor_status"] == "enabled"
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/list", timeout=10) as r:
        handlers = json.loads(r.read())["handlers"]
    assert "/all" in handlers and "/metrics" in handlers and "/live" in handlers
