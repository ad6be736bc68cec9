#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer, without cargo-fuzz: builds the targets of fuzz/ with
# the instrumentation cargo-fuzz uses and runs each for SECONDS (default 60) on its corpus.
# Exits non-zero on a crash; the input is left in fuzz/artifacts/<target>/. See docs/TESTING.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (targets: event config engine; default all)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(event config engine)

# An explicit --target keeps the instrumentation off build scripts and proc macros.
triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
export CARGO_TARGET_DIR="$PWD/target"
cargo build --release --locked --target "$triple" --bins

for t in "${targets[@]}"; do
  # New inputs go to the first (scratch) directory; the checked-in corpus is only read.
  mkdir -p "target/corpus/$t" "artifacts/$t" "regressions/$t"
  echo "fuzz: $t for ${seconds}s"
  "target/$triple/release/$t" -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=30 -artifact_prefix="artifacts/$t/" "target/corpus/$t" "corpus/$t" "regressions/$t"
done
