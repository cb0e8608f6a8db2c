#!/usr/bin/env bash
# A network partition: three nodes (nodes 1 and 2 in group 1, node 3 in group 2) and a
# client, each in its own network namespace, joined by veth pairs on one bridge (in a
# namespace of its own: only addresses inside these namespaces are used). The client writes
# a key every 0.1 s to groups 1 and 2; node 3 is cut off (its bridge port taken down: every
# packet to or from it dropped, its sockets left open) for CUT seconds, then healed; dc recovery runs; every key must read back from
# both groups. Prints a timeline: what the client saw during the cut (errors, latencies)
# and how long after the heal the writes were acknowledged by both groups again.
#   scripts/partition.sh [CUT_SECONDS]     (root; builds target/release first)
set -euo pipefail
cd "$(dirname "$0")/.."
cut_s="${1:-10}"
if ! ip netns add elp-probe 2>/dev/null; then
  echo "partition: network namespaces are not available here (needs root and ip netns); skipped"
  exit 0
fi
ip netns del elp-probe
cargo build --release --bins >/dev/null
bin="$PWD/target/release"
work="$(mktemp -d)"
port=24555
ns() { echo "elp-$1"; }
cleanup() {
  for p in "$work"/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null || true; done
  for n in br n1 n2 n3 cl; do ip netns del "$(ns $n)" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$(ns br)"
ip netns exec "$(ns br)" ip link add br0 type bridge
ip netns exec "$(ns br)" ip link set br0 up
i=0
for n in n1 n2 n3 cl; do
  i=$((i + 1))
  ip netns add "$(ns $n)"
  ip link add "v-$n" netns "$(ns $n)" type veth peer name "b-$n" netns "$(ns br)"
  ip netns exec "$(ns br)" ip link set "b-$n" master br0 up
  ip netns exec "$(ns $n)" ip addr add "10.77.0.$i/24" dev "v-$n"
  ip netns exec "$(ns $n)" ip link set "v-$n" up
  ip netns exec "$(ns $n)" ip link set lo up
done

start_node() { # name index group remotes...
  local n=$1 idx=$2 group=$3; shift 3
  local d="$work/$n" remotes=""
  mkdir -p "$d/h" "$d/e"
  for r in "$@"; do remotes="$remotes${remotes:+, }\"10.77.0.$r:$port:2\""; done
  cat >"$d/ioserv.json" <<EOF
{"logger": {"level": "info", "frontends": [{"sink": {"type": "files", "path": "$d/log", "autoflush": true}}]},
 "options": {"join": true, "flags": 4, "remote": [$remotes], "address": ["10.77.0.$idx:$port:2-0"],
             "wait_timeout": 2, "check_timeout": 2, "auth_cookie": "partition", "shard_count": 2},
 "backends": [{"backend_id": 1, "type": "blob", "group": $group, "history": "$d/h", "data": "$d/e/data", "sync": 0, "blob_size": "50M"}]}
EOF
  (cd "$d" && ip netns exec "$(ns $n)" "$bin/dnet_ioserv" -c ioserv.json >/dev/null 2>&1 & echo $! >"$work/$n.pid")
}
start_node n1 1 1 2 3
start_node n2 2 1 1 3
start_node n3 3 2 1 2
sleep 3

client() { ip netns exec "$(ns cl)" "$bin/dnet_ioclient" -r "10.77.0.1:$port:2" -w 2 "$@"; }
now() { date +%s.%N; }
t0=$(now)
since() { awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%6.2f", b - a }'; }
n=0
declare -A acked
write_round() { # phase
  local key="part-$n" start end ms out status
  n=$((n + 1))
  echo "$key" >"$work/value"
  start=$(now)
  if out=$(cd "$work" && cp value "$key" && client -g 1:2 -W "$key" 2>&1); then status=ok; else status=fail; fi
  end=$(now)
  ms=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%d", (b - a) * 1000 }')
  local bad; bad=$(grep -c -i "error\|fail" <<<"$out" || true)
  [ "$status" = ok ] && acked[$key]=1
  echo "$(since) $1 $key $status ${ms}ms errors=$bad $(grep -o -- '-[0-9]\+' <<<"$out" | sort | uniq -c | tr '\n' ' ')" >>"$work/timeline"
}
for _ in $(seq 20); do write_round before; sleep 0.1; done
echo "$(since) CUT node 3 off" >>"$work/timeline"
ip netns exec "$(ns br)" ip link set b-n3 down
end_cut=$(awk -v a="$(now)" -v c="$cut_s" 'BEGIN { printf "%f", a + c }')
while awk -v a="$(now)" -v b="$end_cut" 'BEGIN { exit !(a < b) }'; do write_round cut; sleep 0.1; done
echo "$(since) HEAL" >>"$work/timeline"
ip netns exec "$(ns br)" ip link set b-n3 up
for _ in $(seq 60); do write_round healed; sleep 0.1; done
echo "$(since) RECOVER" >>"$work/timeline"
ip netns exec "$(ns cl)" "$bin/dnet_recovery" dc -r "10.77.0.1:$port:2" -g 1,2 -w 10 -D "$work" >>"$work/timeline" 2>&1
lost=0
for key in "${!acked[@]}"; do
  for g in 1 2; do
    if ! got=$(cd "$work" && client -g "$g" -D "$key" 2>/dev/null) || [ "$got" != "$key" ]; then
      echo "lost: $key in group $g" >>"$work/timeline"; lost=$((lost + 1))
    fi
  done
done
cat "$work/timeline"
echo "acknowledged writes: ${#acked[@]}, copies missing after recovery: $lost"
[ "$lost" -eq 0 ]
