#!/usr/bin/env bash
# READs served from the in-memory cache against READs served from the page cache: two
# nodes from the same release build, one without `options.cache` (its READs copy out of the
# mapped blob file, which the page cache holds) and one with a cache holding every key. The
# rounds alternate (page, cache, page, cache, ...) and the table shows each side's median
# rate, the ratio cache/page and every round.
#
# Placement: with more than one CPU the nodes run on CPU 1 and dnet_bench on CPU 0.
# Knobs (environment): ROUNDS (3), DURATION_S (2), KEYS (10000), CONNS (50).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION_S=${DURATION_S:-2}
KEYS=${KEYS:-10000}
CONNS=${CONNS:-50}
CACHE_FLAG=1024

say() { echo "bench-cache: $*" >&2; }

say "building release"
cargo build --release --quiet --bin dnet_ioserv --bin dnet_bench
BIN="$PWD/target/release"
if [ "$(nproc)" -gt 1 ]; then SERVER_CPU=1; CLIENT_CPU=0; else SERVER_CPU=0; CLIENT_CPU=0; fi

NODE_CPUS=$SERVER_CPU NODE_SHARDS=1 NODE_COOKIE=bench WORK_PREFIX=bench-cache
# shellcheck source=lib/node.sh
. scripts/lib/node.sh

start_node page 5
PAGE_PORT=$NODE_PORT
# No write-back during the rounds: the cached node's values stay dirty (in memory only).
start_node cache 5 ', "cache": {"size": "1G", "sync_timeout": 3600}'
CACHE_PORT=$NODE_PORT

# bench PORT IOFLAGS SIZE PIPELINE [--fill] -> ops/s
bench() {
  taskset -c "$CLIENT_CPU" "$BIN/dnet_bench" -r "127.0.0.1:$1:2" -g 1 --op read -s "$3" \
    -c "$CONNS" -P "$4" -k "$KEYS" -t "$DURATION_S" -w 0.5 --ioflags "$2" --json ${5:-} |
    python3 -c 'import json,sys; r=json.load(sys.stdin); assert not r["errors"], r; print(round(r["ops_per_s"]))'
}

printf '%-22s %12s %12s %7s   %s\n' workload "page ops/s" "cache ops/s" ratio "rounds (page | cache)"
for point in "100 1" "100 16" "4096 1" "4096 16"; do
  set -- $point
  size=$1 pipeline=$2
  # Fill both nodes with this size (the cached node through the cache: CACHE writes).
  bench "$PAGE_PORT" 0 "$size" 1 --fill >/dev/null
  bench "$CACHE_PORT" "$CACHE_FLAG" "$size" 1 --fill >/dev/null
  page=() cache=()
  for _ in $(seq 1 "$ROUNDS"); do
    page+=("$(bench "$PAGE_PORT" 0 "$size" "$pipeline")")
    cache+=("$(bench "$CACHE_PORT" "$CACHE_FLAG" "$size" "$pipeline")")
  done
  python3 - "$size B ${CONNS}x$pipeline" "${page[*]}" "${cache[*]}" <<'EOF'
import statistics, sys
name, page, cache = sys.argv[1], [int(x) for x in sys.argv[2].split()], [int(x) for x in sys.argv[3].split()]
p, c = statistics.median(page), statistics.median(cache)
print(f"{name:<22} {p:>12.0f} {c:>12.0f} {c / p:>7.2f}   {' '.join(map(str, page))} | {' '.join(map(str, cache))}")
EOF
done
