#!/usr/bin/env bash
# The whole test suite: what `.ci/run` runs and what the README tells users to run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --bins
cargo test --release --locked
scripts/check-deploy.sh
# A short coverage-guided run of each fuzz target (docs/TESTING.md).
scripts/fuzz.sh 60
