#!/usr/bin/env python3
"""Soak benchmark: a node in its steady state under a mixed workload for N minutes.

Starts one `dnet_ioserv` (one backend, small `blob_size` so data files rotate every few
seconds, defragmentation on), fills the key space, then runs `dnet_bench` with zipf keys,
80% READ / 15% WRITE / 5% DEL and value sizes from 100 B to 64 KiB, and records every
interval: ops/s, p50/p99, the node's RSS, bytes and files on disk against the live bytes
the benchmark knows it stored, and the backend's defragmentation state. Writes
`soak.jsonl` (one line per interval), `soak.md` (a table with a summary against the
targets) and `soak.svg` (the plot) into the output directory.

    scripts/soak.sh --minutes 30 --out target/soak
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_config(root, port, monitor_port, blob_size):
    hour = time.gmtime().tm_hour
    return {
        "logger": {"level": "info", "frontends": [{"formatter": {"type": "string"}, "sink": {
            "type": "files", "path": str(root / "ioserv.log"), "autoflush": True}}]},
        "options": {
            "join": True, "flags": 4, "remote": [],
            "address": [f"127.0.0.1:{port}:2-0"],
            "wait_timeout": 30, "check_timeout": 60,
            "io_thread_num": 2, "nonblocking_io_thread_num": 2, "net_thread_num": 1,
            "auth_cookie": "soak",
            "monitor": {"port": monitor_port},
        },
        "backends": [{
            "backend_id": 1, "type": "blob", "group": 1,
            "history": str(root / "history"), "data": str(root / "data" / "data"),
            "sync": 30, "blob_size": blob_size, "records_in_blob": 1000000,
            "defrag_timeout": 10, "defrag_percentage": 20,
            "defrag_time": hour, "defrag_splay": 12,
        }],
    }


def wait_listening(port, proc, timeout_s=30):
    end = time.time() + timeout_s
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"dnet_ioserv exited with {proc.returncode} while starting")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("dnet_ioserv did not start listening")


def defrag_state(monitor_port):
    """Every member named like 'defrag' in the backend section of the monitor JSON."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/backend", timeout=2) as r:
            doc = json.load(r)
    except (OSError, ValueError):
        return None
    found = {}

    def walk(v, path):
        if isinstance(v, dict):
            for k, x in v.items():
                if "defrag" in k.lower() and not isinstance(x, (dict, list)):
                    found[f"{path}{k}"] = x
                walk(x, f"{path}{k}.")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, f"{path}{i}.")
    walk(doc, "")
    return found


def mb(n):
    return "" if n is None else f"{n / 1e6:.1f}"


def svg_plot(rows, path):
    """Four stacked panels over time, drawn by hand (no plotting package needed)."""
    panels = [
        ("ops/s", [r["ops_per_s"] for r in rows], "#1f77b4", None),
        ("p99 (ms)", [r["p99_us"] / 1000 for r in rows], "#d62728", None),
        ("node anonymous memory (MB)", [(r.get("server_anon_bytes") or 0) / 1e6 for r in rows],
         "#2ca02c", None),
        ("disk vs live (MB)", [(r.get("disk_bytes") or 0) / 1e6 for r in rows], "#9467bd",
         [r["live_bytes"] / 1e6 for r in rows]),
    ]
    width, panel_h, left, top = 900, 170, 80, 30
    height = top + len(panels) * (panel_h + 40)
    ts = [r["t_s"] for r in rows]
    t_max = max(ts) if ts else 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">elliptics soak: {len(rows)} intervals, '
           f'{t_max / 60:.1f} min</text>']
    for i, (title, ys, colour, second) in enumerate(panels):
        y0 = top + i * (panel_h + 40) + 20
        y_max = max(ys + (second or []) + [1e-9])
        out.append(f'<text x="{left}" y="{y0 - 4}">{title} (max {y_max:.1f})</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{width - left - 20}" height="{panel_h}" '
                   'fill="none" stroke="#999"/>')

        def line(values, stroke, dash=""):
            pts = " ".join(
                f"{left + (t / t_max) * (width - left - 20):.1f},"
                f"{y0 + panel_h - (v / y_max) * panel_h:.1f}" for t, v in zip(ts, values))
            out.append(f'<polyline fill="none" stroke="{stroke}" stroke-width="1.5" '
                       f'{dash}points="{pts}"/>')
        line(ys, colour)
        if second:
            line(second, "#ff7f0e", 'stroke-dasharray="4 3" ')
            out.append(f'<text x="{width - 200}" y="{y0 + 14}" fill="#9467bd">disk</text>'
                       f'<text x="{width - 150}" y="{y0 + 14}" fill="#ff7f0e">live</text>')
        out.append(f'<text x="{left - 8}" y="{y0 + panel_h}" text-anchor="end">0</text>')
        out.append(f'<text x="{width - 20}" y="{y0 + panel_h + 14}" text-anchor="end">'
                   f'{t_max:.0f} s</text>')
    out.append("</svg>")
    path.write_text("\n".join(out))


def summary(rows, blob_size_bytes):
    if not rows:
        return ["no interval completed"]
    n = max(1, len(rows) // 6)
    first, last = rows[:n], rows[-n:]
    avg = lambda rs, k: sum(r[k] for r in rs) / len(rs)
    ratio = avg(last, "ops_per_s") / max(avg(first, "ops_per_s"), 1e-9)
    worst_disk = max(((r.get("disk_bytes") or 0) - 2 * r["live_bytes"] - blob_size_bytes)
                     for r in rows)
    rss = [r.get("server_anon_bytes") or 0 for r in rows]
    return [
        f"- ops/s, last sixth against first sixth: {ratio:.2f} (target >= 0.8)",
        f"- disk use above 2x live + one blob_size, worst interval: {worst_disk / 1e6:.1f} MB "
        "(target <= 0)",
        f"- node anonymous memory first / max / last: {mb(rss[0])} / {mb(max(rss))} / "
        f"{mb(rss[-1])} MB (target: flat)",
    ]


def error_lines(final):
    """The run's failed requests by operation and errno, from dnet_bench's final report.

    -2 (ENOENT) on READ and DEL is expected: with 5% removes, a share of the keys is absent
    at any time and reads of them answer "not found". Any other errno is a real failure."""
    try:
        report = json.loads("".join(final))
    except ValueError:
        return ["- errors: dnet_bench gave no final report"]
    per_op = ", ".join(f"{o['op']} {o['errors']} of {o['errors'] + o['ok']}"
                       for o in report.get("per_op", []))
    by_errno = report.get("errors_by_errno") or {}
    errnos = ", ".join(f"{e}: {n}" for e, n in sorted(by_errno.items(), key=lambda x: int(x[0])))
    other = sum(n for e, n in by_errno.items() if int(e) != -2)
    return [f"- errors by operation: {per_op or 'none'}",
            f"- errors by errno: {errnos or 'none'}; other than -2 (ENOENT, a read or remove "
            f"of a removed key, expected): {other}"]


def size_bytes(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--interval-s", type=float, default=10.0)
    ap.add_argument("--out", default=str(REPO / "target" / "soak"))
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    ap.add_argument("--blob-size", default="16M")
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--pipeline", type=int, default=4)
    args = ap.parse_args()

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bins = pathlib.Path(args.bin_dir)
    root = pathlib.Path(tempfile.mkdtemp(prefix="elliptics-soak-"))
    for d in ("history", "data"):
        (root / d).mkdir()
    port, monitor_port = free_port(), free_port()
    (root / "ioserv.json").write_text(json.dumps(node_config(root, port, monitor_port,
                                                             args.blob_size)))
    node = subprocess.Popen([str(bins / "dnet_ioserv"), "-c", str(root / "ioserv.json")],
                            stdout=subprocess.DEVNULL, stderr=open(out / "node.stderr", "w"))
    rows = []
    try:
        wait_listening(port, node)
        bench = subprocess.Popen(
            [str(bins / "dnet_bench"), "-r", f"127.0.0.1:{port}:2", "-g", "1",
             "--mix", "read=80,write=15,remove=5", "--dist", "zipf",
             "--size", "100", "--size-max", "65536", "-k", str(args.keys), "--fill",
             "-c", str(args.connections), "-P", str(args.pipeline),
             "-t", str(args.minutes * 60), "-w", "0",
             "--interval-s", str(args.interval_s), "--server-pid", str(node.pid),
             "--data-dir", str(root / "data"), "--json"],
            stdout=subprocess.PIPE, text=True)
        final = []
        with open(out / "soak.jsonl", "w") as jsonl:
            for text in bench.stdout:
                if not text.startswith('{"t_s"'):
                    final.append(text)
                    continue
                row = json.loads(text)
                row["defrag"] = defrag_state(monitor_port)
                rows.append(row)
                jsonl.write(json.dumps(row) + "\n")
                jsonl.flush()
                print(f"{row['t_s']:7.0f} s  {row['ops_per_s']:10.0f} ops/s  "
                      f"p99 {row['p99_us'] / 1000:7.2f} ms  anon {mb(row.get('server_anon_bytes'))} MB"
                      f"  disk {mb(row.get('disk_bytes'))} MB  live {mb(row['live_bytes'])} MB"
                      f"  files {row.get('files')}", flush=True)
        if bench.wait() != 0:
            sys.exit(f"dnet_bench failed with {bench.returncode}")
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
        shutil.rmtree(root, ignore_errors=True)

    lines = ["| t (s) | ops/s (ok) | p50 (ms) | p99 (ms) | failed in interval | anon (MB) | disk (MB) | live (MB) "
             "| files | defrag |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['t_s']:.0f} | {r['ops_per_s']:.0f} | {r['p50_us'] / 1000:.2f} | "
                     f"{r['p99_us'] / 1000:.2f} | {r['errors']} | {mb(r.get('server_anon_bytes'))} | "
                     f"{mb(r.get('disk_bytes'))} | {mb(r['live_bytes'])} | {r.get('files')} | "
                     f"{json.dumps(r.get('defrag')) if r.get('defrag') else ''} |")
    report = ["# Soak", "", f"{args.minutes} min, blob_size {args.blob_size}, {args.keys} keys, "
              f"{args.connections} connections x {args.pipeline} in flight, zipf, "
              "read 80 / write 15 / remove 5, values 100 B - 64 KiB", ""]
    report += summary(rows, size_bytes(args.blob_size)) + error_lines(final) + [""] + lines
    (out / "soak.md").write_text("\n".join(report) + "\n")
    svg_plot(rows, out / "soak.svg")
    print("\n".join(summary(rows, size_bytes(args.blob_size))))
    print(f"table: {out / 'soak.md'}  plot: {out / 'soak.svg'}")


if __name__ == "__main__":
    main()
