#!/usr/bin/env bash
# Pairs completeness and candidates per record as the store grows: generated people of both
# profiles (seed 42) at 10k, 100k, 500k and 1M records; `mdm blocking` for pairs completeness and
# comparisons per record, `mdm dedupe` for candidates per record, records/s and peak memory.
# Prints a markdown table (docs/benchmarks.md, "Blocking as the store grows"). About 4 minutes;
# 3.6 GiB of memory at 1M.
#   cargo build --release --bin mdm && bench/blocking.sh [SIZES...]
set -euo pipefail
cd "$(dirname "$0")/.."
mdm="${CARGO_TARGET_DIR:-target}/release/mdm"
sizes=("${@:-10000 100000 500000 1000000}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
febrl_map=(--map surname=family_name --map address_1=address_line1 --map address_2=address_line2
           --map suburb=locality --map state=region)
echo "| profile | records | pairs completeness | comparisons / record | candidates / record | records/s | peak MiB |"
echo "|---|---|---|---|---|---|---|"
for profile in standard febrl; do
  maps=()
  [ "$profile" = febrl ] && maps=("${febrl_map[@]}")
  for n in ${sizes[*]}; do
    dir="$work/$profile-$n"
    "$mdm" generate people --profile "$profile" --records "$n" --seed 42 --out "$dir" 2> /dev/null
    report=$("$mdm" blocking --entity customer --id-column rec_id "${maps[@]}" --truth "$dir/people.truth.csv" \
      "$dir/people.csv" 2> /dev/null)
    report=${report%%$'\n'*}
    "$mdm" dedupe --entity customer --id-column rec_id "${maps[@]}" --out "$dir/clusters.csv" "$dir/people.csv" \
      2> "$dir/summary"
    pick() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p" <<< "$2"; }
    summary=$(cat "$dir/summary")
    echo "| $profile | $n | $(pick 'pairs completeness' "$report") | $(pick 'comparisons\/record' "$report") |" \
      "$(pick 'candidates\/record' "$summary") | $(pick 'records\/s' "$summary") | $(pick 'peak memory' "$summary") |"
    rm -rf "$dir"
  done
done
