#!/usr/bin/env bash
# Must show of the batch engine: candidates compared per record do not grow with the store.
# Generated people (seed 42) at 10k and at 500k records through `mdm dedupe`; the summary line's
# candidates/record at 500k must stay within 2x of 10k's. Release build: the debug build takes
# minutes at 500k. About 20 s of runs after the build, 1.8 GiB of memory at 500k.
#   tests/candidates-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin mdm --quiet
mdm="${CARGO_TARGET_DIR:-target}/release/mdm"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Candidates per record of a generated set of $1 people.
per_record() {
  "$mdm" generate people --records "$1" --seed 42 --out "$work/$1" > /dev/null 2> "$work/generate.log" \
    || { cat "$work/generate.log" >&2; return 1; }
  "$mdm" dedupe --entity customer --id-column rec_id --out "$work/$1/clusters.csv" "$work/$1/people.csv" \
    2> "$work/$1/summary" || { cat "$work/$1/summary" >&2; return 1; }
  sed -n 's/.*candidates\/record \([0-9.]*\).*/\1/p' "$work/$1/summary"
}

small=$(per_record 10000)
large=$(per_record 500000)
if [ -z "$small" ] || [ -z "$large" ]; then
  cat "$work"/*/summary; echo "candidates: the summary line lacks candidates/record"; exit 1
fi
python3 - "$small" "$large" <<'PY'
import sys
small, large = map(float, sys.argv[1:])
ok = 0 < small and large <= 2 * small
ratio = f"{large / small:.2f}x" if small > 0 else "no candidates at 10k"
print(f"candidates/record: {small:.2f} at 10k, {large:.2f} at 500k ({ratio}; at most 2x)")
print(f"candidates: {int(ok)} passed, {int(not ok)} failed")
sys.exit(0 if ok else 1)
PY
