#!/usr/bin/env bash
# Figure for docs/benchmarks.md: read-API latency end to end — HTTP request → `cargo lambda watch`
# function URL → the mdm-api binary (release) → DynamoDB on the emulator → response.
# Usage: bench/api-e2e.sh [PRODUCTS=300] [REQUESTS=200]
set -euo pipefail
source "$(dirname "$0")/../infra/local/lib.sh"
cd "$MDM_ROOT"
products=${1:-300}
requests=${2:-200}
mdm_setup
trap 'kill ${watch_pid:-} 2>/dev/null || true; mdm_moto_stop' EXIT
mdm_moto_start
res="$MDM_STATE/bench-resources.json"
"$MDM_VENV/bin/python" infra/local/bootstrap.py --prefix "bench-$$" > "$res"
mdm_lambda_env "$res" "$MDM_STATE/bench.env"
echo "== seeding the scenario with $products products"
cargo run --quiet --release -p mdm-aws --features local --example seed_scenario -- "$res" "$products" > "$MDM_STATE/bench-scenario.json"
echo "== serving mdm-api with cargo lambda watch --release (it builds the function on the first request)"
port=$(mdm_free_port)
RUST_LOG=warn "$MDM_VENV/bin/cargo-lambda" lambda watch --release -A 127.0.0.1 -P "$port" --env-file "$MDM_STATE/bench.env" \
  > "$MDM_STATE/bench-watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 300); do
  (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done
"$MDM_VENV/bin/python" bench/api_e2e.py "http://127.0.0.1:$port/lambda-url/mdm-api" \
  "$MDM_STATE/bench-scenario.json" "$res" "$requests"
