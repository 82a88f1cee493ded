#!/usr/bin/env bash
# The LocalStack leg of tests/run: the emulator tests that exercise SQS or EventBridge run a second
# time with those two services served by LocalStack (host mode, no Docker) and DynamoDB + Streams
# still by moto, through the per-service endpoint variables the AWS SDK reads
# (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_EVENTBRIDGE over AWS_ENDPOINT_URL). Expects moto running
# and AWS_ENDPOINT_URL set (tests/run does both). Prints one summary line; fails if LocalStack does
# not install or start (it never passes silently).
set -euo pipefail
source "$(dirname "$0")/../infra/local/lib.sh"
cd "$MDM_ROOT"

# The one list: test files (shared/aws/tests) that run on both emulator pairs.
ON_LOCALSTACK=(emulator_pipeline emulator_eventbridge emulator_redrive emulator_bad_input emulator_concurrency
  emulator_erasure emulator_steward emulator_stewardship emulator_api emulator_correlation)
# Test files about DynamoDB alone (item sizes, capacity units, consistency, transactions): moto only.
DYNAMODB_ONLY=(conformance_dynamo emulator_large emulator_cost emulator_reads emulator_merge_atomic emulator_reindex)
# Test files driven by S3's notifications, which moto's S3 sends to moto's SQS only (the erasure
# test covers the file path on both pairs: there the test sends S3's event itself).
S3_NOTIFIED=(emulator_files)
# Tests that cannot run on LocalStack, with the reason (docs/architecture.md, "Emulators").
SKIP=(
  # It stages an EventBridge outage by publishing to a bus that does not exist: AWS and moto
  # reject such entries, LocalStack 4.13.1 accepts them.
  a_crash_at_handler_boundaries_of_publishing_loses_no_event
)

# Every test file is in one of the two lists, so a new one is placed on purpose.
for f in shared/aws/tests/*.rs; do
  name=$(basename "$f" .rs)
  if [[ ! " ${ON_LOCALSTACK[*]} ${DYNAMODB_ONLY[*]} ${S3_NOTIFIED[*]} " == *" $name "* ]]; then
    echo "LocalStack leg: $f is in none of the lists of tests/localstack-leg.sh" >&2
    exit 1
  fi
done
: "${AWS_ENDPOINT_URL:?the LocalStack leg needs moto for DynamoDB: start it first (tests/run does)}"

trap mdm_localstack_stop EXIT
if ! mdm_localstack_start; then
  echo "LocalStack leg: FAILED — LocalStack did not install or start (see above)" >&2
  exit 1
fi
echo "== DynamoDB + Streams: moto at $AWS_ENDPOINT_URL; SQS and EventBridge: LocalStack at $AWS_ENDPOINT_URL_SQS"
tests=()
for t in "${ON_LOCALSTACK[@]}"; do tests+=(--test "$t"); done
skips=()
for s in "${SKIP[@]}"; do skips+=(--skip "$s"); done
log="$MDM_STATE/localstack-leg.log"
set +e
cargo test -p mdm-aws --all-features "${tests[@]}" -- "${skips[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -oE '^test result: .* ([0-9]+) passed' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -oE '; [0-9]+ failed' "$log" | awk '{s+=$2} END {print s+0}')
echo "LocalStack leg: ${#ON_LOCALSTACK[@]} test files, $passed passed, $failed failed, ${#SKIP[@]} skipped (LocalStack $(mdm_localstack_version))"
# The requests really reached LocalStack (an endpoint variable the SDK ignored would fall back to moto).
served_sqs=$(grep -c 'AWS sqs\.ReceiveMessage' "$MDM_STATE/localstack.log" || true)
served_events=$(grep -c 'AWS events\.PutEvents' "$MDM_STATE/localstack.log" || true)
echo "LocalStack served $served_sqs ReceiveMessage and $served_events PutEvents requests"
if [ "$status" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$served_sqs" -eq 0 ] || [ "$served_events" -eq 0 ]; then
  echo "LocalStack leg: FAILED" >&2
  exit 1
fi
