#!/usr/bin/env python3
"""Generates the demo's sample data (seeded, so the files in the repo are reproducible):

    python3 infra/local/sample/generate.py

Writes crm.jsonl, erp.jsonl and webshop.jsonl beside this file: customer and product records from
three systems with known duplicates (the same person or product in several systems, with typos,
nicknames, formatting differences and missing values), out-of-order updates (a newer version
delivered before an older one), values that fail normalisation (kept raw and flagged) and a few
structurally broken records (rejected). truth.json maps each record to its real-world entity.
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20261125)

GIVEN = ["Anna", "Jonas", "Maria", "Peter", "Sofia", "Lukas", "Emma", "David", "Olivia", "Noah", "Chloe", "Arjun",
         "Priya", "Mateo", "Lea", "Tomasz", "Ingrid", "Kwame", "Yuki", "Fatima", "Hugo", "Elena", "Omar", "Grace",
         "Ravi", "Nora", "Felix", "Amelia", "Isaac", "Zoe"]
FAMILY = ["Kowalski", "Schmidt", "Okafor", "Nguyen", "Garcia", "Larsen", "O'Brien", "Rossi", "Dubois", "Novak",
          "Andersson", "Murphy", "Fischer", "Silva", "Tanaka", "Haddad", "Müller", "Smith", "Jones", "Patel",
          "Kim", "Moreau", "Costa", "Berg", "Walsh", "Horvat", "Ivanova", "Mensah", "Sato", "Brennan"]
STREETS = ["High Street", "Station Road", "Church Lane", "Mill Road", "Park Avenue", "Victoria Street", "Kings Road",
           "Queen Street", "Harbour Street", "North Road"]
TOWNS = [("Leeds", "LS1 4AP"), ("Manchester", "M1 1AE"), ("Bristol", "BS1 5TR"), ("Cardiff", "CF10 1EP"),
         ("Edinburgh", "EH1 1YZ"), ("York", "YO1 7HH"), ("Bath", "BA1 1LT"), ("Derby", "DE1 2PQ")]
NICK = {"Peter": "Pete", "David": "Dave", "Elena": "Lena", "Isaac": "Ike", "Amelia": "Millie", "Tomasz": "Tom",
        "Olivia": "Liv", "Sofia": "Sophie"}
BRANDS = ["Acme", "Nordic Oak", "BlueRiver", "Sunfield", "Ironleaf", "Moss & Co"]
ITEMS = [("Oat Milk", "1 l", "grocery"), ("Espresso Beans", "500 g", "grocery"), ("Trail Shoe", "42", "footwear"),
         ("Wool Socks", "M", "apparel"), ("Desk Lamp", "", "home"), ("Yoga Mat", "6 mm", "sport"),
         ("Green Tea", "100 g", "grocery"), ("Rain Jacket", "L", "apparel"), ("Chef Knife", "20 cm", "home"),
         ("Water Bottle", "750 ml", "sport")]


def typo(s):
    if len(s) < 4:
        return s
    i = rng.randrange(1, len(s) - 1)
    kind = rng.random()
    if kind < 0.4:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]  # swap
    if kind < 0.7:
        return s[:i] + s[i + 1:]  # drop
    return s[:i] + s[i] + s[i:]  # double


def gtin13(body12):
    digits = [int(c) for c in body12]
    total = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return body12 + str((10 - total % 10) % 10)


def person(i):
    given, family = GIVEN[i % len(GIVEN)], FAMILY[(i * 7 + i // len(GIVEN)) % len(FAMILY)]
    town, postcode = TOWNS[i % len(TOWNS)]
    dob = f"{1950 + (i * 13) % 50}-{1 + (i * 5) % 12:02d}-{1 + (i * 11) % 28:02d}"
    return {
        "given_name": given, "family_name": family, "date_of_birth": dob,
        "email": f"{given.lower()}.{family.lower().replace(chr(39), '').replace('ü', 'u')}{i}@example.com",
        "phone": f"07700 9{i:05d}"[:12], "street_number": str(1 + i % 90),
        "address_line1": STREETS[i % len(STREETS)], "locality": town, "postcode": postcode, "country": "GB",
    }


def variant(p, system):
    """How a system holds the same person: its own formats and mistakes."""
    a = dict(p)
    if system == "webshop":
        a["email"] = a["email"].upper() if rng.random() < 0.3 else a["email"]
        y, m, d = a["date_of_birth"].split("-")
        a["date_of_birth"] = f"{d}/{m}/{y}"
        a["phone"] = "+44 " + a["phone"][1:]
        a["address_line1"] = a["address_line1"].replace("Street", "St").replace("Road", "Rd")
        a["postcode"] = a["postcode"].lower().replace(" ", "")
        a["country"] = "United Kingdom"
        if rng.random() < 0.5:
            a["given_name"] = NICK.get(a["given_name"], a["given_name"])
        for k in ("street_number",):
            a.pop(k, None)
    elif system == "erp":
        a["family_name"] = typo(a["family_name"]) if rng.random() < 0.6 else a["family_name"].upper()
        a.pop("email", None) if rng.random() < 0.3 else None
        a.pop("address_line1", None)
        a["country"] = "GBR"
    if rng.random() < 0.15:
        a["given_name"] = typo(a["given_name"])
    return a


def main():
    out = {"crm": [], "erp": [], "webshop": []}
    truth = {}
    seq = {}

    def emit(system, entity, sid, attrs, truth_id, seq_value=None, updated=None):
        seq[(system, sid)] = seq_value or 1
        rec = {"entityType": entity, "sourceSystem": system, "sourceId": sid, "sourceSeq": seq[(system, sid)],
               "sourceUpdatedAt": updated or f"2026-0{1 + rng.randrange(6)}-{1 + rng.randrange(28):02d}T10:00:00Z",
               "attributes": attrs}
        out[system].append(rec)
        truth[f"{system}/{sid}"] = truth_id
        return rec

    for i in range(120):
        p = person(i)
        systems = ["crm"] + [s for s in ("erp", "webshop") if rng.random() < 0.55]
        for system in systems:
            sid = {"crm": f"C-{1000 + i}", "erp": f"E{5000 + i}", "webshop": f"web-{i:04d}"}[system]
            emit(system, "customer", sid, variant(p, system) if system != "crm" else dict(p), f"person-{i}")
        if i % 10 == 3:
            # The person moved: v2 delivered first, then the stale v1 again (out of order).
            sid = f"C-{1000 + i}"
            moved = dict(p, address_line1="Canal Wharf", street_number=str(100 + i), locality="Leeds", postcode="LS11 5PS")
            v2 = emit("crm", "customer", sid, moved, f"person-{i}", seq_value=2, updated="2026-07-01T09:00:00Z")
            v1 = dict(out["crm"][[r["sourceId"] for r in out["crm"]].index(sid)])
            out["crm"].append(v1)
        if i % 17 == 5:
            # A value that cannot be normalised: kept raw and flagged, never a reason to reject.
            bad = dict(p, date_of_birth="1999-02-31")
            emit("webshop", "customer", f"web-x{i}", bad, f"person-{i}")
    # Products: ERP is the master of SKUs and GTINs; the web shop has its own titles.
    for j in range(40):
        name, size, category = ITEMS[j % len(ITEMS)]
        brand = BRANDS[j % len(BRANDS)]
        gtin = gtin13(f"50{j:010d}")
        sku = f"{brand[:3].upper()}-{j:04d}"
        emit("erp", "product", f"P{j:05d}", {"sku": sku, "gtin": gtin, "name": f"{brand} {name}", "brand": brand,
                                              "category": category, "size": size, "price": f"{4 + (j * 7) % 90}.99",
                                              "currency": "GBP"}, f"product-{j}")
        if j % 4 != 0:
            title = f"{name} by {brand}" if j % 2 else f"{brand} {name} {size}".strip()
            emit("webshop", "product", f"W-{gtin}", {"gtin": gtin, "name": title, "brand": brand.lower(),
                                                     "price": f"£{4 + (j * 7) % 90}.99", "currency": "gbp",
                                                     "size": size.upper()}, f"product-{j}")
    # Structurally broken records: rejected with a reason, never stored.
    out["webshop"].append({"entityType": "customer", "sourceSystem": "webshop", "sourceSeq": 1,
                           "attributes": {"given_name": "No", "family_name": "Id"}})
    out["erp"].append({"entityType": "supplier", "sourceSystem": "erp", "sourceId": "S1", "sourceSeq": 1, "attributes": {}})
    out["crm"].append({"entityType": "customer", "sourceSystem": "crm", "sourceId": "C-bad", "sourceSeq": 1,
                       "attributes": {"email": ["two", "values"]}})
    for system, records in out.items():
        with open(os.path.join(HERE, f"{system}.jsonl"), "w") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(HERE, "truth.json"), "w") as f:
        json.dump(truth, f, indent=0, sort_keys=True)
    print({k: len(v) for k, v in out.items()})


if __name__ == "__main__":
    main()
