#!/usr/bin/env bash
# RAM per key held in sealed files, start-up time and reads, and sealed against hot read
# throughput, on a node holding KEYS keys of 16 bytes (default 10 000 000) in sealed files.
#
#   [RIB=records_in_blob] scripts/sealed-keys.sh [KEYS] [OUT_DIR]
#
# Fills the data directory straight through the blob log (examples/blob_fill.rs), starts a
# one-shard node on it (CPU 1) and reports: anonymous memory (RssAnon) of the node over the
# same node on an empty directory, per key; start-up time and the bytes it read from disk
# (/proc/PID/io, the files' page cache dropped first with fadvise); then `dnet_bench` 16 B
# READs (CPU 0, 50 connections, 1 in flight) of keys in sealed files against keys of the
# open file, alternating, three rounds each.
set -euo pipefail
KEYS=${1:-10000000}
OUT=${2:-$(mktemp -d /tmp/sealed-keys.XXXXXX)}
PORT=${PORT:-1041}
RIB=${RIB:-1000000}
HOT=$((RIB - 1))

cd "$(dirname "$0")/.."
cargo build --release --example blob_fill --bin dnet_ioserv --bin dnet_bench >&2
BIN=target/release
mkdir -p "$OUT"
config() {
    cat >"$OUT/$1.json" <<JSON
{
  "logger": {"level": "warning", "frontends": [{"formatter": {"type": "string", "pattern": "%(message)s"},
    "sink": {"type": "files", "path": "$OUT/$1.log", "autoflush": true}}]},
  "options": {"join": false, "flags": 4, "address": ["localhost:$PORT:2-0"], "wait_timeout": 60,
    "check_timeout": 60, "auth_cookie": "elliptics", "shard_count": 1},
  "backends": [{"backend_id": 1, "type": "blob", "group": 1, "history": "$OUT/$1-history",
    "data": "$OUT/$1/data", "sync": 0, "blob_size": "100G", "records_in_blob": $RIB}]
}
JSON
    mkdir -p "$OUT/$1" "$OUT/$1-history"
}
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
read_bytes() { awk '/^read_bytes/ {print $2}' "/proc/$1/io"; }
drop_cache() {
    python3 - "$1" <<'PY'
import os, sys
for n in os.listdir(sys.argv[1]):
    fd = os.open(os.path.join(sys.argv[1], n), os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
}
# Start the node of config $1; prints "pid start_seconds" once it serves key $2.
start() {
    local t0 pid
    t0=$(date +%s.%N)
    taskset -c 1 $BIN/dnet_ioserv -c "$OUT/$1.json" &
    pid=$!
    until $BIN/dnet_bench -r localhost:$PORT:2 --op read -k 1 --key-prefix "$2" -c 1 -n 1 -w 0 \
        >/dev/null 2>&1; do
        sleep 0.05
    done
    echo "$pid $(echo "$(date +%s.%N) - $t0" | bc)"
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

config empty
read -r pid _ < <(start empty none-)
sleep 1
EMPTY_KB=$(anon_kb "$pid")
stop "$pid"

config node
echo "filling $KEYS sealed keys" >&2
$BIN/examples/blob_fill --data "$OUT/node/data" --count "$KEYS" --size 16 --prefix sk- \
    --records-in-blob $RIB --seal-last >&2
drop_cache "$OUT/node"
read -r pid secs < <(start node sk-)
sleep 1
SEALED_KB=$(anon_kb "$pid")
READ=$(read_bytes "$pid")
DATA=$(du -cb "$OUT"/node/data-0.[0-9]* | tail -1 | cut -f1)
INDEX=$(du -cb "$OUT"/node/data-0.*.index.sorted | tail -1 | cut -f1)
stop "$pid"
echo "start: ${secs}s for $KEYS keys; read ${READ} bytes from disk (sorted indexes ${INDEX}, data files ${DATA})"
echo "RssAnon: empty node ${EMPTY_KB} KiB, with $KEYS sealed keys ${SEALED_KB} KiB:" \
    "$(echo "scale=1; ($SEALED_KB - $EMPTY_KB) * 1024 / $KEYS" | bc) bytes per key"

echo "filling $HOT keys of the open file" >&2
$BIN/examples/blob_fill --data "$OUT/node/data" --count $HOT --size 16 --prefix hk- \
    --records-in-blob $RIB >&2
read -r pid secs < <(start node hk-)
# The comparison is of cached data: read every file into the page cache first.
cat "$OUT"/node/data-0.* >/dev/null
SEALED_SPACE=$((KEYS < 4000000 ? KEYS : 4000000))
bench() {
    taskset -c 0 $BIN/dnet_bench -r localhost:$PORT:2 --op read -s 16 -c 50 -P 1 -t 5 -w 1 \
        --server-pid "$pid" -k "$1" --key-prefix "$2" --json |
        python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["errors"] == 0, r["errors_by_errno"]; print(round(r["ops_per_s"]))'
}
bench $HOT hk- >/dev/null
bench $SEALED_SPACE sk- >/dev/null
for round in 1 2 3; do
    h=$(bench $HOT hk-)
    s=$(bench $SEALED_SPACE sk-)
    echo "round $round: hot keys ${h} reads/s, sealed keys ${s} reads/s, ratio $(echo "scale=3; $s / $h" | bc)"
done
stop "$pid"
echo "output in $OUT"
