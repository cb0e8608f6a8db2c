#!/usr/bin/env bash
# Cold random reads: the node against the device. A data set several times larger than the
# page cache the node may use (the node runs in a memory cgroup), page cache dropped before
# each round; the node's random 4 KiB READs (dnet_bench, uniform keys) against the same
# random 4 KiB reads done with O_DIRECT at the same queue depth on the node's own data
# files (fio, io_uring engine), alternating, medians and their ratio.
#   scripts/cold-reads.sh [KEYS] [NODE_MEMORY] [QUEUE_DEPTH] [SECONDS] [ROUNDS]
#   scripts/cold-reads.sh 1000000 512M 32 15 3
# Needs root (cgroup, drop_caches); installs fio from the distribution if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${1:-1000000}
NODE_MEMORY=${2:-512M}
QD=${3:-32}
SECONDS_PER_RUN=${4:-15}
ROUNDS=${5:-3}

command -v fio >/dev/null || { apt-get update -qq && apt-get install -y -qq fio >/dev/null; }
# BIN=dir uses binaries already built there.
if [ -z "${BIN:-}" ]; then
  cargo build --release --bins --quiet
  BIN=$PWD/target/release
fi
WORK=$(mktemp -d "$PWD/target/cold-reads.XXXXXX")
CG=/sys/fs/cgroup/memory/elliptics-cold-$$
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NODE_PID=
cleanup() {
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null || true
  rmdir "$CG" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/history" "$WORK/data"
cat >"$WORK/ioserv.json" <<JSON
{"logger": {"level": "info", "frontends": [{"formatter": {"type": "string"}, "sink": {"type": "files", "path": "$WORK/ioserv.log", "autoflush": true}}]},
 "options": {"join": true, "flags": 4, "remote": [], "address": ["127.0.0.1:$PORT:2-0"],
   "wait_timeout": 30, "check_timeout": 60, "io_thread_num": 2, "nonblocking_io_thread_num": 2,
   "net_thread_num": 1, "auth_cookie": "cold"},
 "backends": [{"backend_id": 1, "type": "blob", "group": 1, "history": "$WORK/history",
   "data": "$WORK/data/data", "sync": 30, "blob_size": "1G", "records_in_blob": 10000000}]}
JSON

mkdir "$CG"
case "$NODE_MEMORY" in
  *G) LIMIT=$(( ${NODE_MEMORY%G} << 30 )) ;;
  *M) LIMIT=$(( ${NODE_MEMORY%M} << 20 )) ;;
  *) LIMIT=$NODE_MEMORY ;;
esac
echo "$LIMIT" >"$CG/memory.limit_in_bytes"
sh -c "echo \$\$ > $CG/cgroup.procs; exec $BIN/dnet_ioserv -c $WORK/ioserv.json" 2>"$WORK/stderr" &
NODE_PID=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.1
done

PIPELINE=$(( QD > 16 ? QD / 16 : 1 ))
CONNS=$(( QD / PIPELINE ))
echo "filling $KEYS keys of 4 KiB ($(( KEYS * 4 / 1024 )) MiB; node memory limit $NODE_MEMORY)"
"$BIN/dnet_bench" -r "127.0.0.1:$PORT:2" -g 1 --op read --fill -k "$KEYS" -s 4096 \
  -c 16 -P 16 -t 0.1 -w 0 --json >/dev/null
# The fill wrote 4 KiB values (the fill writes --size bytes per key).
sync
FILES=$(find "$WORK/data" -name 'data-*' ! -name '*.index*' -size +1M | sort | paste -sd:)
echo "data files: $(du -sh "$WORK/data" | cut -f1); queue depth $QD = $CONNS connections x $PIPELINE"

# The device under the data files, for the bytes each round reads from it (field 3 of
# /sys/block/*/stat: 512-byte sectors read).
DEV_NAME=$(basename "$(df --output=source "$WORK/data" | tail -1)")
sectors_read() { awk '{print $3}' "/sys/class/block/$DEV_NAME/stat" 2>/dev/null || echo 0; }
node_round() {
  sync; echo 3 >/proc/sys/vm/drop_caches
  local before; before=$(sectors_read)
  "$BIN/dnet_bench" -r "127.0.0.1:$PORT:2" -g 1 --op read -k "$KEYS" -c "$CONNS" -P "$PIPELINE" \
    -t "$SECONDS_PER_RUN" -w 1 --seed "$RANDOM" --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f %.0f %d %d" % (r["ops_per_s"], r["p99_us"], r["errors"], r["ok"]))' |
    { read -r ops p99 errors ok; echo "$ops $p99 $errors $(( ($(sectors_read) - before) * 512 / (ok > 0 ? ok : 1) ))"; }
}
fio_round() {
  sync; echo 3 >/proc/sys/vm/drop_caches
  fio --name=cold --filename="$FILES" --rw=randread --bs=4k --direct=1 --ioengine=io_uring \
    --iodepth="$QD" --runtime="$SECONDS_PER_RUN" --time_based --ramp_time=1 --readonly \
    --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["read"]; print("%.0f %.0f 0" % (j["iops"], j["clat_ns"]["percentile"]["99.000000"] / 1000))'
}

NODE=(); DEV=()
for r in $(seq "$ROUNDS"); do
  n=$(node_round); d=$(fio_round)
  echo "round $r: node ${n%% *} reads/s (p99 $(echo "$n" | cut -d' ' -f2) us, errors $(echo "$n" | cut -d' ' -f3), $(echo "$n" | cut -d' ' -f4) device bytes per read, warm-up included); O_DIRECT ${d%% *} reads/s (p99 $(echo "$d" | cut -d' ' -f2) us); load $(cut -d' ' -f1 /proc/loadavg)"
  NODE+=("${n%% *}"); DEV+=("${d%% *}")
done
python3 - "${NODE[*]}" "${DEV[*]}" <<'PY'
import statistics, sys
node = [float(x) for x in sys.argv[1].split()]
dev = [float(x) for x in sys.argv[2].split()]
n, d = statistics.median(node), statistics.median(dev)
print(f"median: node {n:.0f} reads/s, O_DIRECT {d:.0f} reads/s, ratio {n / d:.2f} (target >= 0.8)")
PY
