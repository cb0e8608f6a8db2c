#!/usr/bin/env bash
# The long chaos run: five nodes under steady load while one random node at a time is
# killed and restarted or frozen and thawed, for MINUTES (default 10); then merge and dc
# recovery and the same checks as the CI form (tests/cluster_chaos.rs), with its summary.
#   scripts/chaos.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
case "$minutes" in
  ''|*[!0-9]*) echo "usage: $0 [MINUTES]" >&2; exit 2 ;;
esac
CHAOS_SECONDS=$((minutes * 60)) cargo test --release --test cluster_chaos -- --nocapture
