# Node start-up shared by the benchmark scripts (source it; it defines, it runs nothing but
# the work directory and its clean-up):
#
# - WORK: a temporary directory, removed on exit together with every process in PIDS;
# - free_port, wait_port PORT;
# - start_node NAME SYNC [EXTRA_OPTIONS] [BLOB_FLAGS]: a release dnet_ioserv with one
#   backend (group 1, 1 GiB blobs) in $WORK/NAME, listening on a free port; sets NODE_PORT
#   and NODE_PID. EXTRA_OPTIONS is appended to `options` (", \"cache\": {...}").
#
# Set before sourcing: BIN (the release binaries), NODE_CPUS (taskset CPU list),
# NODE_SHARDS (shard_count), NODE_COOKIE (auth_cookie), WORK_PREFIX (name of the temporary
# directory), and define `say`.

WORK=$(mktemp -d -t "${WORK_PREFIX:-node}.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  say "nothing listens on port $1"; exit 1
}

start_node() {
  local dir="$WORK/$1" extra="${3:-}" flags="${4:-158}"
  mkdir -p "$dir/history" "$dir/blob"
  NODE_PORT=$(free_port)
  cat >"$dir/ioserv.json" <<JSON
{"logger": {"level": "error", "frontends": [{"formatter": {"type": "string", "pattern": "%(message)s"},
   "sink": {"type": "files", "path": "$dir/ioserv.log", "autoflush": true}}]},
 "options": {"join": true, "flags": 4, "remote": [], "address": ["127.0.0.1:$NODE_PORT:2-0"],
   "wait_timeout": 5, "check_timeout": 20, "auth_cookie": "$NODE_COOKIE", "shard_count": $NODE_SHARDS$extra},
 "backends": [{"backend_id": 1, "type": "blob", "group": 1, "history": "$dir/history",
   "data": "$dir/blob/data", "sync": $2, "blob_flags": "$flags", "blob_size": "1G",
   "records_in_blob": "10000000"}]}
JSON
  taskset -c "$NODE_CPUS" "$BIN/dnet_ioserv" -c "$dir/ioserv.json" >"$dir/stdout" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  wait_port "$NODE_PORT"
}
