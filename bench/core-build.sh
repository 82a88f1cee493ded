#!/usr/bin/env bash
# Figure for docs/benchmarks.md: clean build + test of the domain crate alone (no AWS SDK).
# Usage: bench/core-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
t0=$(date +%s.%N)
CARGO_TARGET_DIR="$dir" cargo build -p mdm-core --quiet
t1=$(date +%s.%N)
CARGO_TARGET_DIR="$dir" cargo test -p mdm-core --no-run --quiet 2>/dev/null
t2=$(date +%s.%N)
CARGO_TARGET_DIR="$dir" cargo test -p mdm-core --quiet >/dev/null
t3=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
  printf "clean build of mdm-core (lib only):          %6.1f s\n", b - a
  printf "  + its test binaries (tokio, jsonschema):   %6.1f s\n", c - b
  printf "running every mdm-core test:                 %6.1f s\n", d - c
  printf "clean build + test, total:                   %6.1f s\n", d - a
}'
