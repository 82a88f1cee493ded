#!/usr/bin/env bash
# Benchmark (not a test; tests/run does not call it), figures in docs/benchmarks.md "Cold start":
# the seven Lambda functions' zipped bootstrap size and init time.
#
# Usage: bench/coldstart.sh [RUNS=20]
#
# 1. Builds all seven functions in one `cargo lambda build --release --output-format zip` (fat LTO:
#    a clean build takes 15-30 min on 2 cores), for arm64 as the template deploys them when the
#    aarch64-unknown-linux-gnu Rust target and zig are installed, otherwise for x86_64 (it says so).
# 2. Starts each bootstrap RUNS times (after one discarded warm-up start) against a local Lambda
#    Runtime API (bench/coldstart_runtime.py) and times process spawn -> first
#    `GET /2018-06-01/runtime/invocation/next`. An arm64 build is timed on an x86_64 build with the
#    same release settings; an x86_64 build is timed on the bootstrap from its zip.
# Prints a Markdown table (1 MB = 10^6 bytes) on stdout, build output on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../infra/local/lib.sh
source infra/local/lib.sh
mdm_setup
export PATH="$MDM_VENV/bin:$PATH"

runs=${1:-20}
functions=(mdm-ingest mdm-match mdm-merge mdm-publish mdm-api mdm-steward mdm-erasure)
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done
target_dir=${CARGO_TARGET_DIR:-$MDM_ROOT/target}

arch=x86_64 arch_flag=--x86-64
installed=$(if command -v rustup >/dev/null; then rustup target list --installed; fi)
if grep -qx aarch64-unknown-linux-gnu <<< "$installed" && python -c 'import ziglang' 2>/dev/null; then
  arch=arm64 arch_flag=--arm64
else
  echo "== arm64 cannot be built here (needs the aarch64-unknown-linux-gnu Rust target and zig): building x86_64" >&2
fi

echo "== cargo lambda build --release $arch_flag --output-format zip (${functions[*]})" >&2
cargo lambda build --release "$arch_flag" --output-format zip "${packages[@]}" >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$arch" = arm64 ]; then
  echo "== cargo lambda build --release --x86-64 (the host binaries whose init is timed)" >&2
  cargo lambda build --release --x86-64 --lambda-dir "$target_dir/lambda-host" "${packages[@]}" >&2
fi

# Sizes from each zip, and the binary to time: NAME=PATH arguments for the driver.
sizes="$work/sizes.tsv"
specs=()
for f in "${functions[@]}"; do
  zip="$target_dir/lambda/$f/bootstrap.zip"
  [ -s "$zip" ] || { echo "coldstart: $zip was not built" >&2; exit 1; }
  python - "$f" "$zip" "$work/$f" >> "$sizes" <<'PY'
import os, sys, zipfile
name, path, out = sys.argv[1:]
with zipfile.ZipFile(path) as z:
    info = z.getinfo("bootstrap")
    z.extract(info, out)
os.chmod(os.path.join(out, "bootstrap"), 0o755)
print(f"{name}\t{os.path.getsize(path)}\t{info.file_size}")
PY
  if [ "$arch" = arm64 ]; then
    specs+=("$f=$target_dir/lambda-host/$f/bootstrap")
  else
    specs+=("$f=$work/$f/bootstrap")
  fi
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== init time: ${#functions[@]} functions x $runs starts (+1 warm-up each), round robin" >&2
python bench/coldstart_runtime.py --runs "$runs" "${specs[@]}" > "$work/init.tsv"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "| function | zipped bootstrap (MB) | bootstrap unzipped (MB) | init median (ms) | init p90 (ms) |"
echo "|---|---:|---:|---:|---:|"
# Both files list the functions in the same order.
paste "$sizes" "$work/init.tsv" | awk -F'\t' -v n="${#functions[@]}" '
  $1 != $4 { print "coldstart: results out of order: " $1 " vs " $4 > "/dev/stderr"; exit 1 }
  { printf "| %s | %.2f | %.2f | %.1f | %.1f |\n", $1, $2 / 1e6, $3 / 1e6, $5, $6; rows++ }
  END { if (rows != n) { print "coldstart: " rows " results for " n " functions" > "/dev/stderr"; exit 1 } }'
echo
echo "$arch zips; init timed on $(uname -m) ($(nproc) cores), $runs starts each; load average $load_before before, $load_after after."
