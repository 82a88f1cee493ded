#!/usr/bin/env python3
"""Match quality of `mdm dedupe` next to Splink 4 on the same data, in one run.

    bench/quality.py [--sets febrl4,people,products] [--people-records N] [--products-records N]
        [--seed S] [--skip-splink] [--splink-max-pairs N] [--runs N] [--mdm target/release/mdm] [--json FILE]

Runs with any python3 (stdlib only); Splink runs with this python if it has Splink, else with the
bench venv (.venv-bench, made on first use by bench/venv.sh). mdm: `cargo build --release --bin mdm`.

Sets:
  febrl4    link task: .local/data/febrl4/febrl4{a,b}.csv (bench/febrl4.sh), 5,000 true links;
            truth from the rec ids (rec-N-org ~ rec-N-dup-0); only cross-file pairs count
  people    dedupe of one file from `mdm generate people`   (truth: people.truth.csv)
  products  dedupe of one file from `mdm generate products` (truth: products.truth.csv)

Each tool runs as its own process (mdm: the release binary; Splink: bench/splink_run.py) and
writes `source,record_id,golden_id`. From the clusters: pairwise precision, recall
and F1, the number of clusters against true entities, and the share of true entities reproduced
exactly as one cluster; from the process: wall seconds, records/s and peak RSS (os.wait4; for
mdm its own summary line, as wait4 also counts the harness memory the child held before exec).
With --runs N each tool runs N times in a row on each set; the table shows the fastest run's wall
time (and every run's), the clusters of the first. A process's first page faults cost more on
this kind of virtual machine right after another process freed a lot of memory, so a single run
measures in part what ran before it. Work files go to .local/bench/quality/.
"""
import argparse
import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
WORK = os.path.join(ROOT, ".local", "bench", "quality")


# ----------------------------------------------------------------------------------- data sets
def febrl4_set(args):
    out = subprocess.run([os.path.join(BENCH, "febrl4.sh")], check=True, stdout=subprocess.PIPE, text=True)
    data = out.stdout.strip().splitlines()[-1]
    files = [os.path.join(data, "febrl4a.csv"), os.path.join(data, "febrl4b.csv")]
    truth = {}
    for path in files:
        src = stem(path)
        for row in read_csv(path):
            m = re.fullmatch(r"rec-(\d+)-(?:org|dup-\d+)", row["rec_id"])
            if not m:
                sys.exit(f"{path}: unexpected rec_id {row['rec_id']!r}")
            truth[(src, row["rec_id"])] = m.group(1)
    return dict(name="febrl4", entity="customer", task="link", files=files, truth=truth)


def generated_set(kind, entity, records, args):
    data = os.path.join(ROOT, ".local", "data", f"{kind}-{records}-s{args.seed}")
    path = os.path.join(data, f"{kind}.csv")
    truth_path = os.path.join(data, f"{kind}.truth.csv")
    # Generated every run (it takes well under a second): the files follow the generator's version.
    os.makedirs(data, exist_ok=True)
    cmd = [args.mdm, "generate", kind, "--records", str(records), "--seed", str(args.seed), "--out", data]
    print("$ " + " ".join(cmd), file=sys.stderr)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 or not (os.path.exists(path) and os.path.exists(truth_path)):
        sys.exit(f"`{' '.join(cmd)}` failed ({r.returncode}):\n{r.stderr.strip()}")
    return dict(name=kind, entity=entity, task="dedupe", files=[path], truth=load_truth(truth_path, stem(path)))


def load_truth(path, default_source):
    """`record_id,entity_id` (optionally with a `source` column) → {(source, record_id): entity}."""
    truth = {}
    for row in read_csv(path):
        truth[(row.get("source") or default_source, row["record_id"])] = row["entity_id"]
    return truth


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, skipinitialspace=True):
            yield {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}


def stem(path):
    """mdm's source system for a file: its stem, lower case, unusual characters as '_'."""
    s = os.path.splitext(os.path.basename(path))[0].lower()
    return re.sub(r"[^0-9a-z_.-]", "_", s)[:64] or "file"


# ----------------------------------------------------------------------------------- running
def run_measured(cmd, log_path):
    """Run a command; return (exit code, wall seconds, peak RSS MiB) of the child process."""
    with open(log_path, "w") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_maxrss / 1024.0  # ru_maxrss is KiB on Linux


def run_tool(tool, ds, args):
    work = os.path.join(WORK, ds["name"])
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, f"{tool}.csv")
    log = os.path.join(work, f"{tool}.log")
    timings = os.path.join(work, f"{tool}.timings.json")
    if tool == "mdm":
        cmd = [args.mdm, "dedupe", "--entity", ds["entity"], "--id-column", "rec_id", "--out", out, *ds["files"]]
    else:
        cmd = [args.splink_python, os.path.join(BENCH, "splink_run.py"), "--entity", ds["entity"], "--id-column",
               "rec_id", "--max-pairs", str(args.splink_max_pairs), "--timings", timings, "--out", out, *ds["files"]]
        if ds["task"] == "link":
            cmd += ["--link-type", "link_only"]
    print(f"== {ds['name']}: {tool} ...", file=sys.stderr, flush=True)
    walls, peaks, clusters, phases = [], [], None, None
    for run in range(max(1, args.runs)):
        for stale in (out, timings):
            if os.path.exists(stale):
                os.remove(stale)
        code, wall, peak = run_measured(cmd, log)
        if code != 0 or not os.path.exists(out):
            tail = open(log, errors="replace").read()[-3000:]
            print(f"!! {tool} failed on {ds['name']} (exit {code}); log {log}:\n{tail}", file=sys.stderr)
            return dict(tool=tool, ok=False, exit=code, wall_s=wall, peak_mib=peak, log=log)
        walls.append(wall)
        if tool == "mdm":
            # wait4's peak counts the harness's own memory, which the child held between fork
            # and exec; mdm's summary line gives its own (VmHWM after exec).
            own = re.search(r"peak memory (\d+) MiB", open(log, errors="replace").read())
            peak = float(own.group(1)) if own else peak
        peaks.append(peak)
        if clusters is None:
            clusters = {(r["source"], r["record_id"]): r["golden_id"] for r in read_csv(out)}
            if os.path.exists(timings):
                phases = json.load(open(timings))
    best = min(range(len(walls)), key=walls.__getitem__)
    wall = walls[best]
    res = dict(tool=tool, ok=True, wall_s=wall, wall_runs_s=walls, peak_mib=max(peaks),
               records_per_s=len(ds["truth"]) / wall, output=out, log=log)
    res.update(score(clusters, ds["truth"], cross_source_only=ds["task"] == "link"))
    if phases is not None:
        res["phases_s"] = phases
    return res


def splink_python():
    """This python if it has Splink, else the bench venv's (made or updated by bench/venv.sh)."""
    if importlib.util.find_spec("splink") is not None:
        return sys.executable
    out = subprocess.run([os.path.join(BENCH, "venv.sh")], check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip().splitlines()[-1]


# ----------------------------------------------------------------------------------- metrics
def pair_count(group, cross_source_only):
    """Pairs among the records of one group; with cross_source_only, only pairs from two sources."""
    n = sum(group.values())
    if cross_source_only:
        return (n * n - sum(c * c for c in group.values())) // 2
    return n * (n - 1) // 2


def score(clusters, truth, cross_source_only):
    missing = [k for k in truth if k not in clusters]
    extra = [k for k in clusters if k not in truth]
    # A record the tool did not report is its own cluster.
    pred = {k: clusters.get(k, f"\0missing:{k}") for k in truth}
    by_cluster, by_entity, by_both = defaultdict(Counter), defaultdict(Counter), defaultdict(Counter)
    members_c, members_e = defaultdict(set), defaultdict(set)
    for key, entity in truth.items():
        c, src = pred[key], key[0]
        by_cluster[c][src] += 1
        by_entity[entity][src] += 1
        by_both[(c, entity)][src] += 1
        members_c[c].add(key)
        members_e[entity].add(key)
    predicted = sum(pair_count(g, cross_source_only) for g in by_cluster.values())
    true = sum(pair_count(g, cross_source_only) for g in by_entity.values())
    tp = sum(pair_count(g, cross_source_only) for g in by_both.values())
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    exact = sum(1 for e, m in members_e.items() if members_c[pred[next(iter(m))]] == m)
    return dict(records=len(truth), true_entities=len(members_e), clusters=len(members_c), true_pairs=true,
                predicted_pairs=predicted, true_positive_pairs=tp, false_positive_pairs=predicted - tp,
                false_negative_pairs=true - tp, precision=precision, recall=recall, f1=f1,
                entities_exact=exact / len(members_e) if members_e else 1.0,
                missing_records=len(missing), unknown_records=len(extra))


# ----------------------------------------------------------------------------------- report
def table(ds, results):
    tools = [r for r in results if r]
    head = f"{'':28}" + "".join(f"{r['tool']:>14}" for r in tools)
    task = "link (cross-file pairs)" if ds["task"] == "link" else "dedupe"
    lines = [f"\n== {ds['name']}: {task}, {len(ds['files'])} file(s), {len(ds['truth'])} records", head]

    def row(label, key, fmt):
        cells = []
        for r in tools:
            v = r.get(key)
            cells.append(f"{'failed' if not r['ok'] and key not in r else (fmt.format(v) if v is not None else '-'):>14}")
        lines.append(f"{label:28}" + "".join(cells))

    row("precision", "precision", "{:.4f}")
    row("recall", "recall", "{:.4f}")
    row("F1", "f1", "{:.4f}")
    row("true pairs", "true_pairs", "{:,}")
    row("predicted pairs", "predicted_pairs", "{:,}")
    row("false positive pairs", "false_positive_pairs", "{:,}")
    row("false negative pairs", "false_negative_pairs", "{:,}")
    row("clusters", "clusters", "{:,}")
    row("true entities", "true_entities", "{:,}")
    row("entities exactly one cluster", "entities_exact", "{:.4f}")
    row("wall s", "wall_s", "{:.2f}")
    if any(len(r.get("wall_runs_s", [])) > 1 for r in tools):
        lines.append(f"{'wall s, every run':28}" + "".join(
            f"{' ' + ' '.join(f'{w:.2f}' for w in r.get('wall_runs_s', [])):>14}" for r in tools))
    row("records/s", "records_per_s", "{:,.0f}")
    row("peak MiB", "peak_mib", "{:,.0f}")
    by = {r["tool"]: r for r in tools}
    if "mdm" in by and "splink" in by and by["mdm"]["ok"] and by["splink"]["ok"]:
        lines.append(f"{'splink wall / mdm wall':28}{by['splink']['wall_s'] / by['mdm']['wall_s']:>14.1f}x")
    for r in tools:
        if r.get("phases_s"):
            lines.append(f"{r['tool']} phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["phases_s"].items()))
        if r.get("missing_records"):
            lines.append(f"note: {r['tool']} reported no cluster for {r['missing_records']} records (counted as singletons)")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="febrl4,people,products")
    ap.add_argument("--people-records", type=int, default=10000)
    ap.add_argument("--products-records", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--skip-splink", action="store_true")
    ap.add_argument("--mdm", default=os.path.join(ROOT, "target", "release", "mdm"))
    ap.add_argument("--splink-max-pairs", type=float, default=2e6, help="pairs for Splink's u estimation")
    ap.add_argument("--runs", type=int, default=1, help="runs of each tool per set; the fastest counts")
    ap.add_argument("--json", help="write a JSON summary here")
    args = ap.parse_args()
    args.mdm = os.path.abspath(args.mdm)
    if not os.access(args.mdm, os.X_OK):
        sys.exit(f"{args.mdm}: not found; build it with `cargo build --release --bin mdm`")
    args.splink_python = None if args.skip_splink else splink_python()

    summary = dict(mdm=args.mdm, seed=args.seed, sets={})
    reports = []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if name == "febrl4":
            ds = febrl4_set(args)
        elif name == "people":
            ds = generated_set("people", "customer", args.people_records, args)
        elif name == "products":
            ds = generated_set("products", "product", args.products_records, args)
        else:
            sys.exit(f"unknown set {name!r} (febrl4, people, products)")
        results = [run_tool("mdm", ds, args)]
        if not args.skip_splink:
            results.append(run_tool("splink", ds, args))
        report = table(ds, results)
        print(report, flush=True)
        reports.append(report)
        entry = dict(task=ds["task"], entity=ds["entity"], files=ds["files"], records=len(ds["truth"]),
                     tools={r["tool"]: r for r in results})
        by = entry["tools"]
        if "splink" in by and by["mdm"]["ok"] and by["splink"]["ok"]:
            entry["splink_over_mdm_wall"] = by["splink"]["wall_s"] / by["mdm"]["wall_s"]
        summary["sets"][name] = entry
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
        print(f"\nsummary: {args.json}", file=sys.stderr)
    failed = [n for n, e in summary["sets"].items() for r in e["tools"].values() if not r["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
