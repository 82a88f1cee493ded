#!/usr/bin/env bash
# Trained against hand-set customer weights (docs/benchmarks.md, "Trained weights"): `mdm train`
# on 100,000 FEBRL-profile people of seed 1001 (threshold chosen there, --truth: the best F1 at a
# precision of 0.999), then pairwise precision, recall and F1 of `mdm dedupe` with the trained and
# with the built-in schema on FEBRL4 and on both profiles at 100k, seed 42. About 3 minutes. With
# --write, the trained schema becomes the built-in one (shared/core/entities/customer.toml): that
# is how its weights and thresholds were made. FEBRL data is never training input.
#   cargo build --release --bin mdm && bench/train.sh [--write]
set -euo pipefail
cd "$(dirname "$0")/.."
mdm="${CARGO_TARGET_DIR:-target}/release/mdm"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
febrl4=$(bench/febrl4.sh | tail -n1)
map=(--map surname=family_name --map address_1=address_line1 --map address_2=address_line2
     --map suburb=locality --map state=region)
"$mdm" generate people --profile febrl --records 100000 --seed 1001 --out "$work/train" 2> /dev/null
mkdir -p "$work/schemas"
cp shared/core/entities/product.toml "$work/schemas/"
"$mdm" train --entity customer --id-column rec_id "${map[@]}" --truth "$work/train/people.truth.csv" \
  --out "$work/schemas/customer.toml" "$work/train/people.csv" 2>&1 | grep -v "ignoring columns" | tail -n2

if [ "${1:-}" = --write ]; then
  cp "$work/schemas/customer.toml" shared/core/entities/customer.toml
  echo "wrote shared/core/entities/customer.toml (rebuild mdm to use it; \"built-in\" below is the previous one)"
fi

# `source,record_id,golden_id` clusters against a truth: pairwise precision, recall, F1.
score() {
  python3 - "$@" <<'PY'
import csv, re, sys
from collections import Counter
clusters, truth_path = sys.argv[1], sys.argv[2]
with open(clusters) as f:
    cluster = {r["record_id"]: r["golden_id"] for r in csv.DictReader(f)}
if truth_path == "febrl4":
    truth = {r: re.match(r"rec-(\d+)", r).group(1) for r in cluster}
else:
    with open(truth_path) as f:
        truth = {r["record_id"]: r["entity_id"] for r in csv.DictReader(f)}
pairs = lambda n: n * (n - 1) // 2
t = sum(pairs(n) for n in Counter(truth.values()).values())
p = sum(pairs(n) for n in Counter(cluster.values()).values())
tp = sum(pairs(n) for n in Counter((truth[r], c) for r, c in cluster.items()).values())
pr, rc = tp / p, tp / t
print(f"precision {pr:.4f}  recall {rc:.4f}  F1 {2 * pr * rc / (pr + rc):.4f}")
PY
}
for schemas in built-in trained; do
  flag=()
  [ "$schemas" = trained ] && flag=(--schemas "$work/schemas")
  "$mdm" dedupe "${flag[@]}" --entity customer --id-column rec_id --out "$work/f4.csv" \
    "$febrl4/febrl4a.csv" "$febrl4/febrl4b.csv" 2> /dev/null
  echo "$schemas  FEBRL4            $(score "$work/f4.csv" febrl4)"
  for profile in standard febrl; do
    extra=()
    [ "$profile" = febrl ] && extra=("${map[@]}")
    dir="$work/$profile"
    [ -d "$dir" ] || "$mdm" generate people --profile "$profile" --records 100000 --seed 42 --out "$dir" 2> /dev/null
    "$mdm" dedupe "${flag[@]}" --entity customer --id-column rec_id "${extra[@]}" --out "$dir/c.csv" \
      "$dir/people.csv" 2> /dev/null
    printf '%s  %-17s %s\n' "$schemas" "$profile 100k" "$(score "$dir/c.csv" "$dir/people.truth.csv")"
  done
done
