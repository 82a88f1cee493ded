#!/usr/bin/env python3
"""Splink 4 (DuckDB backend) on the same CSV files as `mdm dedupe`, writing the same output:
`source,record_id,golden_id` (source = file stem, golden_id = Splink cluster id). bench/quality.py
runs this as a separate process (in the bench venv, bench/venv.sh) to measure its wall time and
peak memory.

    splink_run.py --entity customer|product --id-column rec_id --out OUT.csv
                  [--link-type link_only|dedupe_only|link_and_dedupe] [--max-pairs N] [--seed S]
                  [--timings FILE.json] [--save-model FILE.json] FILE.csv [FILE.csv ...]

One file: dedupe_only. Several files: link_only unless --link-type says otherwise. The model is
trained the way the Splink documentation recommends: u by random sampling, m by EM on two or more
blocking rules, λ from deterministic rules (levels EM never saw among matches: see fill_unseen_m);
then predict at match probability 0.5 and cluster at 0.5. Every input record is in the output;
records without a pair are singleton clusters. Progress and phase times go to stderr.
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

T0 = time.monotonic()

import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

THRESHOLD = 0.5  # match probability for predict() and for clustering
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


# ----------------------------------------------------------------------------------- models
def found_in_other(col, other, threshold):
    """A level: this column on one side is (nearly) the other column on the other side."""
    return cll.CustomLevel(
        f"jaro_winkler_similarity({col}_l, {other}_r) >= {threshold} "
        f"OR jaro_winkler_similarity({other}_l, {col}_r) >= {threshold}",
        label_for_charts=f"{col} ~ {other} of the other record",
    )


def swap_aware(col, other, high, low, tf=False):
    """Like NameComparison (null, exact, Jaro-Winkler levels, else) plus a level for the value
    found in the other column of the other record: swapped given and family names, swapped
    address lines (both are common in FEBRL and in hand-keyed data)."""
    exact = cll.ExactMatchLevel(col)
    if tf:
        exact.configure(tf_adjustment_column=col)
    return cl.CustomComparison(
        output_column_name=col,
        comparison_levels=[
            cll.NullLevel(col),
            exact,
            *[cll.JaroWinklerLevel(col, t) for t in high],
            found_in_other(col, other, 0.88),
            *[cll.JaroWinklerLevel(col, t) for t in low],
            cll.ElseLevel(),
        ],
    )


def address_comparison(cols):
    """One comparison for the whole address: street number, street, locality and postcode are
    strongly correlated, and as separate comparisons their evidence would be counted several
    times (people at one address, e.g. a household, would then look like one person)."""
    if not {"street_number", "address_line1", "locality", "postcode"} <= cols:
        return None
    same_area = cll.Or(cll.DamerauLevenshteinLevel("postcode", 1), cll.JaroWinklerLevel("locality", 0.88))
    return cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.And(cll.NullLevel("address_line1"), cll.NullLevel("postcode"), cll.NullLevel("locality")),
            cll.And(cll.ExactMatchLevel("street_number"), cll.ExactMatchLevel("address_line1"),
                    cll.ExactMatchLevel("postcode")).configure(label_for_charts="same address"),
            cll.And(cll.ExactMatchLevel("street_number"), cll.JaroWinklerLevel("address_line1", 0.88), same_area)
            .configure(label_for_charts="same number, similar street, same area"),
            cll.And(cll.JaroWinklerLevel("address_line1", 0.88), same_area)
            .configure(label_for_charts="similar street, same area"),
            cll.And(found_in_other("address_line1", "address_line2", 0.88), same_area)
            .configure(label_for_charts="street in the other address line, same area"),
            cll.And(cll.ExactMatchLevel("street_number"), cll.JaroWinklerLevel("address_line1", 0.88))
            .configure(label_for_charts="same number, similar street, other area"),
            cll.And(cll.ExactMatchLevel("street_number"), same_area)
            .configure(label_for_charts="same number, same area"),
            cll.And(cll.ExactMatchLevel("postcode"), cll.JaroWinklerLevel("locality", 0.88))
            .configure(label_for_charts="same postcode and locality"),
            same_area.configure(label_for_charts="same postcode or locality"),
            cll.JaroWinklerLevel("address_line1", 0.88).configure(label_for_charts="similar street"),
            cll.ElseLevel(),
        ],
    )


def customer_model(cols):
    has = cols.__contains__
    comparisons = []
    if has("given_name") and has("family_name"):
        comparisons.append(swap_aware("given_name", "family_name", [0.92, 0.88], [0.7], tf=True))
        comparisons.append(swap_aware("family_name", "given_name", [0.92, 0.88], [0.7], tf=True))
    else:
        comparisons += [cl.NameComparison(c) for c in ("given_name", "family_name") if has(c)]
    if has("date_of_birth"):
        comparisons.append(cl.DateOfBirthComparison("date_of_birth", input_is_string=True,
                                                    datetime_format="%Y-%m-%d"))
    if has("email"):
        comparisons.append(cl.EmailComparison("email"))
    if has("phone"):
        comparisons.append(cl.DamerauLevenshteinAtThresholds("phone", [1, 2]))
    address = address_comparison(cols)
    if address:
        comparisons.append(address)
        if has("address_line2"):
            comparisons.append(swap_aware("address_line2", "address_line1", [0.95, 0.88], []))
    else:  # not all of the address columns: one comparison each
        if has("street_number"):
            comparisons.append(cl.ExactMatch("street_number").configure(term_frequency_adjustments=True))
        if has("address_line1"):
            comparisons.append(cl.JaroWinklerAtThresholds("address_line1", [0.95, 0.88, 0.7]))
        if has("address_line2"):
            comparisons.append(swap_aware("address_line2", "address_line1", [0.95, 0.88], []))
        if has("locality"):
            comparisons.append(cl.JaroWinklerAtThresholds("locality", [0.95, 0.88]))
        if has("postcode"):
            comparisons.append(cl.DamerauLevenshteinAtThresholds("postcode", [1])
                               .configure(term_frequency_adjustments=True))
        if has("region"):
            comparisons.append(cl.ExactMatch("region"))

    def ok(*names):
        return all(has(n) for n in names)

    blocking = []
    for names in [("given_name", "family_name"), ("date_of_birth",), ("postcode", "street_number"),
                  ("family_name", "postcode"), ("given_name", "postcode"), ("given_name", "date_of_birth"),
                  ("family_name", "date_of_birth"), ("address_line1", "locality"),
                  ("street_number", "address_line1"), ("email",), ("phone",)]:
        if ok(*names):
            blocking.append(block_on(*names))
    if ok("given_name", "family_name"):
        blocking.append("l.given_name = r.family_name and l.family_name = r.given_name")
        if has("postcode"):
            blocking.append(block_on("substr(given_name, 1, 2)", "substr(family_name, 1, 2)", "substr(postcode, 1, 2)"))
        if has("date_of_birth"):
            blocking.append(block_on("substr(given_name, 1, 1)", "substr(family_name, 1, 1)",
                                     "substr(date_of_birth, 1, 4)"))

    deterministic = [r for r in [
        ok("given_name", "family_name", "date_of_birth") and block_on("given_name", "family_name", "date_of_birth"),
        ok("family_name", "date_of_birth", "postcode") and block_on("family_name", "date_of_birth", "postcode"),
        ok("given_name", "date_of_birth", "postcode") and block_on("given_name", "date_of_birth", "postcode"),
        ok("email") and block_on("email"),
    ] if r]
    # Each EM session trains the comparisons its blocking rule does not use; together they cover
    # all. No address block: it is full of people who share an address (households), and EM
    # would take them for the match class.
    em = [r for r in [
        ok("date_of_birth") and block_on("date_of_birth"),
        ok("given_name", "family_name") and block_on("given_name", "family_name"),
    ] if r]
    return comparisons, blocking, deterministic, em, 0.6


def product_model(cols):
    has = cols.__contains__
    comparisons = []
    if has("gtin"):
        comparisons.append(cl.ExactMatch("gtin"))
    if has("sku"):
        comparisons.append(cl.ExactMatch("sku"))
    if has("name"):
        comparisons.append(cl.JaroWinklerAtThresholds("name", [0.95, 0.88, 0.7]))
    if has("brand"):
        comparisons.append(cl.JaroWinklerAtThresholds("brand", [0.95, 0.88]))
    if has("size"):
        comparisons.append(cl.ExactMatch("size"))
    if has("category"):
        comparisons.append(cl.ExactMatch("category"))
    blocking = [block_on(c) for c in ("gtin", "sku") if has(c)]
    if has("brand") and has("name_tok1"):
        blocking.append(block_on("brand", "name_tok1"))
    if has("name"):
        blocking.append(block_on("name"))
    deterministic = [block_on(c) for c in ("gtin", "sku") if has(c)]
    # EM on the two codes: a brand + first-word block is mostly different products of one brand
    # and lets EM settle on "same brand" as the match class.
    em = [block_on(c) for c in ("gtin", "sku") if has(c)]
    return comparisons, blocking, deterministic, em, 0.8


UNSEEN_M = 1e-6  # what Splink itself uses for a level "not observed in training dataset"


def fill_unseen_m(model):
    """Levels EM never saw among the matches it found have no m after training, and Splink
    predicts with a default m = 0.05 for them. For the "All other comparisons" level that is
    wrong: when duplicates only ever lose an identifier (GTIN, SKU) and never change it, a
    contradicting identifier must count strongly against a match, so it gets Splink's own
    not-observed value, 1e-6. An unseen in-between level (say "phone within 1 edit") gets m = u:
    no evidence either way. The other levels' m are scaled to keep the sum 1. Returns whether
    anything changed."""
    changed = False
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        unseen = [lv for lv in levels if lv.get("m_probability") is None]
        if not unseen or len(unseen) == len(levels):
            continue
        seen = sum(lv["m_probability"] for lv in levels if lv.get("m_probability") is not None)
        for lv in unseen:
            lv["m_probability"] = UNSEEN_M if lv is levels[-1] else min(lv.get("u_probability") or UNSEEN_M, 0.5)
        added = sum(lv["m_probability"] for lv in unseen)
        for lv in levels:
            if lv not in unseen:
                lv["m_probability"] *= (1 - added) / seen
        log(f"{comparison['output_column_name']}: unseen level(s) "
            + ", ".join(f"{lv['label_for_charts']!r} m={lv['m_probability']:.3g}" for lv in unseen))
        changed = True
    return changed


# ----------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entity", choices=["customer", "product"], required=True)
    ap.add_argument("--id-column", default="rec_id")
    ap.add_argument("--out", required=True)
    ap.add_argument("--link-type", choices=["link_only", "dedupe_only", "link_and_dedupe"])
    ap.add_argument("--max-pairs", type=float, default=2e6, help="pairs for u estimation (random sampling)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timings", help="write the seconds of each phase (JSON) here")
    ap.add_argument("--save-model", help="write the trained Splink model (JSON) here")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    log("imported splink", "import")
    link_type = args.link_type or ("dedupe_only" if len(args.files) == 1 else "link_only")
    if link_type == "dedupe_only" and len(args.files) != 1:
        ap.error("dedupe_only takes one file")
    logging.getLogger("splink").setLevel(logging.WARNING)

    frames, order = [], []
    for path in args.files:
        stem = source_of(path)
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        df.columns = [c.strip() for c in df.columns]
        df = df.rename(columns={args.id_column: "unique_id"})
        df["unique_id"] = df["unique_id"].str.strip()
        df["source_dataset"] = stem
        order.extend(zip([stem] * len(df), df["unique_id"]))
        frames.append(df)
    cols = set().union(*(set(f.columns) for f in frames))
    frames = [prepare(f.reindex(columns=sorted(cols)), args.entity) for f in frames]
    cols = set(frames[0].columns)
    log(f"{sum(len(f) for f in frames)} records from {len(frames)} file(s), {link_type}", "load")

    build = customer_model if args.entity == "customer" else product_model
    comparisons, blocking, deterministic, em_rules, recall = build(cols)
    settings = SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        source_dataset_column_name="source_dataset",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=comparisons,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    def make_linker(settings):
        db = DuckDBAPI()  # a fresh database each time: the input tables are registered by name
        if link_type == "dedupe_only":
            return Linker(frames[0], settings, db_api=db)
        return Linker(frames, settings, db_api=db, input_table_aliases=[f["source_dataset"].iat[0] for f in frames])

    linker = make_linker(settings)

    linker.training.estimate_probability_two_random_records_match(deterministic, recall=recall)
    log("λ estimated", "train_lambda")
    linker.training.estimate_u_using_random_sampling(max_pairs=args.max_pairs, seed=args.seed)
    log("u estimated", "train_u")
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    log("m estimated (EM)", "train_m_em")
    trained = linker.misc.save_model_to_json()
    if fill_unseen_m(trained):
        linker = make_linker(trained)
    if args.save_model:
        linker.misc.save_model_to_json(args.save_model, overwrite=True)
    pairs = linker.inference.predict(threshold_match_probability=THRESHOLD)
    log("predicted", "predict")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, THRESHOLD).as_pandas_dataframe()
    log(f"clustered: {clusters['cluster_id'].nunique()} clusters", "cluster")

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
