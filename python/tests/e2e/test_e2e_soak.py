"""The soak benchmark's short form: `scripts/soak.py` runs a real node under the mixed
workload for a few intervals and leaves the table and the plot a person reads."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, tool


def test_soak_records_every_interval_and_draws_the_plot(tmp_path):
    if not os.environ.get("ELLIPTICS_E2E"):
        pytest.skip("end-to-end tests run only with ELLIPTICS_E2E set")
    out = tmp_path / "soak"
    bin_dir = tool("dnet_ioserv").parent
    run = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "soak.py"), "--minutes", "0.2",
         "--interval-s", "3", "--bin-dir", str(bin_dir), "--out", str(out),
         "--blob-size", "2M", "--keys", "500", "--connections", "4", "--pipeline", "2"],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr + run.stdout
    rows = [json.loads(l) for l in (out / "soak.jsonl").read_text().splitlines()]
    assert len(rows) >= 3, rows
    assert all(r["ops_per_s"] > 0 for r in rows), rows
    # Values of 100 B to 64 KiB were written and acknowledged: the node holds live bytes,
    # its data directory has files, and its memory was sampled.
    assert rows[-1]["live_bytes"] > 0 and rows[-1]["live_keys"] > 0
    assert rows[-1]["files"] > 0 and rows[-1]["disk_bytes"] > 0
    assert rows[-1]["server_anon_bytes"] > 0
    table = (out / "soak.md").read_text()
    assert "ops/s, last sixth against first sixth" in table
    assert table.count("\n| ") >= len(rows) + 1
    svg = (out / "soak.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") >= 5
