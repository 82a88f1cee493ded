#!/usr/bin/env bash
# The bench venv: .venv-bench/ at the repository root with the pins of bench/requirements.txt
# (Splink 5, DuckDB, pyarrow, pandas, ...) for bench/quality.py and bench/splink_run.py.
#
# Usage: bench/venv.sh              create or update it; prints the venv's python as the last line
#        source bench/venv.sh       the same, and sets BENCH_VENV and BENCH_PYTHON in your shell
#
# Idempotent: a sha256 of requirements.txt is stamped into the venv; when it matches, nothing is
# installed (works offline once installed). When it does not (new pins), the venv
# is made again from scratch, so no package of earlier pins is left in it. Needs python3 (3.10+;
# the pins were checked on 3.11) and access to PyPI the first time.
bench_venv() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
  BENCH_VENV="$root/.venv-bench"
  BENCH_PYTHON="$BENCH_VENV/bin/python"
  local req="$root/bench/requirements.txt" stamp="$BENCH_VENV/.requirements.sha" want
  want=$(sha256sum "$req" | cut -d' ' -f1) || return 1
  if [ -x "$BENCH_PYTHON" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "== installing bench/requirements.txt into $BENCH_VENV (splink 5, duckdb, pyarrow, pandas) ..." >&2
  python3 -m venv --clear "$BENCH_VENV" >&2 || return 1
  "$BENCH_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2 || return 1
  "$BENCH_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 || return 1
  "$BENCH_VENV/bin/pip" check --disable-pip-version-check >&2 || return 1
  "$BENCH_PYTHON" -c 'import splink, duckdb, pandas, pyarrow; assert splink.__version__.startswith("5."), splink.__version__' >&2 || return 1
  echo "$want" > "$stamp"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  bench_venv
  echo "$BENCH_PYTHON"
else
  bench_venv && export BENCH_VENV BENCH_PYTHON
fi
