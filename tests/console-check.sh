#!/usr/bin/env bash
# The steward console in a real browser: headless Chromium (Debian's chromium and chromium-driver,
# installed here when missing) driven by Selenium (tests/console_browser.py) against `mdm local
# console` on the running emulator, loaded with the sample data. Screenshots of the queue and of a
# golden record go to .local/console/ (docs/images/ holds copies). Expects moto running (tests/run
# starts it).
set -euo pipefail
source "$(dirname "$0")/../infra/local/lib.sh"
cd "$MDM_ROOT"
: "${AWS_ENDPOINT_URL:?the console check needs the emulator: start it first (tests/run does)}"
if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "== installing chromium and chromium-driver (Debian packages)"
    apt-get update -q > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver > /dev/null
  else
    echo "console check: FAILED — needs chromium and chromedriver (apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
fi
mkdir -p "$MDM_STATE" .local/console
resources="$MDM_STATE/console-resources-$$.json"
log="$MDM_STATE/console-$$.log"
"$MDM_VENV/bin/python" infra/local/bootstrap.py --prefix "console-$$" > "$resources"
cargo build --quiet -p mdm-cli --features aws
MDM_EMF=off RUST_LOG=warn target/debug/mdm local console --resources "$resources" --data infra/local/sample \
  --port 0 > "$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 600); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -n1 || true)
  [ -n "$url" ] && break
  if ! kill -0 "$server" 2>/dev/null; then
    echo "console check: FAILED — mdm local console exited:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  sleep 0.5
done
[ -n "$url" ] || { echo "console check: FAILED — the console did not start in 300 s" >&2; tail -n 20 "$log" >&2; exit 1; }
echo "== $(grep -m1 'steward console at' "$log")"
"$MDM_VENV/bin/python" tests/console_browser.py "$url" .local/console
