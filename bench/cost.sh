#!/usr/bin/env bash
# Figure for docs/benchmarks.md: what one ingested record costs on AWS. Generates people (and
# products), sends them through the real handlers on the local emulator (HTTP ingest, then the
# queues and the stream as Lambda's event-source mappings would), and prints per record:
# DynamoDB requests and request units by operation and item kind, SQS requests, EventBridge
# entries, Lambda invocations, and $ per 1M records at the prices in bench/prices-us-east-1.json.
# Usage: bench/cost.sh [PEOPLE=300] [PRODUCTS=100] [SEED=7]
set -euo pipefail
source "$(dirname "$0")/../infra/local/lib.sh"
cd "$MDM_ROOT"
people=${1:-300}
products=${2:-100}
seed=${3:-7}
mdm_setup
trap mdm_moto_stop EXIT
mdm_moto_start
data="$MDM_STATE/cost-data"
export MDM_EMF=off RUST_LOG=${RUST_LOG:-warn}
cargo build --quiet -p mdm-cli --features aws
mdm() { "${CARGO_TARGET_DIR:-target}/debug/mdm" "$@"; }
args=()
if [ "$people" -gt 0 ]; then
  mdm generate people --records "$people" --seed "$seed" --out "$data"
  args+=(--people "$data/people.csv")
fi
if [ "$products" -gt 0 ]; then
  mdm generate products --records "$products" --seed "$seed" --out "$data"
  args+=(--products "$data/products.csv")
fi
"$MDM_VENV/bin/python" infra/local/bootstrap.py --prefix "cost-$$" > "$MDM_STATE/cost-resources.json"
mdm local cost --resources "$MDM_STATE/cost-resources.json" "${args[@]}"
