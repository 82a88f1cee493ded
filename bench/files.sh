#!/usr/bin/env bash
# Figure for docs/benchmarks.md: the bulk-file path on the local emulator. Generates people,
# drops them as one CSV file into the files bucket, runs the files function until its queue is
# empty (rows stored and queued for matching), and prints rows per second and what a row costs on
# AWS (request units by operation and item kind, SQS requests, $ per 1M rows) by the method of
# bench/cost.sh.
# Usage: bench/files.sh [ROWS=5000] [SEED=7]
set -euo pipefail
source "$(dirname "$0")/../infra/local/lib.sh"
cd "$MDM_ROOT"
rows=${1:-5000}
seed=${2:-7}
mdm_setup
trap mdm_moto_stop EXIT
mdm_moto_start
data="$MDM_STATE/files-data"
export MDM_EMF=off RUST_LOG=${RUST_LOG:-warn}
cargo build --quiet -p mdm-cli --features aws
mdm() { "${CARGO_TARGET_DIR:-target}/debug/mdm" "$@"; }
mdm generate people --records "$rows" --seed "$seed" --out "$data"
"$MDM_VENV/bin/python" infra/local/bootstrap.py --prefix "files-$$" \
  --parameter 'FileFeeds={"customer/people": {"idColumn": "rec_id"}}' > "$MDM_STATE/files-resources.json"
mdm local files --resources "$MDM_STATE/files-resources.json" --people "$data/people.csv"
