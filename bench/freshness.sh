#!/usr/bin/env bash
# Figure for docs/benchmarks.md ("Freshness on the local stack"): how long after a record is sent
# its event reaches a subscriber. Sends generated people at a steady rate, one record per
# POST /v1/records through the ingest handler, while the event-source mappings run continuously on
# the local emulator and another task polls the example subscriber queue; prints p50/p90/p99/max
# send → event, how many records got an event, and the emulator's request rate (its request log
# during the run, and back-to-back GetItem calls afterwards).
# Usage: bench/freshness.sh [RECORDS=200] [RATE=5]   (MDM_FRESHNESS_PROFILE=debug: a debug build)
# MDM_FRESHNESS_SQS=localstack: SQS and EventBridge on LocalStack (tests/localstack-leg.sh's pair),
# DynamoDB + Streams on moto, so the two emulators share the load.
set -euo pipefail
source "$(dirname "$0")/../infra/local/lib.sh"
cd "$MDM_ROOT"
records=${1:-200}
rate=${2:-5}
profile=${MDM_FRESHNESS_PROFILE:-release}
case "$profile" in
  release) cargo_profile=(--release) ;;
  debug) cargo_profile=() ;;
  *) echo "MDM_FRESHNESS_PROFILE: release or debug" >&2; exit 2 ;;
esac
mdm_setup
echo "== building mdm ($profile, aws feature)"
cargo build --quiet "${cargo_profile[@]}" -p mdm-cli --features aws
# A moto of its own (port file, request log), so a tests/run at the same time keeps its own.
MDM_STATE="$MDM_ROOT/.local/freshness-$$"
trap 'mdm_localstack_stop 2>/dev/null || true; mdm_moto_stop; rm -rf "$MDM_STATE"' EXIT
mdm_moto_start
case "${MDM_FRESHNESS_SQS:-moto}" in
  moto) ;;
  localstack) mdm_localstack_start ;;
  *) echo "MDM_FRESHNESS_SQS: moto or localstack" >&2; exit 2 ;;
esac
export MDM_EMF=off RUST_LOG=${RUST_LOG:-warn}
"$MDM_VENV/bin/python" infra/local/bootstrap.py --prefix "fresh-$$" > .local/freshness-resources.json
cargo run --quiet "${cargo_profile[@]}" -p mdm-cli --features aws -- local freshness \
  --resources .local/freshness-resources.json --records "$records" --rate "$rate" \
  --emulator-log "$MDM_STATE/moto.log" --emulator-pid "$MDM_MOTO_PID"
