"""The Splink 5 model of bench/splink_run.py, in one place: comparisons, blocking rules for
prediction, deterministic rules for λ, and the blocking rules of the EM sessions.

    python bench/splink_settings.py [--variant=NAME] customer|product [COLUMN ...]
        prints the settings (Splink's own JSON, DuckDB dialect, plus the training rules) for input
        columns COLUMN ... (default: the columns of `mdm generate people` / `products`), exactly
        as splink_run.py builds them; the trained models of a harness run are in
        .local/bench/quality/SET/splink.model.json (scored set) and splink.tune.model.json

The input columns are the hub's attribute names (FEBRL files are renamed first: surname →
family_name, address_1 → address_line1, address_2 → address_line2, suburb → locality, state →
region; soc_sec_id is dropped), after splink_run.prepare(): lower case, trimmed, empty → null,
dates of birth as YYYY-MM-DD, phones as the last 9 digits, postcodes without spaces. A column the
input does not have is left out of every rule below.

Customers. Every comparison is one of Splink's library comparisons, with term-frequency
adjustments on the exact levels of names, postcode, street number, street and locality, as the
Splink documentation recommends for columns with skewed values:
- given_name, family_name: NameComparison (null, exact, Jaro-Winkler ≥ 0.92, ≥ 0.88, ≥ 0.7, else).
- date_of_birth: DateOfBirthComparison (exact, one edit, within a month, a year, ten years; an
  impossible date counts as null).
- postcode: PostcodeComparison. Its sector/district/area levels are patterns of UK postcodes,
  which 4-digit Australian postcodes (FEBRL's and the generator's) never match, leaving null /
  exact / else. AustralianPostcodeComparison is the same comparison with those patterns set to the
  first 3, 2 and 1 digits (the first digit is the state), so a typo in the last digits still
  counts as the same area.
- street_number: ExactMatch.
- variant "parts" only: address_line1 (the street) and locality: JaroWinklerAtThresholds (0.9,
  0.8); address_line2 (unit, level, building): JaroWinklerAtThresholds (0.9).
- email: EmailComparison; phone: ExactMatch (no duplicate in these data has a phone one or two
  edits away, so EM can learn nothing for such levels and Splink warns that they are untrained).
- region (the state) is not compared: the postcode's first digit is the state.
Two variants, as bench/splink_run.py --tune picks them (the better cluster F1 on the tuning set):
- "parts": street, address line 2 and locality compared too, each on its own.
- "postcode_number": only postcode and street number for the address, as Splink's FEBRL4
  example does ("we don't consider further location columns as they will be strongly
  correlated with postcode"). Fellegi-Sunter multiplies the evidence of the address parts as if
  they were independent; where people share an address (households in the generated people)
  that makes two members of a household one person.
Measured on the tuning sets while choosing (best cluster F1, parts / postcode_number): FEBRL 1-3
0.9995 / 0.9916; people 100k (seed 43) 0.9020 / 0.9545; people 10k 0.9164 / 0.9769. Also tried
and not kept: ForenameSurnameComparison instead of the two NameComparisons (people 100k 0.8979
against 0.9020, FEBRL 1-3 the same); the UK patterns of PostcodeComparison (FEBRL 1-3 0.9983
against 0.9986); u from 1e7 instead of 2e6 random pairs (people 100k 0.9015 against 0.9020, for
11.5 s more).

Blocking for prediction: the union of the rules below (Splink compares a pair once however many
rules find it), chosen on the tuning sets (FEBRL 1-3; people with seed 43, both profiles) for a
pairs completeness ≥ 0.995 at about a million comparisons at 100k records; the harness checks it
on every scored set.

λ (the probability that two random records match) from deterministic rules with an assumed
recall, u from random sampling (bench/quality.py --splink-max-pairs, default 2e6), m by EM in two
sessions (customers: blocked on the date of birth, then on both names; products: on GTIN, then on
SKU), which between them train every comparison. The match-probability threshold is not set here:
bench/quality.py tunes it on another set (see its docstring); a λ that is off moves every match
probability the same way and the tuned threshold with it.
"""
import json
import sys
from dataclasses import dataclass

import splink.comparison_library as cl
from splink import block_on


class AustralianPostcodeComparison(cl.PostcodeComparison):
    """Splink's PostcodeComparison for 4-digit postcodes: "sector", "district" and "area" are the
    first 3, 2 and 1 digits."""

    SECTOR_REGEX = "^[0-9]{3}"
    DISTRICT_REGEX = "^[0-9]{2}"
    AREA_REGEX = "^[0-9]"


@dataclass
class Model:
    comparisons: list
    blocking: list  # blocking_rules_to_generate_predictions
    deterministic: list  # for estimate_probability_two_random_records_match
    recall: float  # the recall assumed for the deterministic rules
    em: list  # one EM session per rule


def swapped(a, b, n):
    """A blocking rule: the first n characters of a on one side are those of b on the other, and
    the other way round (given and family names swapped, possibly with a typo further on)."""
    return (f"substr(l.{a}, 1, {n}) = substr(r.{b}, 1, {n}) "
            f"and substr(l.{b}, 1, {n}) = substr(r.{a}, 1, {n})")


def customer(cols, variant="parts"):
    has = set(cols).__contains__

    def ok(*names):
        return all(has(n) for n in names)

    comparisons = []
    for name in ("given_name", "family_name"):
        if has(name):
            comparisons.append(cl.NameComparison(name).configure(term_frequency_adjustments=True))
    if has("date_of_birth"):
        comparisons.append(cl.DateOfBirthComparison("date_of_birth", input_is_string=True,
                                                    datetime_format="%Y-%m-%d"))
    if has("postcode"):
        comparisons.append(AustralianPostcodeComparison("postcode").configure(term_frequency_adjustments=True))
    if has("street_number"):
        comparisons.append(cl.ExactMatch("street_number").configure(term_frequency_adjustments=True))
    if variant == "parts":
        if has("address_line1"):
            comparisons.append(cl.JaroWinklerAtThresholds("address_line1", [0.9, 0.8])
                               .configure(term_frequency_adjustments=True))
        if has("address_line2"):
            comparisons.append(cl.JaroWinklerAtThresholds("address_line2", [0.9]))
        if has("locality"):
            comparisons.append(cl.JaroWinklerAtThresholds("locality", [0.9, 0.8])
                               .configure(term_frequency_adjustments=True))
    elif variant != "postcode_number":
        raise ValueError(f"customer model variant {variant!r}: parts or postcode_number")
    if has("email"):
        comparisons.append(cl.EmailComparison("email"))
    if has("phone"):
        comparisons.append(cl.ExactMatch("phone"))

    blocking = []
    for names in [("given_name", "family_name"), ("date_of_birth",), ("postcode", "street_number"),
                  ("family_name", "postcode"), ("given_name", "postcode"), ("address_line1", "locality"),
                  ("street_number", "locality"), ("family_name", "locality"), ("email",), ("phone",)]:
        if ok(*names):
            blocking.append(block_on(*names))
    street = "split_part(address_line1, ' ', 1)"  # the street's first word: "lowe" of "lowe st" and "lowe street"
    for names in [("street_number", street), ("given_name", "street_number"), ("given_name", street)]:
        if ok(*[n if n != street else "address_line1" for n in names]):
            blocking.append(block_on(*names))
    if ok("given_name", "family_name"):
        blocking.append(swapped("given_name", "family_name", 3))
    if ok("given_name", "family_name", "date_of_birth"):
        # initials and birth year; first three letters of the family name and birth day and month
        blocking.append(block_on("substr(given_name, 1, 1)", "substr(family_name, 1, 1)",
                                 "substr(date_of_birth, 1, 4)"))
        blocking.append(block_on("substr(family_name, 1, 3)", "substr(date_of_birth, 6, 5)"))
    if has("email"):
        blocking.append(block_on("regexp_extract(email, '^[^@]+', 0)"))  # the user name

    deterministic = [r for r in [
        ok("given_name", "family_name", "date_of_birth") and block_on("given_name", "family_name", "date_of_birth"),
        ok("family_name", "date_of_birth", "postcode") and block_on("family_name", "date_of_birth", "postcode"),
        ok("given_name", "date_of_birth", "postcode") and block_on("given_name", "date_of_birth", "postcode"),
        ok("email") and block_on("email"),
    ] if r]
    em = [r for r in [
        ok("date_of_birth") and block_on("date_of_birth"),
        ok("given_name", "family_name") and block_on("given_name", "family_name"),
    ] if r]
    return Model(comparisons, blocking, deterministic, 0.6, em)


def product(cols, variant="default"):
    has = set(cols).__contains__
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
    if has("brand") and has("size"):  # the brand's first word: "pelashken" of "pelashken pty ltd"
        blocking.append(block_on("split_part(brand, ' ', 1)", "size"))
    deterministic = [block_on(c) for c in ("gtin", "sku") if has(c)]
    # EM on the two codes: a brand + first-word block is mostly different products of one brand
    # and lets EM settle on "same brand" as the match class.
    em = [block_on(c) for c in ("gtin", "sku") if has(c)]
    return Model(comparisons, blocking, deterministic, 0.8, em)


MODELS = {"customer": customer, "product": product}
# The variants of each model; bench/splink_run.py --tune trains every one on the tuning set and
# keeps the one with the best cluster F1 (the first is the default).
VARIANTS = {"customer": ["parts", "postcode_number"], "product": ["default"]}
DEFAULT_COLUMNS = {
    "customer": ["given_name", "family_name", "date_of_birth", "email", "phone", "street_number", "address_line1",
                 "address_line2", "locality", "postcode", "region"],
    "product": ["gtin", "sku", "name", "name_tok1", "brand", "size", "category"],
}


def settings_creator(model, link_type):
    from splink import SettingsCreator

    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        source_dataset_column_name="source_dataset",
        blocking_rules_to_generate_predictions=model.blocking,
        comparisons=model.comparisons,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    variant = None
    if args and args[0].startswith("--variant="):
        variant = args.pop(0).split("=", 1)[1]
    entity = args[0] if args else "customer"
    variant = variant or VARIANTS[entity][0]
    cols = args[1:] or DEFAULT_COLUMNS[entity]
    m = MODELS[entity](cols, variant)
    out = settings_creator(m, "dedupe_only").create_settings_dict("duckdb")
    out["_bench"] = {
        "entity": entity,
        "variant": variant,
        "deterministic_rules_for_lambda": [r if isinstance(r, str) else r.get_blocking_rule("duckdb").blocking_rule_sql
                                           for r in m.deterministic],
        "assumed_recall": m.recall,
        "em_blocking_rules": [r.get_blocking_rule("duckdb").blocking_rule_sql for r in m.em],
    }
    json.dump(out, sys.stdout, indent=2, default=str)
    print()
