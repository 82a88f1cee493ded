#!/usr/bin/env bash
# Smoke-tests the built Lambda binaries the way a developer runs them locally: `cargo lambda watch`
# serves the Lambda runtime API, `cargo lambda invoke --data-file events/<function>.json` sends each
# sample event, and the answers are checked. Runs against the emulator in AWS_ENDPOINT_URL (tests/run
# starts it) on resources bootstrapped from infra/template.yaml. The metric documents the functions
# print are checked against the EMF specification (tests/emf_check.py).
#   tests/lambda-smoke.sh
set -euo pipefail
source "$(dirname "$0")/../infra/local/lib.sh"
cd "$MDM_ROOT"
: "${AWS_ENDPOINT_URL:?start the emulator first (tests/run does)}"
CL="$MDM_VENV/bin/cargo-lambda"
res="$MDM_STATE/smoke-resources.json"
envfile="$MDM_STATE/lambda.env"
"$MDM_VENV/bin/python" infra/local/bootstrap.py --prefix "smoke-$$" > "$res"
mdm_lambda_env "$res" "$envfile"
# The functions print their metrics (EMF) as in Lambda: checked against the specification below.
sed -i 's/^MDM_EMF=off$/MDM_EMF=on/' "$envfile"
# The files event names the stack's bucket and a file dropped there for a source system without a feed.
bucket=$("$MDM_VENV/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["resources"]["FilesBucket"]["ref"])' "$res")
sed "s/BUCKET/$bucket/g" events/files.json > "$MDM_STATE/files-event.json"
"$MDM_VENV/bin/python" -c 'import boto3, sys; boto3.client("s3").put_object(Bucket=sys.argv[1], Key="incoming/customer/nosuch/smoke.csv", Body=b"id\n1\n")' "$bucket"
echo "== building the eight functions (debug)"
cargo build --quiet -p mdm-ingest -p mdm-match -p mdm-merge -p mdm-publish -p mdm-api -p mdm-erasure -p mdm-steward -p mdm-files
port=$(mdm_free_port)
"$CL" lambda watch -A 127.0.0.1 -P "$port" --env-file "$envfile" > "$MDM_STATE/watch.log" 2>&1 &
watch_pid=$!
trap 'kill $watch_pid 2>/dev/null || true; wait $watch_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done
failures=0
check() { # binary event (under events/, or a path) python-expression-on-r
  local bin=$1 event=$2 expr=$3 out file
  file=$event; [[ $event == */* ]] || file="events/$event"
  if ! out=$("$CL" lambda invoke "$bin" --data-file "$file" -A 127.0.0.1 -P "$port" --output-format json 2>&1); then
    echo "FAIL $bin $event: invoke failed: $out"; failures=$((failures + 1)); return
  fi
  if "$MDM_VENV/bin/python" -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($expr) else 1)" "$out"; then
    echo "ok   $bin < $file"
  else
    echo "FAIL $bin $event: unexpected answer: $out"; failures=$((failures + 1))
  fi
}
check mdm-ingest ingest-http.json 'r["statusCode"] == 202 and json.loads(r["body"])["stored"] == 1 and len(json.loads(r["body"])["rejected"]) == 1'
check mdm-ingest ingest-sqs.json 'r["batchItemFailures"] == []'
check mdm-match match.json 'r["batchItemFailures"] == []'
check mdm-merge merge.json 'r["batchItemFailures"] == []'
check mdm-publish publish.json 'r["batchItemFailures"] == []'
# The sweep publishes what the stream did not deliver: here the event of the golden record that
# merge.json created (nothing plays the stream in this test).
check mdm-publish publish-sweep.json 'r["delivered"] >= 1 and r["failed"] == 0'
# The read API sees what merge.json created: the source key resolves, and an order is enriched
# with the customer resolved and each unresolvable line answered in its place.
check mdm-api api-xref.json 'r["statusCode"] == 200 and json.loads(r["body"])["goldenId"].startswith("g")'
check mdm-steward steward-backlog.json '[e["entityType"] for e in r["entities"]] == ["customer", "product"] and all(e["openReviews"] == 0 for e in r["entities"])'
check mdm-steward steward-console.json 'r["statusCode"] == 200 and r["body"].startswith("<!doctype html>") and r["headers"]["content-security-policy"].startswith("default-src \x27self\x27")'
check mdm-steward steward-reviews.json 'r["statusCode"] == 200 and json.loads(r["body"])["items"] == [] and json.loads(r["body"])["nextCursor"] is None'
check mdm-erasure erasure-http.json 'r["statusCode"] == 202 and json.loads(r["body"])["receipt"]["goldenIds"][0].startswith("g")'
check mdm-files "$MDM_STATE/files-event.json" 'r["batchItemFailures"] == []'
check mdm-api api-enrich.json 'r["statusCode"] == 200 and json.loads(r["body"])["customer"]["goldenId"].startswith("g") and [l["error"]["code"] for l in json.loads(r["body"])["lines"]] == ["unknown_source", "unknown_identifier"]'
# The invocations did real work on the emulator: the HTTP record was stored, the merge event
# created its golden record, and the match handler queued a decision for the merge queue.
if "$MDM_VENV/bin/python" - "$res" <<'PY'
import json, sys, boto3
res = json.load(open(sys.argv[1]))
table = res["resources"]["HubTable"]["ref"]
items = boto3.client("dynamodb").scan(TableName=table)["Items"]
pks = [i["pk"]["S"] for i in items]
golden = [p for p in pks if p.startswith("GOLD#customer#")]
source = [p for p in pks if p == "SRC#customer#crm#C-sample"]
product = [p for p in pks if p == "SRC#product#erp#P-sample"]
merge_q = res["resources"]["MergeQueue"]["QueueUrl"]
queued = int(boto3.client("sqs").get_queue_attributes(QueueUrl=merge_q, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
bucket = res["resources"]["FilesBucket"]["ref"]
report = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key="reports/customer/nosuch/smoke.csv.json")["Body"].read())
file_failed = report["status"] == "failed" and report["error"]["code"] == "unknown_source_system"
ok = len(golden) >= 1 and source and product and queued == 1 and file_failed
print(("ok  " if ok else "FAIL") + f" effects: {len(source)} customer source, {len(product)} product source, {len(golden)} golden items, {queued} merge message, file report {report['status']} {report.get('error', {}).get('code')}")
sys.exit(0 if ok else 1)
PY
then :; else failures=$((failures + 1)); fi
# Every function's metric documents follow the Embedded Metric Format specification.
if "$MDM_VENV/bin/python" tests/emf_check.py "$MDM_STATE/watch.log" ingest match merge publish api steward erasure files; then :; else
  failures=$((failures + 1))
fi
echo "smoke: $((14 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ] || { echo "--- cargo lambda watch log"; tail -50 "$MDM_STATE/watch.log"; exit 1; }
