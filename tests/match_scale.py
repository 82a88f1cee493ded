#!/usr/bin/env python3
"""Pairwise match quality of `mdm dedupe` clusters against a generated truth file.

    tests/match_scale.py DATA.csv TRUTH.csv CLUSTERS.csv

Prints one JSON object: precision, recall and F1 over record pairs; and recall on the true
pairs whose records differ in exactly one attribute (after trimming, lower-casing and dropping
punctuation; a value present in one record and missing in the other counts as a difference;
record ids, e-mail addresses, phone numbers and social security numbers are not attributes here).
Stdlib only.
"""
import csv
import json
import re
import sys
from collections import Counter, defaultdict

IGNORED = {"rec_id", "soc_sec_id", "email", "phone"}


def norm(v):
    return re.sub(r"[^0-9a-z]", "", v.lower())


def main(data, truth_path, clusters_path):
    with open(data, newline="", encoding="utf-8") as f:
        rows = {r["rec_id"]: r for r in csv.DictReader(f)}
    with open(truth_path, newline="", encoding="utf-8") as f:
        truth = {r["record_id"]: r["entity_id"] for r in csv.DictReader(f)}
    with open(clusters_path, newline="", encoding="utf-8") as f:
        cluster = {r["record_id"]: r["golden_id"] for r in csv.DictReader(f)}
    missing = [r for r in truth if r not in cluster]
    if missing:
        sys.exit(f"{len(missing)} records have no cluster, e.g. {missing[0]}")
    by_entity = defaultdict(list)
    for rec, e in truth.items():
        by_entity[e].append(rec)
    pairs = lambda n: n * (n - 1) // 2
    true_pairs = sum(pairs(len(m)) for m in by_entity.values())
    predicted = sum(pairs(n) for n in Counter(cluster.values()).values())
    tp = sum(pairs(n) for n in Counter((truth[r], c) for r, c in cluster.items()).values())
    attrs = [c for c in next(iter(rows.values())) if c not in IGNORED]
    one, one_found = 0, 0
    for members in by_entity.values():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                ra, rb = rows[a], rows[b]
                if sum(norm(ra[c]) != norm(rb[c]) for c in attrs) == 1:
                    one += 1
                    one_found += cluster[a] == cluster[b]
    precision = tp / predicted if predicted else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(json.dumps(dict(records=len(truth), true_pairs=true_pairs, precision=round(precision, 5),
                          recall=round(recall, 5), f1=round(f1, 5), one_attribute_pairs=one,
                          one_attribute_recall=round(one_found / one, 5) if one else 1.0)))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
