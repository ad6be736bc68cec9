#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, once per machine:
# - tansu 0.6.0, a Kafka-protocol broker, built from crates.io into ~/.cargo/bin
#   (about 15 minutes the first time; skipped when that version is already there).
set -euo pipefail

TANSU_VERSION=0.6.0
tansu_bin="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
if [[ -x "$tansu_bin" ]] && "$tansu_bin" --version 2>/dev/null | grep -qx "tansu $TANSU_VERSION"; then
    echo "setup: tansu $TANSU_VERSION present"
else
    echo "setup: building tansu $TANSU_VERSION from crates.io (first time only, ~15 min)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
fi
