#!/usr/bin/env bash
# Throughput with small data files (many sealed files, rewrites of sealed keys) against
# large ones: two one-shard nodes (CPU 1), blob_size SMALL and LARGE (default 64M and 10G),
# sync 30, records_in_blob 100 000; dnet_bench (CPU 0, 50 connections, 20 000 keys)
# writes then reads 100 B and 4 KiB values with 1 and 16 in flight, alternating the nodes
# for ROUNDS rounds, and prints the median ratio small/large per row.
#
#   [SMALL=64M] [LARGE=10G] [ROUNDS=3] [SECS=4] scripts/rotation.sh [OUT_DIR]
set -euo pipefail
OUT=${1:-$(mktemp -d /tmp/rotation.XXXXXX)}
SMALL=${SMALL:-64M}
LARGE=${LARGE:-10G}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-4}
cd "$(dirname "$0")/.."
cargo build --release --bin dnet_ioserv --bin dnet_bench >&2
BIN=target/release
mkdir -p "$OUT"
start() { # name blob_size port
    mkdir -p "$OUT/$1"
    cat >"$OUT/$1.json" <<JSON
{
  "logger": {"level": "warning", "frontends": [{"formatter": {"type": "string", "pattern": "%(message)s"},
    "sink": {"type": "files", "path": "$OUT/$1.log", "autoflush": true}}]},
  "options": {"join": false, "flags": 4, "address": ["localhost:$3:2-0"], "wait_timeout": 60,
    "check_timeout": 60, "auth_cookie": "elliptics", "shard_count": 1},
  "backends": [{"backend_id": 1, "type": "blob", "group": 1, "history": "$OUT/$1",
    "data": "$OUT/$1/data", "sync": 30, "blob_size": "$2", "records_in_blob": 100000}]
}
JSON
    taskset -c 1 $BIN/dnet_ioserv -c "$OUT/$1.json" >"$OUT/$1.stdout" 2>&1 &
    echo $!
}
PS=${PORT_SMALL:-1051}
PL=${PORT_LARGE:-1052}
small_pid=$(start small "$SMALL" $PS)
large_pid=$(start large "$LARGE" $PL)
trap 'kill $small_pid $large_pid 2>/dev/null || true' EXIT
sleep 1
bench() { # port op size inflight
    taskset -c 0 $BIN/dnet_bench -r localhost:$1:2 --op "$2" -s "$3" -c 50 -P "$4" -t "$SECS" \
        -w 1 -k 20000 --json |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["ops_per_s"]))'
}
for size in 100 4096; do
    for inflight in 1 16; do
        for op in write read; do
            ratios=()
            for round in $(seq "$ROUNDS"); do
                s=$(bench $PS $op $size $inflight)
                l=$(bench $PL $op $size $inflight)
                ratios+=("$(echo "scale=3; $s / $l" | bc)")
                echo "size $size, $inflight in flight, $op, round $round: $SMALL ${s}/s, $LARGE ${l}/s" >&2
            done
            med=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
            echo "| $size B, $inflight | $op | ${ratios[*]} | median $med |"
        done
    done
done
echo "data files: $(ls "$OUT"/small/ | grep -c 'data-0\.[0-9]*$') small, $(ls "$OUT"/large/ | grep -c 'data-0\.[0-9]*$') large" >&2
