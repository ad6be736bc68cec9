#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, once per machine:
# - tansu 0.6.0, a Kafka-protocol broker, built from crates.io into ~/.cargo/bin
#   (about 15 minutes the first time; skipped when that version is already there);
# - Prometheus, promtool, Alertmanager and amtool: Debian's `prometheus` and
#   `prometheus-alertmanager` packages (skipped when all four are there).
set -euo pipefail

if command -v prometheus >/dev/null && command -v promtool >/dev/null \
    && command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; then
    echo "setup: prometheus and alertmanager present"
else
    echo "setup: installing Debian's prometheus and prometheus-alertmanager packages"
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo=sudo; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        prometheus prometheus-alertmanager
fi

TANSU_VERSION=0.6.0
tansu_bin="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
if [[ -x "$tansu_bin" ]] && "$tansu_bin" --version 2>/dev/null | grep -qx "tansu $TANSU_VERSION"; then
    echo "setup: tansu $TANSU_VERSION present"
else
    echo "setup: building tansu $TANSU_VERSION from crates.io (first time only, ~15 min)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
fi
