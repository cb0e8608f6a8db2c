#!/usr/bin/env bash
# The project's whole test run: formatting, lints, the API docs (broken links fail), the
# Rust suite (unit, integration against real dnet_ioserv processes, corpus replay), and the
# Python package's tests.
# Installs the Python test dependencies first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -d python ]; then
  if ! python3 -c 'import msgpack, pytest, prometheus_client' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check msgpack pytest prometheus_client
  fi
fi

cargo fmt --all -- --check
# The node's layers point one way (src/node/mod.rs): no import cycle.
if ! cycles=$(python3 scripts/module_cycles.py src/node); then
  echo "$cycles" >&2
  exit 1
fi
# The storage engine has none at all: the log and the data it owns sit below the code that
# acts on them (sort, defrag, streams, reads and writes).
if ! cycles=$(python3 scripts/module_cycles.py src/blob); then
  echo "$cycles" >&2
  exit 1
fi
cargo clippy --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
# The oldest Rust the crate claims (`rust-version`) must build it: checked with that
# toolchain when it is installed (.ci/run installs it); clippy's incompatible_msrv lint
# above checks the std API against it in any case.
MSRV=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
if rustup run "$MSRV" cargo --version >/dev/null 2>&1; then
  CARGO_TARGET_DIR=target/msrv cargo +"$MSRV" check --all-targets --quiet
else
  echo "test.sh: Rust $MSRV is not installed; the build with it is skipped" >&2
fi
cargo build --bins
cargo test --all-targets

if [ -d python/tests ]; then
  ELLIPTICS_E2E=1 DNET_IOSERV="$PWD/target/debug/dnet_ioserv" \
    DNET_IOCLIENT="$PWD/target/debug/dnet_ioclient" \
    python3 -m pytest -q python/tests
fi
