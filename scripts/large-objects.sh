#!/usr/bin/env bash
# Large values end to end: one node whose blob_size (256 MiB) is smaller than the value,
# `dnet_ioclient -W` of a 1 GiB file and `-D` back to a file, against a plain loopback TCP
# copy of the same bytes (examples/loopback_copy.rs: file -> socket -> file) in the same
# run, alternating; seconds, MiB/s, the ratio to the copy, and a byte comparison (cmp).
#   scripts/large-objects.sh [--rounds N] [--size-mib N] [--big [MIB]] [--p99 [SECONDS]]
#   --big   also a round trip of a 4 GiB (or MIB) value, the node's and the client's
#           RssAnon sampled every 100 ms from /proc/PID/status; reports the largest growth
#           of each
#   --p99   16 clients writing 256 MiB values with -W in a loop while dnet_bench does
#           100 B READs on 50 other connections for SECONDS (default 20); the READs' p99
# LARGE_NODE_OPTIONS: extra "options" members of the node's config, JSON
# (default: "value_bytes_max": "64G", the node's default made explicit). BIN=dir uses binaries already built there.
# Temporary files live under target/ and are removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=2
SIZE_MIB=1024
BIG=0
BIG_MIB=4096
P99_S=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --size-mib) SIZE_MIB=$2; shift ;;
    --big)
      BIG=1
      if [[ "${2:-}" =~ ^[0-9]+$ ]]; then BIG_MIB=$2; shift; fi ;;
    --p99)
      P99_S=20
      if [[ "${2:-}" =~ ^[0-9]+$ ]]; then P99_S=$2; shift; fi ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
NODE_OPTIONS_JSON=${LARGE_NODE_OPTIONS:-'"value_bytes_max": "64G"'}

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin dnet_ioserv --bin dnet_ioclient --bin dnet_bench \
    --example loopback_copy
  BIN=$PWD/target/release
fi
COPY=${COPY:-$BIN/examples/loopback_copy}
mkdir -p target
WORK=$(mktemp -d "$PWD/target/large-objects.XXXXXX")
NODE_PID=
BACKGROUND=()
cleanup() {
  for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$NODE_PID" ]; then kill "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  local port
  for port in $(shuf -i 20000-60000 -n 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null || { echo "$port"; return; }
  done
  echo "no free port" >&2; exit 1
}
PORT=$(free_port)
REMOTE=127.0.0.1:$PORT:2

mkdir -p "$WORK/history" "$WORK/data"
cat >"$WORK/ioserv.json" <<JSON
{"logger": {"level": "info", "frontends": [{"formatter": {"type": "string"}, "sink": {"type": "files", "path": "$WORK/ioserv.log", "autoflush": true}}]},
 "options": {"join": true, "flags": 4, "remote": [], "address": ["$REMOTE-0"],
   "wait_timeout": 120, "check_timeout": 120, "io_thread_num": 2, "nonblocking_io_thread_num": 2,
   "net_thread_num": 1, "auth_cookie": "large", $NODE_OPTIONS_JSON},
 "backends": [{"backend_id": 1, "type": "blob", "group": 1, "history": "$WORK/history",
   "data": "$WORK/data/data", "sync": -1, "blob_size": "256M", "records_in_blob": 1000000}]}
JSON
"$BIN/dnet_ioserv" -c "$WORK/ioserv.json" 2>"$WORK/stderr" &
NODE_PID=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  kill -0 "$NODE_PID" 2>/dev/null || { cat "$WORK/stderr" >&2; exit 1; }
  sleep 0.1
done

ioclient() { "$BIN/dnet_ioclient" -r "$REMOTE" -g 1 -w 300 "$@"; }
now() { date +%s.%N; }
rss_anon_kib() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Largest RssAnon (KiB) of PID, sampled every 100 ms until it exits or STOP_FILE appears.
sample_rss() {
  local pid=$1 out=$2 stop=$3 max=0 v
  while kill -0 "$pid" 2>/dev/null && [ ! -e "$stop" ]; do
    v=$(rss_anon_kib "$pid"); [ "${v:-0}" -gt "$max" ] && max=$v
    sleep 0.1
  done
  echo "$max" >"$out"
}
mib_s() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f", b / 1048576 / s}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

make_value() { head -c "$(( $2 << 20 ))" /dev/urandom >"$1"; }

# One round: the loopback copy, -W, -D; prints a table row per transfer.
round() {
  local value=$1 bytes=$2 t0 t1 copy_s w_s d_s same
  copy_s=$("$COPY" "$value" "$WORK/copy")
  rm -f "$WORK/copy"
  t0=$(now); ioclient -W "$value" >/dev/null; t1=$(now); w_s=$(secs "$t0" "$t1")
  t0=$(now); ioclient -D "$value" >"$WORK/back"; t1=$(now); d_s=$(secs "$t0" "$t1")
  same=differ; cmp -s "$value" "$WORK/back" && same=identical
  rm -f "$WORK/back"
  printf '| loopback copy | %6.2f | %6s | 1.00 | |\n' "$copy_s" "$(mib_s "$bytes" "$copy_s")"
  printf '| -W            | %6.2f | %6s | %s | |\n' "$w_s" "$(mib_s "$bytes" "$w_s")" "$(ratio "$w_s" "$copy_s")"
  printf '| -D            | %6.2f | %6s | %s | %s |\n' "$d_s" "$(mib_s "$bytes" "$d_s")" "$(ratio "$d_s" "$copy_s")" "$same"
}

echo "node: $REMOTE, blob_size 256M, options: $NODE_OPTIONS_JSON"
make_value "$WORK/value" "$SIZE_MIB"
BYTES=$(( SIZE_MIB << 20 ))
echo
echo "$SIZE_MIB MiB value, $ROUNDS alternating rounds (ratio: the transfer's speed over the loopback copy's)"
echo '| transfer | seconds | MiB/s | ratio | bytes back |'
echo '|---|---|---|---|---|'
for _ in $(seq "$ROUNDS"); do round "$WORK/value" "$BYTES"; done
rm -f "$WORK/value"

# One transfer in the background with both processes' RssAnon sampled; prints a row.
sampled() {
  local what=$1; shift
  local node_before stop=$WORK/stop t0 t1 cpid npid
  node_before=$(rss_anon_kib "$NODE_PID")
  rm -f "$stop"
  t0=$(now)
  "$@" &
  cpid=$!
  sample_rss "$cpid" "$WORK/client.max" "$stop" &
  BACKGROUND+=($!)
  sample_rss "$NODE_PID" "$WORK/node.max" "$stop" &
  npid=$!
  BACKGROUND+=("$npid")
  local status=0
  wait "$cpid" || status=$?
  t1=$(now)
  touch "$stop"
  wait "$npid" 2>/dev/null || true
  sleep 0.2
  local outcome=ok
  [ "$status" = 0 ] || outcome="failed ($status): $(tail -c 300 "$WORK/client.err")"
  printf '| %s | %6.2f | %d | %d | %s |\n' "$what" "$(secs "$t0" "$t1")" \
    $(( ($(cat "$WORK/node.max") - node_before) / 1024 )) $(( $(cat "$WORK/client.max") / 1024 )) \
    "$outcome"
}

if [ "$BIG" = 1 ]; then
  make_value "$WORK/big" "$BIG_MIB"
  echo
  echo "$BIG_MIB MiB round trip, RssAnon sampled every 100 ms"
  echo '| transfer | seconds | node growth MiB | client peak MiB | outcome |'
  echo '|---|---|---|---|---|'
  sampled "-W" sh -c "exec '$BIN/dnet_ioclient' -r $REMOTE -g 1 -w 300 -W '$WORK/big' 2>'$WORK/client.err'"
  sampled "-D" sh -c "exec '$BIN/dnet_ioclient' -r $REMOTE -g 1 -w 300 -D '$WORK/big' >'$WORK/big.back' 2>'$WORK/client.err'"
  if [ ! -s "$WORK/big.back" ]; then echo "bytes back: none"
  elif cmp -s "$WORK/big" "$WORK/big.back"; then echo "bytes back: identical"
  else echo "bytes back: DIFFER"; fi
  rm -f "$WORK/big" "$WORK/big.back"
fi

if [ "$P99_S" -gt 0 ]; then
  make_value "$WORK/v256" 256
  # The READ connections are made and their keys written first (a node busy with large
  # frames may be slow to accept); the writers start during the bench's warm-up.
  "$BIN/dnet_bench" -r "$REMOTE" -g 1 --op read -s 100 -k 1000 -c 50 --fill -w 4 \
    -t "$P99_S" --json >"$WORK/bench.json" 2>"$WORK/bench.err" &
  bench=$!
  BACKGROUND+=("$bench")
  sleep 2
  stop_at=$(( $(date +%s) + P99_S + 2 ))
  writers=()
  for i in $(seq 16); do
    ( while [ "$(date +%s)" -lt "$stop_at" ]; do
        ioclient -I "$(printf '%0128x' "$i")" -W "$WORK/v256" >/dev/null 2>&1 || true
      done ) &
    writers+=($!)
    BACKGROUND+=($!)
  done
  wait "$bench" || { cat "$WORK/bench.err" >&2; exit 1; }
  for pid in "${writers[@]}"; do wait "$pid" 2>/dev/null || true; done
  field() { grep -o "\"$1\": *[0-9.]*" "$WORK/bench.json" | head -1 | awk -F': *' '{printf "%.0f", $2}'; }
  p99=$(field p99_us)
  ops=$(field ops_per_s)
  errs=$(field errors)
  echo
  echo "16 clients writing 256 MiB values (-W) + 50 connections of 100 B READs for ${P99_S} s"
  echo "| READ p99 us | READ ops/s | READ errors |"
  echo "|---|---|---|"
  echo "| $p99 | $ops | $errs |"
fi
