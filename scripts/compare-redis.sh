#!/usr/bin/env bash
# Side-by-side: dnet_ioserv driven by dnet_bench against redis-server driven by
# redis-benchmark, on this machine, in one run. Builds release, starts both servers in a
# temporary directory, alternates the two load tools row by row (ours, redis, ours, redis,
# ... ROUNDS times) and prints one table of medians: rate, ratio and p99 of each.
#
# Placement: with more than one CPU the servers run on CPUs 1..N-1 and the load tools on
# CPU 0 ("cross-core"); the node gets one shard per server CPU.
#
# Knobs (environment): ROUNDS (3), DURATION_S (2, per dnet_bench point), KEYS (10000),
# CONNS (50), IDLE_MIN_PCT (85), IDLE_WAIT_S (0: longest extra wait for an idle machine per
# point; each point always samples idleness for 0.5 s),
# EXEC_WORKERS_PER_SHARD (2: echo worker processes per node shard for the exec row).
#
# The exec row compares 100 B echo through a worker with the same node's own 100 B READ
# (the goal is >= 0.5x), not with redis.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION_S=${DURATION_S:-2}
KEYS=${KEYS:-10000}
CONNS=${CONNS:-50}
IDLE_MIN_PCT=${IDLE_MIN_PCT:-85}
IDLE_WAIT_S=${IDLE_WAIT_S:-0}
EXEC_WORKERS_PER_SHARD=${EXEC_WORKERS_PER_SHARD:-2}

say() { echo "compare-redis: $*" >&2; }

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  say "installing redis-server and redis-tools"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi

say "building release"
cargo build --release --quiet --bin dnet_ioserv --bin dnet_bench --bin dnet_srw --bin dnet_ioclient \
  --example echo_worker
BIN="$PWD/target/release"

CPUS=$(nproc)
if [ "$CPUS" -gt 1 ]; then
  SERVER_CPUS="1-$((CPUS - 1))"
  CLIENT_CPUS="0"
  SHARDS=$((CPUS - 1))
  PLACEMENT="cross-core: servers on CPU $SERVER_CPUS, load tools on CPU $CLIENT_CPUS"
else
  SERVER_CPUS="0"
  CLIENT_CPUS="0"
  SHARDS=1
  PLACEMENT="same-core (1 CPU)"
fi

NODE_CPUS=$SERVER_CPUS NODE_SHARDS=$SHARDS NODE_COOKIE=compare WORK_PREFIX=compare-redis
# shellcheck source=lib/node.sh
. scripts/lib/node.sh

# start_redis NAME EXTRA_ARGS... -> sets REDIS_PORT, REDIS_PID
start_redis() {
  local dir="$WORK/$1"; shift
  mkdir -p "$dir"
  REDIS_PORT=$(free_port)
  taskset -c "$SERVER_CPUS" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" \
    --daemonize no --logfile "$dir/redis.log" "$@" &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_port "$REDIS_PORT"
}

# Percent idle of the whole machine over 0.5 s.
idle_pct() {
  local a b
  a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
  local total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  local idle=$((b[4] - a[4] + b[5] - a[5]))
  echo $((total > 0 ? 100 * idle / total : 100))
}

# Wait (at most IDLE_WAIT_S) for the machine to be idle; print the last idle figure.
gate() {
  local deadline=$((SECONDS + IDLE_WAIT_S)) pct
  while :; do
    pct=$(idle_pct)
    if [ "$pct" -ge "$IDLE_MIN_PCT" ] || [ "$SECONDS" -ge "$deadline" ]; then echo "$pct"; return; fi
  done
}

RESULTS="$WORK/results.tsv"   # row  tool  rate  p99_us  idle_pct  server_cpu_us_per_op
: >"$RESULTS"

# ours ROW NODE_PORT NODE_PID OP SIZE PIPELINE [TOOL]
ours() {
  local idle json
  idle=$(gate)
  json=$(taskset -c "$CLIENT_CPUS" "$BIN/dnet_bench" -r "127.0.0.1:$2:2" -g 1 --op "$4" -s "$5" \
    -c "$CONNS" -P "$6" -k "$KEYS" -t "$DURATION_S" -w 0.5 --server-pid "$3" --json)
  python3 - "$1" "$idle" "$json" "${7:-ours}" >>"$RESULTS" <<'EOF'
import json, sys
row, idle, r, tool = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
if r["errors"]:
    sys.stderr.write(f"compare-redis: {row}: dnet_bench errors {r['errors_by_errno']}\n")
cpu = r.get("server_cpu_us_per_op")
print(f"{row}\t{tool}\t{r['ops_per_s']:.0f}\t{r['p99_us']:.0f}\t{idle}\t{'' if cpu is None else f'{cpu:.1f}'}")
EOF
}

# CPU ticks (user + system) a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# theirs ROW REDIS_PORT TEST SIZE PIPELINE REQUESTS REDIS_PID
theirs() {
  local idle csv before after
  idle=$(gate)
  before=$(cpu_ticks "$7")
  csv=$(taskset -c "$CLIENT_CPUS" redis-benchmark -h 127.0.0.1 -p "$2" -t "$3" -d "$4" \
    -c "$CONNS" -P "$5" -r "$KEYS" -n "$6" --csv)
  after=$(cpu_ticks "$7")
  python3 - "$1" "$idle" "$csv" "$((after - before))" "$(getconf CLK_TCK)" "$6" >>"$RESULTS" <<'EOF'
import csv, io, sys
row, idle, text = sys.argv[1], sys.argv[2], sys.argv[3]
ticks, hz, n = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rows = list(csv.reader(io.StringIO(text)))
head, data = rows[0], rows[1]
rps = float(data[head.index("rps")])
p99_us = float(data[head.index("p99_latency_ms")]) * 1000
cpu_us_per_op = ticks * 1e6 / hz / n
print(f"{row}\tredis\t{rps:.0f}\t{p99_us:.0f}\t{idle}\t{cpu_us_per_op:.1f}")
EOF
}

say "$PLACEMENT; node shard_count $SHARDS; $ROUNDS rounds, ${DURATION_S}s points"

start_node mem 60
MEM_PORT=$NODE_PORT MEM_PID=$NODE_PID
start_redis redis-mem --save "" --appendonly no
REDIS_MEM=$REDIS_PORT REDIS_MEM_PID=$REDIS_PID

for size in 100 4096; do
  say "pre-filling $KEYS keys of $size B in both servers"
  taskset -c "$CLIENT_CPUS" "$BIN/dnet_bench" -r "127.0.0.1:$MEM_PORT:2" -g 1 --op write --fill \
    -s "$size" -c "$CONNS" -P 16 -k "$KEYS" -n 1 -w 0 --json >/dev/null
  taskset -c "$CLIENT_CPUS" redis-benchmark -h 127.0.0.1 -p "$REDIS_MEM" -t set -d "$size" \
    -c "$CONNS" -P 16 -r "$KEYS" -n $((KEYS * 10)) -q >/dev/null
  for pipeline in 1 16; do
    if [ "$pipeline" -eq 1 ]; then n=120000; elif [ "$size" -eq 100 ]; then n=800000; else n=400000; fi
    for op in write read; do
      if [ "$op" = write ]; then test=set; else test=get; fi
      row="$op ${size}B ${CONNS}x$pipeline"
      say "$row"
      for _ in $(seq 1 "$ROUNDS"); do
        ours "$row" "$MEM_PORT" "$MEM_PID" "$op" "$size" "$pipeline"
        theirs "$row" "$REDIS_MEM" "$test" "$size" "$pipeline" "$n" "$REDIS_MEM_PID"
      done
    done
  done
done

# The durable node keeps checksums (blob_flags 150: the tutorial's 158 without NO_FOOTER):
# with footers the data file alone is the durable log, one fdatasync per group-commit round;
# without them every round must make the .index durable too.
start_node durable 0 "" 150
DUR_PORT=$NODE_PORT DUR_PID=$NODE_PID
start_redis redis-aof --save "" --appendonly yes --appendfsync always
REDIS_AOF=$REDIS_PORT REDIS_AOF_PID=$REDIS_PID
row="durable write 4096B ${CONNS}x1"
say "$row (ours sync: 0, redis appendfsync always)"
for _ in $(seq 1 "$ROUNDS"); do
  ours "$row" "$DUR_PORT" "$DUR_PID" write 4096 1
  theirs "$row" "$REDIS_AOF" set 4096 1 20000 "$REDIS_AOF_PID"
done

# exec: the echo app (examples/echo_worker.rs) deployed with dnet_srw on a node with srw;
# 100 B echo through a worker against the same node's own 100 B READ.
EXEC_DIR="$WORK/exec-app"
mkdir -p "$EXEC_DIR/spool" "$EXEC_DIR/ipc"
cat >"$EXEC_DIR/srw.json" <<EOF
{"version": 2, "paths": {"plugins": "/usr/lib/cocaine", "spool": "$EXEC_DIR/spool", "runtime": "$EXEC_DIR/ipc"},
 "services": {"logging": {"type": "logging", "args": {"port": 12501}}, "storage": {"type": "elliptics"}},
 "storages": {"core": {"type": "elliptics", "args": {"nodes": ["localhost:1025:2"], "groups": [1]}}}}
EOF
start_node exec 60 ", \"srw_config\": \"$EXEC_DIR/srw.json\""
EXEC_PORT=$NODE_PORT EXEC_PID=$NODE_PID
printf '#!/bin/sh\nexec %s "$@"\n' "$BIN/examples/echo_worker" >"$EXEC_DIR/run.sh"
chmod 755 "$EXEC_DIR/run.sh"
tar -C "$EXEC_DIR" -cf "$EXEC_DIR/bench.tar" run.sh
echo '{"slave": "run.sh", "environment": {}}' >"$EXEC_DIR/manifest.json"
cat >"$EXEC_DIR/profile.json" <<EOF
{"isolate": {"type": "process", "args": {"spool": "$EXEC_DIR/spool"}},
 "pool-limit": $((SHARDS * EXEC_WORKERS_PER_SHARD)), "queue-limit": 1000, "concurrency": 64}
EOF
REMOTE="127.0.0.1:$EXEC_PORT:2"
"$BIN/dnet_srw" -r "$REMOTE" -g 1 app upload --manifest "$EXEC_DIR/manifest.json" \
  --package "$EXEC_DIR/bench.tar" --name bench >/dev/null
"$BIN/dnet_srw" -r "$REMOTE" -g 1 profile upload --profile "$EXEC_DIR/profile.json" \
  --name bench >/dev/null
"$BIN/dnet_ioclient" -r "$REMOTE" -g 1 -c "bench@start-task" >/dev/null
taskset -c "$CLIENT_CPUS" "$BIN/dnet_bench" -r "$REMOTE" -g 1 --op write --fill -s 100 \
  -c "$CONNS" -P 16 -k "$KEYS" -n 1 -w 0 --json >/dev/null
row="exec 100B ${CONNS}x1"
say "$row (echo through a worker vs the same node's 100 B READ)"
for _ in $(seq 1 "$ROUNDS"); do
  ours "$row" "$EXEC_PORT" "$EXEC_PID" exec 100 1
  ours "$row" "$EXEC_PORT" "$EXEC_PID" read 100 1 ourread
done

python3 - "$RESULTS" "$PLACEMENT" "$SHARDS" <<'EOF'
import statistics, sys
path, placement, shards = sys.argv[1:4]
rows, order = {}, []
for line in open(path):
    row, tool, rate, p99, idle, cpu = line.rstrip("\n").split("\t")
    if row not in rows:
        rows[row] = {"ours": [], "redis": [], "ourread": []}
        order.append(row)
    rows[row][tool].append((float(rate), float(p99), int(idle), float(cpu) if cpu else None))

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def k(x):
    return f"{x/1000:.1f}k"

print(f"\nElliptics node (dnet_bench) vs redis-server (redis-benchmark); {placement}; node shard_count {shards}")
print("memory rows: node sync 60 (no fsync per write) vs redis --save '' --appendonly no; durable: node sync 0 (blob_flags 150, checksums on) vs appendfsync always")
hdr = f"{'workload':<26} {'ours ops/s':>11} {'redis ops/s':>12} {'ratio':>6} {'our p99':>9} {'redis p99':>10} {'our us/op':>9} {'ref us/op':>9} {'idle%':>6}  runs (ours | redis)"
print(hdr)
print("-" * len(hdr))
for row in order:
    o, r = rows[row]["ours"], rows[row]["redis"] or rows[row]["ourread"]
    orate, rrate = med([x[0] for x in o]), med([x[0] for x in r])
    op99, rp99 = med([x[1] for x in o]), med([x[1] for x in r])
    cpus = [x[3] for x in o if x[3] is not None]
    rcpus = [x[3] for x in r if x[3] is not None]
    idle = min(x[2] for x in o + r)
    runs = " ".join(k(x[0]) for x in o) + " | " + " ".join(k(x[0]) for x in r)
    ratio = orate / rrate if rrate else float("nan")
    cpu = f"{med(cpus):.1f}" if cpus else "-"
    rcpu = f"{med(rcpus):.1f}" if rcpus else "-"
    print(f"{row:<26} {k(orate):>11} {k(rrate):>12} {ratio:>6.2f} {op99/1000:>7.2f}ms {rp99/1000:>8.2f}ms {cpu:>9} {rcpu:>9} {idle:>6}  {runs}")
print("exec row: the reference column is this node's own 100 B READ on the same node, not redis")
print("us/op: server CPU time (user + system, from /proc) per request; ref = redis, or our READ on the exec row")
print("idle% is the lowest machine idle figure seen before any point of the row")
EOF
