#!/usr/bin/env bash
# Node CPU per `GET /metrics` scrape: start a release node with a monitor port (2 shards,
# one backend), put some traffic on it, then scrape /metrics N times from one Python loop
# and read the node's CPU time (utime + stime from /proc/<pid>/stat) before and after.
# The same wall time without scraping is measured after and subtracted; `/list` (a tiny
# answer) alternates with it to show what the HTTP exchange alone costs.
# Usage: scripts/metrics-scrape-cost.sh [scrapes]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRAPES="${1:-2000}"
cargo build --release --bin dnet_ioserv --bin dnet_bench >/dev/null
DIR="$(mktemp -d)"
trap 'kill "$NODE" 2>/dev/null || true; rm -rf "$DIR"' EXIT
PORT=$((20000 + RANDOM % 10000)); HTTP=$((PORT + 1))
mkdir -p "$DIR/history" "$DIR/data"
cat > "$DIR/ioserv.json" <<JSON
{"logger": {"level": "error", "frontends": [{"formatter": {"type": "string", "pattern": "%(message)s"},
   "sink": {"type": "files", "path": "$DIR/ioserv.log", "autoflush": true}}]},
 "options": {"join": true, "flags": 4, "address": ["127.0.0.1:$PORT:2-0"], "wait_timeout": 5,
   "check_timeout": 20, "io_thread_num": 2, "nonblocking_io_thread_num": 2, "net_thread_num": 1,
   "auth_cookie": "scrape", "shard_count": 2, "monitor": {"port": $HTTP}},
 "backends": [{"backend_id": 1, "type": "blob", "group": 1, "history": "$DIR/history",
   "data": "$DIR/data/data", "sync": 1, "blob_flags": "158", "blob_size": "100M"}]}
JSON
target/release/dnet_ioserv -c "$DIR/ioserv.json" & NODE=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP/list" >/dev/null && break; sleep 0.1; done
target/release/dnet_bench -r "127.0.0.1:$PORT:2" --mix read=50,write=50 -k 10000 -c 8 -t 2 >/dev/null
cpu_ticks() { awk '{print $14 + $15}' "/proc/$NODE/stat"; }
HZ=$(getconf CLK_TCK)
python3 - "$HTTP" "$SCRAPES" "$NODE" "$HZ" <<'PY'
import sys, time, urllib.request
http, n, pid, hz = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def cpu_s():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / hz
def cost(path):
    url = f"http://127.0.0.1:{http}{path}"
    size = len(urllib.request.urlopen(url).read())
    t0, c0 = time.monotonic(), cpu_s()
    for _ in range(n):
        urllib.request.urlopen(url).read()
    wall, busy = time.monotonic() - t0, cpu_s() - c0
    c1 = cpu_s(); time.sleep(wall); idle = cpu_s() - c1
    print(f"{path}: {n} requests, response {size} bytes, wall {wall:.2f} s, node CPU "
          f"{busy:.3f} s (idle for as long: {idle:.3f} s): {(busy - idle) / n * 1e6:.0f} us each")
# /list is the HTTP round trip alone (accept, read, write, close) for comparison.
for path in ("/metrics", "/list", "/metrics", "/list"):
    cost(path)
PY
