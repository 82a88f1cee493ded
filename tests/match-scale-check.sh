#!/usr/bin/env bash
# Match quality that holds at scale, on generated people of both profiles (`mdm generate people
# --profile standard|febrl`, seed 42) at 10k, 100k and 500k records through the release
# `mdm dedupe` (tests/match_scale.py scores the clusters against the truth file):
#   - recall at 500k within 0.003 (absolute) of recall at 100k;
#   - recall at least 0.999 on true pairs that differ in exactly one attribute, at 100k and 500k;
#   - candidates per record at 500k at most 2x those at 10k;
#   - online path = batch path: 20,000 people sent through the hub one at a time as the Lambda
#     handlers send them (`mdm dedupe --online`: ingest, match, merge, history and events on the
#     in-process store) end in the clusters of the batch engine (`mdm dedupe`).
# About a minute and a half of runs after the build, 1.8 GiB of memory at 500k.
#   tests/match-scale-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin mdm --quiet
mdm="${CARGO_TARGET_DIR:-target}/release/mdm"
py=${MDM_PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
febrl_map=(--map surname=family_name --map address_1=address_line1 --map address_2=address_line2
           --map suburb=locality --map state=region)

# One line per run: profile, records, candidates/record, then the scores as JSON.
for profile in standard febrl; do
  maps=()
  [ "$profile" = febrl ] && maps=("${febrl_map[@]}")
  for n in 10000 100000 500000; do
    dir="$work/$profile-$n"
    "$mdm" generate people --profile "$profile" --records "$n" --seed 42 --out "$dir" > /dev/null 2> "$work/generate.log" \
      || { cat "$work/generate.log" >&2; exit 1; }
    "$mdm" dedupe --entity customer --id-column rec_id "${maps[@]}" --out "$dir/clusters.csv" "$dir/people.csv" \
      2> "$dir/summary" || { cat "$dir/summary" >&2; exit 1; }
    candidates=$(sed -n 's/.*candidates\/record \([0-9.]*\).*/\1/p' "$dir/summary")
    [ -n "$candidates" ] || { cat "$dir/summary"; echo "match-scale: the summary line lacks candidates/record"; exit 1; }
    echo "$profile $n $candidates $("$py" tests/match_scale.py "$dir/people.csv" "$dir/people.truth.csv" "$dir/clusters.csv")"
  done
done > "$work/results"

dir="$work/online"
"$mdm" generate people --records 20000 --seed 5 --out "$dir" > /dev/null 2>&1
"$mdm" dedupe --entity customer --id-column rec_id --out "$dir/batch.csv" "$dir/people.csv" 2> /dev/null
"$mdm" dedupe --online --entity customer --id-column rec_id --out "$dir/online.csv" "$dir/people.csv" 2> /dev/null

"$py" - "$work/results" "$dir/batch.csv" "$dir/online.csv" <<'PY'
import csv, json, sys


def partition(path):
    """Record id -> the first record of its cluster in file order: equal for equal clusterings."""
    first, out = {}, {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out[row["record_id"]] = first.setdefault(row["golden_id"], row["record_id"])
    return out


runs = {}
for line in open(sys.argv[1]):
    profile, n, candidates, scores = line.split(" ", 3)
    runs[(profile, int(n))] = dict(json.loads(scores), candidates=float(candidates))
print(f"{'profile':<9} {'records':>8} {'cand/rec':>8} {'precision':>9} {'recall':>7} {'F1':>7} {'1-attr recall':>13}")
for (profile, n), r in sorted(runs.items()):
    print(f"{profile:<9} {n:>8} {r['candidates']:>8.2f} {r['precision']:>9.4f} {r['recall']:>7.4f} {r['f1']:>7.4f} "
          f"{r['one_attribute_recall']:>13.5f}")
checks = []
for profile in ("standard", "febrl"):
    small, mid, large = (runs[(profile, n)] for n in (10000, 100000, 500000))
    checks += [
        (f"{profile}: recall at 500k {large['recall']:.4f} within 0.003 of 100k {mid['recall']:.4f}",
         large["recall"] >= mid["recall"] - 0.003),
        (f"{profile}: one-attribute recall at 100k {mid['one_attribute_recall']:.5f} and 500k "
         f"{large['one_attribute_recall']:.5f} at least 0.999",
         min(mid["one_attribute_recall"], large["one_attribute_recall"]) >= 0.999),
        (f"{profile}: candidates/record {large['candidates']:.2f} at 500k at most 2x {small['candidates']:.2f} at 10k",
         0 < small["candidates"] and large["candidates"] <= 2 * small["candidates"]),
    ]
batch, online = partition(sys.argv[2]), partition(sys.argv[3])
differ = sum(batch[r] != online.get(r) for r in batch)
checks.append((f"online path = batch path: {differ} of {len(batch)} records clustered differently",
               differ == 0 and len(batch) == 20000 and len(online) == 20000))
for text, ok in checks:
    print(("ok   " if ok else "FAIL ") + text)
failed = sum(not ok for _, ok in checks)
print(f"match-scale: {len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
