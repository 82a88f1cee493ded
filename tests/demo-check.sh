#!/usr/bin/env bash
# Runs README command 1 (infra/local/demo) as a fresh user would and checks what it prints:
# golden records with provenance, the counts, agreement with the sample's ground truth, and the
# events the example subscriber received.
#   tests/demo-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=.local/demo.out
mkdir -p .local
if ! infra/local/demo > "$out" 2>&1; then
  tail -40 "$out"; echo "demo: 0 passed, 1 failed"; exit 1
fi
python3 - "$out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def num(pattern):
    m = re.search(pattern, text)
    if not m:
        sys.exit(f"demo output lacks {pattern!r}")
    return m.groups()
checks = []
p, r = map(float, num(r"pairwise precision ([0-9.]+), recall ([0-9.]+)"))
checks.append(("agreement with ground truth >= 0.98", p >= 0.98 and r >= 0.98))
(cust,) = num(r"golden records \(customer\) (\d+)")
(prod,) = num(r"golden records \(product \) (\d+)")
checks.append(("120 customers and 40 products", (int(cust), int(prod)) == (120, 40)))
(stale,) = num(r"stale drops (\d+)")
checks.append(("out-of-order updates dropped", int(stale) == 12))
(created,) = num(r"GoldenRecordCreated\s+(\d+)")
checks.append(("one GoldenRecordCreated per golden record", int(created) == int(cust) + int(prod)))
checks.append(("provenance printed", "<- crm/" in text and "SourcePriority" in text))
m = re.search(r"reindex run '[^']+': complete — (.*)", text)
counts = dict((k, int(v)) for v, k in (p.split(" ")[::-1] for p in m.group(1).split(", "))) if m else {}
# The steward's split adds one golden record before the reindex.
checks.append(("mdm reindex: every golden record current", counts.get("current") == int(cust) + int(prod) + 1 and not counts.get("rebuilt") and not counts.get("failed")))
checks.append(("steward: a review resolved through the steward handler", re.search(r"review resolved: distinct \(200\), by local-steward", text) is not None))
checks.append(("steward: a golden record split", re.search(r"split \(200\): \S+ v\d+", text) is not None and "kept apart from now on" in text))
checks.append(("steward: a value pinned", re.search(r"pin \(200\): locality .* rule steward_pin", text) is not None))
m = re.search(r"events of the corrections: \{(.*)\}", text)
checks.append(("steward: their events published", m is not None and "GoldenRecordSplit" in m.group(1) and "ReviewTaskResolved" in m.group(1)))
failed = [name for name, ok in checks if not ok]
for name, ok in checks:
    print(("ok   " if ok else "FAIL ") + name)
print(f"demo: {len(checks) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
PY
