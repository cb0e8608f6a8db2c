#!/usr/bin/env bash
# dnet_recovery dc throughput: two nodes on loopback (group 1 on 127.0.0.1, group 2 on
# 127.0.0.2), group 1 filled once with dnet_bench, then for each round and each build
# directory: a fresh copy of the filled group 1, an empty group 2, and a timed
# `dnet_recovery dc -g 1,2`. Prints keys/s, MiB/s and, for each dc run, the ratio to a plain
# loopback socket copy of the same number of bytes measured just before it (and that copy's
# CPU seconds), and the CPU seconds the run cost (both nodes and dnet_recovery), which a
# busy machine disturbs less than the wall time, split: source node, destination node,
# dnet_recovery.
# The backends' `sync` is 0 by default (every copy is on disk before it is acknowledged);
# -S sets another (e.g. 30: acknowledged from the page cache, synced every 30 s), which is
# closer to what the plain socket copy does.
#
#   scripts/recovery-bench.sh [-k KEYS] [-s VALUE_BYTES] [-r ROUNDS] [-n IN_FLIGHT]
#                             [-b BATCH] [-S SYNC] [BIN_DIR ...]
#
# BIN_DIR holds dnet_ioserv, dnet_recovery and dnet_bench (default target/release). Given
# several, the rounds alternate between them so that a busy machine slows each alike.
# Examples: the 100 000 x 16 B run and the 10 000 x 64 KiB run:
#   scripts/recovery-bench.sh -k 100000 -s 16
#   scripts/recovery-bench.sh -k 10000 -s 65536
set -euo pipefail
keys=100000
size=16
rounds=3
in_flight=8
batch=""
sync=0
while getopts "k:s:r:n:b:S:" opt; do
  case "$opt" in
    k) keys="$OPTARG" ;;
    s) size="$OPTARG" ;;
    r) rounds="$OPTARG" ;;
    n) in_flight="$OPTARG" ;;
    b) batch="$OPTARG" ;;
    S) sync="$OPTARG" ;;
    *) sed -n 2,21p "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
root="$(cd "$(dirname "$0")/.." && pwd)"
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$root/target/release")
for b in "${bins[@]}"; do
  for tool in dnet_ioserv dnet_recovery dnet_bench; do
    [ -x "$b/$tool" ] || { echo "$b/$tool: missing; build with cargo build --release" >&2; exit 2; }
  done
done

work="$(mktemp -d "${TMPDIR:-/tmp}/recovery-bench.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

# config DIR HOST GROUP [REMOTE]: an ioserv.json like the test harness's.
config() {
  local dir="$1" host="$2" group="$3" remote="${4:-}"
  mkdir -p "$dir/history" "$dir/eblob"
  cat >"$dir/ioserv.json" <<EOF
{"logger": {"level": "error", "frontends": [{"sink": {"type": "files", "path": "$dir/ioserv.log", "autoflush": true}}]},
 "options": {"join": true, "flags": 4, "remote": [${remote:+\"$remote\"}], "address": ["$host:$port:2-0"],
             "wait_timeout": 60, "check_timeout": 5, "auth_cookie": "bench", "shard_count": 2},
 "backends": [{"backend_id": 1, "type": "blob", "group": $group, "history": "$dir/history",
               "data": "$dir/eblob/data", "sync": $sync, "blob_size": "1G"}]}
EOF
}

# start BIN DIR HOST: run a node and wait until it accepts.
start() {
  "$1/dnet_ioserv" -c "$2/ioserv.json" >"$2/stderr" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do
    python3 -c "import socket; socket.create_connection(('$3', $port), 0.2)" 2>/dev/null && return
    sleep 0.05
  done
  echo "node on $3 did not start:" >&2; cat "$2/stderr" >&2; exit 1
}

# cpu_ticks PID: user + system clock ticks the process used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

stop_all() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
}

# loopback_mib_s BYTES: one plain TCP copy of BYTES over 127.0.0.1 in 64 KiB writes; prints
# its MiB/s and the CPU seconds it took (both ends).
loopback_mib_s() {
  python3 - "$1" <<'EOF'
import resource, socket, sys, threading, time
total = int(sys.argv[1])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def sink():
    c, _ = srv.accept(); buf = bytearray(1 << 16); got = 0
    while got < total:
        n = c.recv_into(buf)
        if n == 0: break
        got += n
t = threading.Thread(target=sink); t.start()
chunk = b"\x07" * (1 << 16)
start = time.perf_counter()
cpu0 = resource.getrusage(resource.RUSAGE_SELF)
s = socket.create_connection(srv.getsockname()); sent = 0
while sent < total:
    s.sendall(chunk); sent += len(chunk)
t.join()
secs = time.perf_counter() - start
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
print(f"{total / secs / 2**20:.0f} {cpu:.2f}")
EOF
}

echo "machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')"
echo "fill: $keys keys of $size bytes into group 1, sync $sync ($(date -u +%T))"
config "$work/template" 127.0.0.1 1
start "${bins[0]}" "$work/template" 127.0.0.1
"${bins[0]}/dnet_bench" -r "127.0.0.1:$port:2" -g 1 --op lookup --fill -k "$keys" -s "$size" \
  --key-prefix "rb-" -c 4 -P 32 -n 1 -t 1 -w 0 >"$work/fill.txt"
grep -i "fill" "$work/fill.txt" || true
stop_all

bytes=$((keys * size))
printf '%-5s %-28s %8s %9s %8s %11s %6s %8s %12s %s\n' round build seconds keys/s MiB/s socketMiB/s \
  ratio cpu_s keys/cpu_s "cpu_s src/dst/dc socket_cpu_s"
for round in $(seq "$rounds"); do
  for b in "${bins[@]}"; do
    rm -rf "$work/g1" "$work/g2" "$work/state"
    cp -a "$work/template" "$work/g1"
    sed -i "s#$work/template#$work/g1#g" "$work/g1/ioserv.json"
    config "$work/g2" 127.0.0.2 2 "127.0.0.1:$port:2"
    mkdir -p "$work/state"
    start "$b" "$work/g1" 127.0.0.1
    start "$b" "$work/g2" 127.0.0.2
    sleep 0.5
    read -r socket socket_cpu <<<"$(loopback_mib_s "$bytes")"
    src0=$(cpu_ticks "${pids[0]}")
    dst0=$(cpu_ticks "${pids[1]}")
    t0="$(date +%s.%N)"
    /usr/bin/time -f "%U %S" -o "$work/dc.cpu" "$b/dnet_recovery" dc -r "127.0.0.1:$port:2" -g 1,2 -n "$in_flight" ${batch:+-b "$batch"} \
      -w 120 -D "$work/state" >"$work/dc.txt" 2>/dev/null || true
    t1="$(date +%s.%N)"
    src=$(( $(cpu_ticks "${pids[0]}") - src0 ))
    dst=$(( $(cpu_ticks "${pids[1]}") - dst0 ))
    split="$(awk -v s=$src -v d=$dst -v hz="$(getconf CLK_TCK)" \
      '{printf "%.2f %.2f %.2f %.2f", $1 + $2 + (s + d) / hz, s / hz, d / hz, $1 + $2}' "$work/dc.cpu")"
    stop_all
    copied="$(sed -n 's/.*copied: \([0-9]*\).*/\1/p' "$work/dc.txt")"
    if [ "$copied" != "$keys" ]; then
      echo "round $round $b: dc copied ${copied:-nothing} of $keys: $(cat "$work/dc.txt")" >&2
    fi
    python3 - "$round" "$b" "$t0" "$t1" "$keys" "$bytes" "$socket" $split "$socket_cpu" <<'EOF'
import sys
r, b, t0, t1, keys, nbytes, sock, cpu, src, dst, dc, sock_cpu = sys.argv[1:]
secs = float(t1) - float(t0)
mib = int(nbytes) / secs / 2**20
print(f"{r:<5} {b[-28:]:<28} {secs:8.2f} {int(keys) / secs:9.0f} {mib:8.1f} {sock:>11} "
      f"{mib / float(sock):6.2f} {float(cpu):8.2f} {int(keys) / float(cpu):12.0f} {src}/{dst}/{dc} {sock_cpu}")
EOF
  done
done
echo "done: $(uptime | sed 's/.*load/load/')"
