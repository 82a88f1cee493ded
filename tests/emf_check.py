#!/usr/bin/env python3
"""What the Lambda binaries print as CloudWatch Embedded Metric Format, checked against the EMF
specification (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
a root `_aws` with an integer `Timestamp` (ms) and `CloudWatchMetrics`, each directive with a
`Namespace`, `Dimensions` (arrays of at most 30 names, each a string member of the root) and
`Metrics` (at most 100, each a `Name` and an optional CloudWatch `Unit`), every named metric a
member of the root holding a number or a list of at most 100 numbers. Also: every function named
on the command line emitted at least one document.

    python3 tests/emf_check.py LOG FUNCTION...     # tests/lambda-smoke.sh runs it on cargo lambda watch's log
"""
import json
import sys

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def problems(doc):
    """What is wrong with one EMF document (an empty list: nothing)."""
    out = []
    aws = doc.get("_aws")
    if not isinstance(aws, dict):
        return ["no _aws object"]
    if not isinstance(aws.get("Timestamp"), int) or aws["Timestamp"] <= 0:
        out.append(f"_aws.Timestamp {aws.get('Timestamp')!r} is not a positive integer of milliseconds")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return out + ["_aws.CloudWatchMetrics is not a non-empty array"]
    for d in directives:
        ns = d.get("Namespace")
        if not isinstance(ns, str) or not 1 <= len(ns) <= 1024:
            out.append(f"Namespace {ns!r}")
        dims = d.get("Dimensions")
        if not isinstance(dims, list):
            out.append("Dimensions is not an array")
            dims = []
        for dim_set in dims:
            if not isinstance(dim_set, list) or len(dim_set) > 30:
                out.append(f"dimension set {dim_set!r}")
                continue
            for name in dim_set:
                if not isinstance(doc.get(name), str) or not doc[name]:
                    out.append(f"dimension {name!r} is not a string member of the root")
        metrics = d.get("Metrics")
        if not isinstance(metrics, list) or not metrics or len(metrics) > 100:
            out.append("Metrics is not an array of 1 to 100")
            continue
        for m in metrics:
            name = m.get("Name")
            if not isinstance(name, str) or not 1 <= len(name) <= 1024:
                out.append(f"metric name {name!r}")
                continue
            if "Unit" in m and m["Unit"] not in UNITS:
                out.append(f"{name}: unit {m['Unit']!r} is not a CloudWatch unit")
            v = doc.get(name)
            if number(v):
                continue
            if isinstance(v, list) and 1 <= len(v) <= 100 and all(number(x) for x in v):
                continue
            out.append(f"{name}: member {v!r} is not a number or a list of at most 100 numbers")
    return out


def main():
    log, wanted = sys.argv[1], set(sys.argv[2:])
    seen, bad, docs = {}, [], 0
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{") or '"_aws"' not in line:
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                bad.append(f"not JSON ({e}): {line[:120]}")
                continue
            docs += 1
            seen.setdefault(doc.get("Function"), set()).update(
                m["Name"] for d in doc["_aws"].get("CloudWatchMetrics", []) for m in d.get("Metrics", []) if "Name" in m
            )
            bad += [f"{doc.get('Function')}: {p}" for p in problems(doc)]
    missing = sorted(wanted - set(seen))
    for b in bad:
        print("FAIL " + b)
    for m in missing:
        print(f"FAIL function {m} emitted no EMF document")
    for fn in sorted(k for k in seen if k):
        print(f"ok   {fn}: {', '.join(sorted(seen[fn]))}")
    print(f"emf: {docs} documents, {len(bad)} problems, {len(missing)} functions silent")
    return 1 if bad or missing or docs == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
