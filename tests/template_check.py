#!/usr/bin/env python3
"""Checks of infra/template.yaml that cfn-lint cannot make: who may request an erasure over the
bus, which events reach the erasure queue, and that every handler settles a message before its
queue's redrive would move it (raw, without a reason) to the dead-letter queue.

    .venv/bin/python tests/template_check.py      # tests/run runs it; prints "N passed, M failed"
"""
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "infra", "local"))
from bootstrap import CfnLoader, Stack  # noqa: E402

with open(os.path.join(ROOT, "infra", "template.yaml")) as f:
    TEMPLATE = yaml.load(f, Loader=CfnLoader)
RES = TEMPLATE["Resources"]
REQUESTER = "arn:aws:iam::111122223333:role/privacy-desk"
results = []


def check(name, fn):
    try:
        fn()
        results.append((name, None))
    except AssertionError as e:
        results.append((name, str(e) or "assertion failed"))


class Resolver(Stack):
    """The bootstrap's intrinsic-function resolution, without an AWS client: references to
    resources resolve to placeholders."""

    def __init__(self, parameters):
        self.t = TEMPLATE
        self.prefix = "check"
        self.region = "us-east-1"
        self.account = "123456789012"
        self.params = {k: v.get("Default") for k, v in TEMPLATE.get("Parameters", {}).items()}
        self.params.update(parameters)
        for k, v in TEMPLATE.get("Parameters", {}).items():
            if v.get("Type") == "CommaDelimitedList" and isinstance(self.params.get(k), str):
                self.params[k] = [x.strip() for x in self.params[k].split(",")]
        self.resources = RES
        self.made = {}
        self.skipped = []

    def create(self, logical):
        return {"ref": f"check-{logical}", "Arn": f"arn:aws:local:us-east-1:123456789012:{logical}"}

    def bus_policies(self):
        """The bus policy statements the stack would have, with conditions resolved."""
        out = []
        for logical, r in RES.items():
            if r["Type"] != "AWS::Events::EventBusPolicy":
                continue
            if "Condition" in r and not self.condition(r["Condition"]):
                continue
            out.append(self.resolve(r["Properties"]["Statement"]))
        return out


def rule_matches_only_the_named_sources():
    pattern = RES["ErasureRequestedRule"]["Properties"]["EventPattern"]
    assert pattern.get("source") == {"Ref": "ErasureRequestSources"}, f"source is {pattern.get('source')!r}"
    assert pattern.get("detail-type") == ["ErasureRequested"]
    assert TEMPLATE["Parameters"]["ErasureRequestSources"]["Type"] == "CommaDelimitedList"
    resolved = Resolver({"ErasureRequestSources": "hr.privacy,shop.privacy"}).resolve(pattern)
    assert resolved["source"] == ["hr.privacy", "shop.privacy"], resolved


def denied(statements, principal):
    """Whether an ErasureRequested PutEvents by `principal` is denied by the statements."""
    for s in statements:
        if s["Effect"] != "Deny" or s["Action"] != "events:PutEvents":
            continue
        c = s.get("Condition", {})
        if c.get("StringEquals", {}).get("events:detail-type") != "ErasureRequested":
            continue
        allowed = c.get("ArnNotEquals", {}).get("aws:PrincipalArn")
        if allowed is None or principal not in (allowed if isinstance(allowed, list) else [allowed]):
            return True
    return False


def allowed(statements, principal):
    for s in statements:
        if s["Effect"] == "Allow" and s["Action"] == "events:PutEvents":
            who = s.get("Principal", {}).get("AWS", [])
            if principal in (who if isinstance(who, list) else [who]):
                return True
    return False


def bus_policy_lets_only_the_named_principals_request():
    none = Resolver({}).bus_policies()
    assert none, "no bus policy at all"
    for who in [REQUESTER, "arn:aws:iam::123456789012:role/anyone"]:
        assert denied(none, who), f"with no requesters named, {who} may still put ErasureRequested"
    named = Resolver({"ErasureRequesterArns": REQUESTER}).bus_policies()
    assert allowed(named, REQUESTER) and not denied(named, REQUESTER), "the named requester is not let in"
    other = "arn:aws:iam::123456789012:role/anyone"
    assert denied(named, other) and not allowed(named, other), f"{other} is not kept out"
    for s in named:
        assert s["Resource"].endswith(":HubBus"), f"a statement on {s['Resource']}"


def handlers_settle_before_the_redrive():
    """Each handler dead-letters a message it cannot process, with its reason, on the receive
    after which the queue's redrive would move it there raw."""
    sources = {}
    for name in ("mod", "erasure"):
        with open(os.path.join(ROOT, "shared", "aws", "src", "handlers", f"{name}.rs")) as f:
            sources[name] = f.read()
    wanted = {
        "IngestQueue": ("mod", "INGEST_MAX_RECEIVES"),
        "MatchQueue": ("mod", "MATCH_MAX_RECEIVES"),
        "MergeQueue": ("mod", "MERGE_MAX_RECEIVES"),
        "ErasureQueue": ("erasure", "MAX_RECEIVES"),
    }
    for queue, (module, const) in wanted.items():
        m = re.search(rf"pub const {const}: u32 = (\d+);", sources[module])
        assert m, f"{const} not found in handlers/{module}.rs"
        redrive = RES[queue]["Properties"]["RedrivePolicy"]
        assert int(redrive["maxReceiveCount"]) == int(m.group(1)), (
            f"{queue} redrives after {redrive['maxReceiveCount']} receives, the handler dead-letters at {m.group(1)}"
        )


check("the erasure rule matches only ErasureRequestSources", rule_matches_only_the_named_sources)
check("the bus policy lets only ErasureRequesterArns request erasure", bus_policy_lets_only_the_named_principals_request)
def erasure_last_receive_ends_before_the_timeout():
    with open(os.path.join(ROOT, "shared", "aws", "src", "handlers", "erasure.rs")) as f:
        m = re.search(r"LAST_RECEIVE_BUDGET: std::time::Duration = std::time::Duration::from_secs\((\d+)\);", f.read())
    assert m, "LAST_RECEIVE_BUDGET not found in the erasure handler"
    timeout = int(RES["ErasureFunction"]["Properties"]["Timeout"])
    assert int(m.group(1)) + 30 <= timeout, f"a last run of {m.group(1)} s leaves no time to fail the receipt within {timeout} s"


check("every handler dead-letters (with a reason) before its queue's redrive", handlers_settle_before_the_redrive)
check("the erasure's last receive ends in time to fail its receipt", erasure_last_receive_ends_before_the_timeout)
for name, err in results:
    print(f"{'ok  ' if err is None else 'FAIL'} {name}" + ("" if err is None else f": {err}"))
failed = sum(1 for _, e in results if e is not None)
print(f"template: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
