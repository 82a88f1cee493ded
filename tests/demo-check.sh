#!/usr/bin/env bash
# Runs README command 1 (infra/local/demo) as a fresh user would and checks what it prints:
# golden records with provenance ("showing N of M"), the open review tasks, the counts (records
# sent = written + duplicates + stale + rejected), agreement with the sample's ground truth, and
# the events the example subscriber received.
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
text = open(sys.argv[1], encoding="utf-8").read()
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
# Golden records: how many are shown, of how many.
shown, total = map(int, num(r"== Golden records \(showing (\d+) of (\d+)"))
blocks = re.findall(r"^  (?:customer|product) \S+  version \d+  members: ", text, re.M)
checks.append(("golden records: 'showing N of M' with N <= M, M every golden record, N those printed",
               shown <= total and total == int(cust) + int(prod) and shown == len(blocks) > 0))
# Records sent: every one ends in exactly one counter, and the sample's count is what was sent.
sample = sum(1 for f in ("crm", "erp", "webshop")
             for line in open(f"infra/local/sample/{f}.jsonl", encoding="utf-8") if line.strip())
sent, rhs = num(r"records sent\s+(\d+) = ([^\n]*)")
terms = {name: int(n) for n, name in re.findall(r"(\d+) (\w+)", rhs)}
checks.append(("records sent = written + duplicates + stale + rejected",
               int(sent) == sample and {"written", "duplicates", "stale", "rejected"} <= terms.keys()
               and int(sent) == sum(terms.values())))
checks.append(("out-of-order updates dropped as stale, broken records rejected",
               terms.get("stale") == 12 and terms.get("rejected") == 3))
# The web shop's files: each reported, every row read either stored or rejected by line and code.
reports = re.findall(r"file report\s+reports/(\w+)/webshop/\S+: (\d+) rows read, (\d+) stored, (\d+) rejected ?(.*)", text)
checks.append(("webshop files: a report each (customers, products), rows read = stored + rejected, the broken row named by line",
               sorted(r[0] for r in reports) == ["customer", "product"]
               and all(int(r[1]) == int(r[2]) + int(r[3]) for r in reports)
               and any(re.search(r"\(line \d+ id missing_field\)", r[4]) for r in reports)))
first, updates = map(int, num(r"written\s+(\d+) first versions \(one per source record\) \+ (\d+) updates"))
checks.append(("written = first versions + updates (the moved people's second versions)",
               first + updates == terms.get("written") and updates == 12))
# Review tasks: one line each, at most 10, the rest counted.
m = re.search(r"== Review tasks: (\d+) open[^\n]*\n(.*?)\n== Counts", text, re.S)
open_reviews, section = (int(m.group(1)), m.group(2)) if m else (-1, "")
listed = re.findall(r"^  (?:customer|product)\s+\S+/\S+  ~ \S+ \([^\n]*\)  score -?\d+\.\d", section, re.M)
more = re.search(r"… and (\d+) more", section)
(opened,) = num(r"review tasks opened\s+(\d+)")
checks.append(("review tasks: one line each (record, candidate, score), at most 10, '… and N more' for the rest",
               open_reviews >= 1 and len(listed) <= 10 and len(listed) + (int(more.group(1)) if more else 0) == open_reviews
               and open_reviews <= int(opened)))
(created,) = num(r"GoldenRecordCreated\s+(\d+)")
checks.append(("one GoldenRecordCreated per golden record", int(created) == int(cust) + int(prod)))
checks.append(("provenance printed, survivorship rules named as in the schema files and JSON (source_priority)",
               "<- crm/" in text and ", source_priority" in text
               and not re.search(r"\b(SourcePriority|MostRecent|MostFrequent|MostComplete|FirstNonEmpty|StewardPin)\b", text)))
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
