#!/usr/bin/env python3
"""Splink 5 (DuckDB backend) on the same CSV files as `mdm dedupe`, writing the same output:
`source,record_id,golden_id` (source = file stem, golden_id = Splink cluster id). bench/quality.py
runs this as a separate process (in the bench venv, bench/venv.sh) to measure its wall time and
peak memory.

    splink_run.py --entity customer|product --id-column rec_id --out OUT.csv [--threshold P]
                  [--model-variant NAME] [--link-type link_only|dedupe_only|link_and_dedupe]
                  [--max-pairs N] [--seed S] [--map COLUMN=ATTRIBUTE ...] [--timings FILE.json]
                  [--save-model FILE.json] FILE.csv [FILE.csv ...]
    splink_run.py ... --truth TRUTH.csv --tune OUT.json FILE.csv ...          (not timed)
    splink_run.py ... --truth TRUTH.csv --completeness OUT.json FILE.csv ...  (not timed)

One file: dedupe_only. Several files: link_only unless --link-type says otherwise. --map renames
an input column as `mdm dedupe --map` does (FEBRL's surname → family_name, ...). The model, with
its variants, is in bench/splink_settings.py (`python bench/splink_settings.py customer` prints
it as Splink's JSON). It is trained the way Splink's tutorials do it: λ from deterministic rules
with an assumed recall, u by random sampling (--max-pairs, --seed), m by EM over two
blocking-rule sessions; then predict() and cluster_pairwise_predictions_at_threshold()
(connected components) at match probability --threshold. Every input record is in the output;
records without a pair are singleton clusters. Progress and phase times go to stderr, with
Splink's own log.

--tune: on a set with known truth (TRUTH.csv: source,record_id,entity_id), for each variant of
the model: train, predict every pair with match probability ≥ 0.001, and sweep the threshold over
every predicted pair's probability, counting the pairwise precision, recall and F1 of the
clusters at each (connected components, counted incrementally; the measure bench/quality.py
reports, on a link task only pairs across files). Keeps the variant and threshold with the best
F1 among those whose precision reaches --min-precision (0.999; the best F1 of all when none does,
as `mdm train` chooses its link threshold) and checks that F1 by clustering with Splink at that
threshold. Writes {threshold, variant, precision, recall, f1, pairs_completeness, variants_tried
(each with its best F1 of all), curve}.

--completeness: no training; the pairs completeness of the prediction blocking rules only.

Pairs completeness: the share of true pairs (from TRUTH.csv; on a link task only pairs across
files) that at least one of the prediction blocking rules puts in a comparison, i.e. that are
among the pairs of linker.inference.deterministic_link() (Splink's own blocking with the
prediction rules: the pairs predict() scores).
"""
import argparse
import csv
import datetime as dt
import json
import logging
import os
import re
import sys
import time
from collections import Counter, defaultdict

T0 = time.monotonic()

import pandas as pd
from splink import DuckDBAPI, Linker

import splink_settings

THRESHOLD = 0.5  # match probability for predict() and for clustering when --threshold is not given
TUNE_FLOOR = 1e-3  # --tune: pairs below this match probability are not considered as links
PHASES = {}  # phase → seconds, for --timings


def log(msg, phase=None):
    if phase:
        PHASES[phase] = round(time.monotonic() - T0 - sum(PHASES.values()), 3)
    print(f"[splink {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- preparation
def source_of(path):
    """The source system of a file, as mdm names it: the stem, lower case, other characters '_'."""
    s = os.path.splitext(os.path.basename(path))[0].lower()
    return re.sub(r"[^0-9a-z_.-]", "_", s)[:64] or "file"


DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m/%d/%Y", "%Y/%m/%d", "%d %b %Y",
                "%d %B %Y", "%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y")


def iso_date(value):
    """Dates in any common format → YYYY-MM-DD; anything unparseable is kept as it is (Splink's
    DateOfBirthComparison then treats it as null)."""
    if value is None:
        return None
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).strftime("%Y-%m-%d")
        except ValueError:
            pass
    return value


UNITS = {"g": ("g", 1), "gram": ("g", 1), "grams": ("g", 1), "kg": ("g", 1000), "kilogram": ("g", 1000),
         "ml": ("ml", 1), "millilitre": ("ml", 1), "millilitres": ("ml", 1), "l": ("ml", 1000), "litre": ("ml", 1000),
         "litres": ("ml", 1000), "liter": ("ml", 1000), "liters": ("ml", 1000)}


def canonical_size(value):
    """Pack sizes in one form: `0.5 kg`, `500 grams`, `500G` → `500g`; `1.25 L` → `1250ml`; any
    count (`25 bags`, `25pk`, `25 pack`) → `25x`."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]+)", value)
    if not m:
        return value
    number, unit = float(m.group(1)), m.group(2)
    if unit in UNITS:
        base, factor = UNITS[unit]
        return f"{number * factor:g}{base}"
    return f"{number:g}x"


def clean_text(series):
    s = series.fillna("").astype(str).str.strip().str.lower()
    s = s.str.replace(r"\s+", " ", regex=True)
    return s.where(s != "", None)


def prepare(df, entity):
    """The usual Splink-side cleaning: lower case, trimmed, empty → null, dates to ISO, phones and
    GTINs to digits, and a few derived columns for blocking."""
    df = df.copy()
    for col in df.columns:
        if col not in ("source_dataset", "unique_id"):
            df[col] = clean_text(df[col])
    if entity == "customer":
        if "date_of_birth" in df:
            df["date_of_birth"] = df["date_of_birth"].map(iso_date, na_action="ignore")
        if "phone" in df:
            digits = df["phone"].str.replace(r"\D", "", regex=True)
            # The national number: drop country code / trunk prefix differences.
            df["phone"] = digits.str[-9:].where(digits.str.len() >= 6, None)
        if "postcode" in df:
            df["postcode"] = df["postcode"].str.replace(" ", "", regex=False)
    else:
        if "gtin" in df:
            g = df["gtin"].str.replace(r"\D", "", regex=True).str.lstrip("0")
            df["gtin"] = g.where(g.str.len() > 0, None)
        if "sku" in df:
            s = df["sku"].str.replace(r"[^0-9a-z]", "", regex=True)
            df["sku"] = s.where(s.str.len() > 0, None)
        if "name" in df:
            df["name_tok1"] = df["name"].str.split(" ").str[0]
        if "size" in df:
            df["size"] = df["size"].map(canonical_size, na_action="ignore")
    return df



# ----------------------------------------------------------------------------------- truth
def load_truth(path):
    """TRUTH.csv (source,record_id,entity_id) → {(source, record_id): entity}."""
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["source"], r["record_id"]): r["entity_id"] for r in csv.DictReader(f)}


def true_pair_count(truth, cross_source_only):
    by_entity = defaultdict(Counter)
    for (src, _), e in truth.items():
        by_entity[e][src] += 1
    total = 0
    for g in by_entity.values():
        n = sum(g.values())
        total += (n * n - sum(c * c for c in g.values())) // 2 if cross_source_only else n * (n - 1) // 2
    return total


def pairs_completeness(linker, db, truth, cross_source_only):
    """The share of true pairs among the pairs the prediction blocking rules generate."""
    blocked = linker.inference.deterministic_link()
    t = pd.DataFrame([(s, r, e) for (s, r), e in truth.items()], columns=["source", "record_id", "entity_id"])
    con = db.duckdb_con
    con.register("__bench_truth", t)
    cols = {c.unquote().name for c in blocked.columns}
    src_l = "b.source_dataset_l" if "source_dataset_l" in cols else f"'{next(iter(truth))[0]}'"
    src_r = "b.source_dataset_r" if "source_dataset_r" in cols else f"'{next(iter(truth))[0]}'"
    blocked_n, found = con.execute(f"""
        select count(*), count(*) filter (where tl.entity_id = tr.entity_id)
        from {blocked.physical_name} b
        left join __bench_truth tl on tl.source = {src_l} and tl.record_id = cast(b.unique_id_l as varchar)
        left join __bench_truth tr on tr.source = {src_r} and tr.record_id = cast(b.unique_id_r as varchar)
    """).fetchall()[0]
    total = true_pair_count(truth, cross_source_only)
    blocked.drop_table_from_database_and_remove_from_cache()
    return dict(pairs_completeness=found / total if total else 1.0, true_pairs=total,
                true_pairs_blocked=found, blocked_pairs=blocked_n)


def ranks_above(a, b, min_precision):
    """Whether threshold point a is to be chosen over b: one whose precision reaches min_precision
    beats one whose does not; otherwise the better F1 wins (as `mdm train --min-precision`)."""
    if (a["precision"] >= min_precision) != (b["precision"] >= min_precision):
        return a["precision"] >= min_precision
    return a["f1"] > b["f1"]


def sweep_thresholds(edges, keys, truth, cross_source_only, min_precision=0.0):
    """Pairwise precision, recall and F1 of the clusters (connected components of the pairs with
    match probability ≥ t) for every t among the pairs' probabilities, computed by adding the
    pairs in falling order of probability and counting the pairs each merge of two clusters adds
    (all, and true). Returns (best, curve, best_f1): best = dict(threshold, precision, recall, f1),
    the best F1 among the thresholds whose precision reaches min_precision (the best F1 of all when
    none does); best_f1 the best F1 of all."""
    index = {k: i for i, k in enumerate(keys)}
    n = len(keys)
    parent = list(range(n))
    size = [1] * n
    ent = [Counter({truth[k]: 1}) for k in keys]
    src = [Counter({k[0]: 1}) for k in keys] if cross_source_only else None
    ent_src = [Counter({(truth[k], k[0]): 1}) for k in keys] if cross_source_only else None
    total_true = true_pair_count(truth, cross_source_only)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    predicted = tp = 0
    best, best_f1, curve = None, None, []
    edges.sort(key=lambda e: -e[0])
    i = 0
    while i < len(edges):
        p = edges[i][0]
        while i < len(edges) and edges[i][0] == p:
            a, b = find(index[edges[i][1]]), find(index[edges[i][2]])
            i += 1
            if a == b:
                continue
            if size[a] < size[b]:
                a, b = b, a
            pairs = size[a] * size[b]
            true = sum(ent[a].get(e, 0) * c for e, c in ent[b].items())
            if cross_source_only:
                pairs -= sum(src[a].get(s, 0) * c for s, c in src[b].items())
                true -= sum(ent_src[a].get(es, 0) * c for es, c in ent_src[b].items())
                src[a].update(src[b])
                ent_src[a].update(ent_src[b])
                src[b] = ent_src[b] = None
            predicted += pairs
            tp += true
            ent[a].update(ent[b])
            ent[b] = None
            parent[b] = a
            size[a] += size[b]
        precision = tp / predicted if predicted else 1.0
        recall = tp / total_true if total_true else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        point = dict(threshold=p, precision=precision, recall=recall, f1=f1)
        curve.append(point)
        if best is None or ranks_above(point, best, min_precision):
            best = point
        if best_f1 is None or f1 > best_f1["f1"]:
            best_f1 = point
    return best, curve, best_f1


def score_clusters(golden, keys, truth, cross_source_only):
    """Pairwise precision, recall and F1 of clusters {(source, id): cluster}, as bench/quality.py
    counts them (a record without a cluster is a singleton)."""
    by_cluster, by_both = defaultdict(Counter), defaultdict(Counter)
    for k in keys:
        c = golden.get(k, ("singleton", k))
        by_cluster[c][k[0]] += 1
        by_both[(c, truth[k])][k[0]] += 1

    def pairs(g):
        m = sum(g.values())
        return (m * m - sum(v * v for v in g.values())) // 2 if cross_source_only else m * (m - 1) // 2

    predicted = sum(pairs(g) for g in by_cluster.values())
    tp = sum(pairs(g) for g in by_both.values())
    total = true_pair_count(truth, cross_source_only)
    precision = tp / predicted if predicted else 1.0
    recall = tp / total if total else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return dict(precision=precision, recall=recall, f1=f1)


# ----------------------------------------------------------------------------------- main
def read_inputs(args):
    renames = {}
    for m in args.map:
        col, _, attr = m.partition("=")
        if not col or not attr:
            sys.exit(f"--map {m!r}: expected COLUMN=ATTRIBUTE")
        renames[col.strip()] = attr.strip()
    frames, order = [], []
    for path in args.files:
        stem = source_of(path)
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        df.columns = [c.strip() for c in df.columns]
        df = df.rename(columns={**renames, args.id_column: "unique_id"})
        df["unique_id"] = df["unique_id"].str.strip()
        df["source_dataset"] = stem
        order.extend(zip([stem] * len(df), df["unique_id"]))
        frames.append(df)
    cols = set().union(*(set(f.columns) for f in frames))
    frames = [prepare(f.reindex(columns=sorted(cols)), args.entity) for f in frames]
    return frames, order


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entity", choices=sorted(splink_settings.MODELS), required=True)
    ap.add_argument("--id-column", default="rec_id")
    ap.add_argument("--out", help="clusters (source,record_id,golden_id); required unless --tune/--completeness")
    ap.add_argument("--link-type", choices=["link_only", "dedupe_only", "link_and_dedupe"])
    ap.add_argument("--threshold", type=float, default=THRESHOLD,
                    help=f"match probability for predict and clustering (default {THRESHOLD})")
    ap.add_argument("--max-pairs", type=float, default=2e6, help="pairs for u estimation (random sampling)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random sampling for u")
    ap.add_argument("--map", action="append", default=[], metavar="COLUMN=ATTRIBUTE", help="rename an input column")
    ap.add_argument("--timings", help="write the seconds of each phase (JSON) here")
    ap.add_argument("--save-model", help="write the trained Splink model (JSON) here")
    ap.add_argument("--model-variant", help="a variant of the model in bench/splink_settings.py VARIANTS (default: "
                    "the first; --tune: every one, the best is kept)")
    ap.add_argument("--truth", help="source,record_id,entity_id (for --tune and --completeness)")
    ap.add_argument("--tune", metavar="OUT.json",
                    help="choose the model variant and threshold with the best cluster F1 among those whose "
                    "precision reaches --min-precision (needs --truth)")
    ap.add_argument("--min-precision", type=float, default=0.999,
                    help="--tune: the pairwise precision a threshold must reach (default 0.999; when none "
                    "does, the best F1 of all)")
    ap.add_argument("--completeness", metavar="OUT.json", help="pairs completeness of the blocking only (needs --truth)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    if (args.tune or args.completeness) and not args.truth:
        ap.error("--tune and --completeness need --truth")
    if not (args.out or args.tune or args.completeness):
        ap.error("--out is required")
    log("imported splink", "import")
    link_type = args.link_type or ("dedupe_only" if len(args.files) == 1 else "link_only")
    if link_type == "dedupe_only" and len(args.files) != 1:
        ap.error("dedupe_only takes one file")
    cross_source_only = link_type == "link_only"
    variants = splink_settings.VARIANTS[args.entity]
    if args.model_variant:
        if args.model_variant not in variants:
            ap.error(f"--model-variant {args.model_variant}: one of {', '.join(variants)}")
        variants = [args.model_variant]

    frames, order = read_inputs(args)
    cols = set(frames[0].columns)
    log(f"{sum(len(f) for f in frames)} records from {len(frames)} file(s), {link_type}", "load")

    truth = load_truth(args.truth) if args.truth else None
    if truth is not None:
        unknown = [k for k in order if k not in truth]
        if unknown:
            sys.exit(f"{args.truth}: no entity for {len(unknown)} records, e.g. {unknown[0]}")

    def make_linker(variant):
        model = splink_settings.MODELS[args.entity](cols, variant)
        db = DuckDBAPI()  # a fresh database for each linker
        tables = [db.register(f, dataset_display_name=f["source_dataset"].iat[0]) for f in frames]
        settings = splink_settings.settings_creator(model, link_type)
        linker = Linker(tables[0] if link_type == "dedupe_only" else tables, settings, log_level=logging.INFO)
        return model, db, linker

    def train(model, linker, variant):
        linker.training.estimate_probability_two_random_records_match(model.deterministic, recall=model.recall)
        log(f"[{variant}] λ estimated", "train_lambda")
        linker.training.estimate_u_using_random_sampling(max_pairs=args.max_pairs, seed=args.seed)
        log(f"[{variant}] u estimated", "train_u")
        for rule in model.em:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        log(f"[{variant}] m estimated (EM)", "train_m_em")

    if args.completeness:
        _, db, linker = make_linker(variants[0])
        result = pairs_completeness(linker, db, truth, cross_source_only)
        log(f"pairs completeness {result['pairs_completeness']:.4f} "
            f"({result['true_pairs_blocked']:,} of {result['true_pairs']:,} true pairs; "
            f"{result['blocked_pairs']:,} pairs blocked)", "completeness")
        with open(args.completeness, "w") as f:
            json.dump(result, f, indent=2)
        return

    if args.tune:
        result, tried, chosen = None, [], None
        for variant in variants:
            model, db, linker = make_linker(variant)
            if result is None:  # the blocking is the same for every variant
                result = pairs_completeness(linker, db, truth, cross_source_only)
                log(f"pairs completeness {result['pairs_completeness']:.4f}", "completeness")
            train(model, linker, variant)
            pairs = linker.inference.predict(threshold_match_probability=TUNE_FLOOR)
            cols_p = {c.unquote().name for c in pairs.columns}
            one = order[0][0]
            src_l, src_r = ("source_dataset_l", "source_dataset_r") if "source_dataset_l" in cols_p else (f"'{one}'",) * 2
            edges = [(p, (sl, str(l)), (sr, str(r))) for p, sl, l, sr, r in db.duckdb_con.execute(
                f"select match_probability, {src_l}, unique_id_l, {src_r}, unique_id_r from {pairs.physical_name}"
            ).fetchall()]
            log(f"[{variant}] predicted {len(edges):,} pairs at match probability ≥ {TUNE_FLOOR}", "predict")
            best, curve, best_f1 = sweep_thresholds(edges, order, truth, cross_source_only, args.min_precision)
            log(f"[{variant}] best cluster F1 at precision ≥ {args.min_precision}: {best['f1']:.4f} at match "
                f"probability ≥ {best['threshold']!r} (precision {best['precision']:.4f}, recall {best['recall']:.4f}); "
                f"best F1 of all {best_f1['f1']:.4f} at ≥ {best_f1['threshold']!r} "
                f"(precision {best_f1['precision']:.4f}, recall {best_f1['recall']:.4f})", "sweep")
            tried.append(dict(best, variant=variant, best_f1_any_precision=best_f1))
            if chosen is None or ranks_above(best, chosen[0], args.min_precision):
                chosen = (best, curve, variant, linker, pairs)
        best, curve, variant, linker, pairs = chosen
        if args.save_model:
            linker.misc.save_model_to_json(args.save_model, overwrite=True)
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, best["threshold"])
        golden = {(getattr(r, "source_dataset", one), str(r.unique_id)): str(r.cluster_id)
                  for r in clusters.as_pandas_dataframe().itertuples(index=False)}
        check = score_clusters(golden, order, truth, cross_source_only)
        log(f"chosen: {variant}; Splink's clusters at match probability ≥ {best['threshold']!r}: "
            f"F1 {check['f1']:.4f}", "cluster")
        if abs(check["f1"] - best["f1"]) > 1e-9:
            sys.exit(f"the sweep's F1 {best['f1']} differs from Splink's clusters' {check['f1']}")
        # the curve at a few round thresholds, for the record
        marks = [0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999]
        coarse = []
        for m in marks:
            at = [c for c in curve if c["threshold"] >= m]
            if at:
                coarse.append(dict(at[-1], at=m))
        result.update(best, variant=variant, variants_tried=tried, f1_check_splink_clusters=check["f1"],
                      curve=coarse, link_type=link_type)
        with open(args.tune, "w") as f:
            json.dump(result, f, indent=2)
        return

    variant = variants[0]
    model, db, linker = make_linker(variant)
    train(model, linker, variant)
    if args.save_model:
        linker.misc.save_model_to_json(args.save_model, overwrite=True)
    pairs = linker.inference.predict(threshold_match_probability=args.threshold)
    log("predicted", "predict")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, args.threshold).as_pandas_dataframe()
    log(f"clustered at match probability ≥ {args.threshold!r}: {clusters['cluster_id'].nunique()} clusters", "cluster")

    src_col = "source_dataset" if "source_dataset" in clusters else None
    golden = {}
    for row in clusters.itertuples(index=False):
        src = getattr(row, src_col) if src_col else order[0][0]
        golden[(src, str(row.unique_id))] = str(row.cluster_id)
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["source", "record_id", "golden_id"])
        for src, rid in order:
            # A record Splink left out of the clusters is its own cluster.
            w.writerow([src, rid, golden.get((src, rid), f"singleton:{src}:{rid}")])
    log("written", "write")
    if args.timings:
        with open(args.timings, "w") as f:
            json.dump(PHASES, f)


if __name__ == "__main__":
    main()
