#!/usr/bin/env bash
# The steady-state soak: build the release binaries, then run scripts/soak.py (a node with
# small data files and defragmentation on, a mixed zipf workload, a table and a plot per run).
#   scripts/soak.sh --minutes 30 --out target/soak
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --quiet
exec python3 scripts/soak.py "$@"
