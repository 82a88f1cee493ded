#!/usr/bin/env python3
"""Checks of infra/template.yaml that cfn-lint cannot make: who may request an erasure over the
bus, which events reach the erasure queue, that every handler settles a message before its
queue's redrive would move it (raw, without a reason) to the dead-letter queue; and operations:
every rule target has a DLQ and a retry policy, every DLQ and queue an alarm, the archive never
keeps ErasureRequested, every function deploys gradually with the alarms as rollback triggers,
and every indicator in docs/operations.md has its metric (emitted by the code, or AWS's own) and
its alarm on that metric.

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
def of_type(kind):
    return {k: r for k, r in RES.items() if r["Type"] == kind}


def ref_name(v):
    """The logical id a `!Ref X` / `!GetAtt X.Attr` names."""
    if isinstance(v, dict) and "Ref" in v:
        return v["Ref"]
    if isinstance(v, dict) and "Fn::GetAtt" in v:
        g = v["Fn::GetAtt"]
        return g[0] if isinstance(g, list) else g.split(".")[0]
    return None


def alarms_on(metric, dimension_ref=None):
    out = []
    for name, a in of_type("AWS::CloudWatch::Alarm").items():
        p = a["Properties"]
        if p.get("MetricName") != metric:
            continue
        refs = [ref_name(d.get("Value")) for d in p.get("Dimensions", [])]
        if dimension_ref is None or dimension_ref in refs:
            out.append(name)
    return out


def rule_targets_have_a_dlq_and_retries():
    rules = of_type("AWS::Events::Rule")
    assert rules, "no rules"
    for name, r in rules.items():
        for t in r["Properties"].get("Targets", []):
            dlq = ref_name(t.get("DeadLetterConfig", {}).get("Arn"))
            assert dlq in RES and RES[dlq]["Type"] == "AWS::SQS::Queue", f"{name} target {t['Id']}: no DLQ queue"
            retry = t.get("RetryPolicy", {})
            assert retry.get("MaximumRetryAttempts") and retry.get("MaximumEventAgeInSeconds"), f"{name}: no retry policy"
            assert alarms_on("ApproximateNumberOfMessagesVisible", dlq), f"{name}: DLQ {dlq} has no alarm"
            policies = [q for q in of_type("AWS::SQS::QueuePolicy").values() if dlq in [ref_name(x) for x in q["Properties"]["Queues"]]]
            assert policies, f"EventBridge may not write to {dlq}: no queue policy"
    erasure_dlq = ref_name(RES["ErasureRequestedRule"]["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"])
    kept = int(RES[erasure_dlq]["Properties"]["MessageRetentionPeriod"])
    assert kept == 86400, f"{erasure_dlq} keeps erasure requests {kept} s, not one day"


def every_dlq_and_queue_is_alarmed():
    dlqs = set()
    for r in of_type("AWS::SQS::Queue").values():
        target = r["Properties"].get("RedrivePolicy", {}).get("deadLetterTargetArn")
        if target:
            dlqs.add(ref_name(target))
    dlqs.add("PublishDLQ")
    for q in sorted(dlqs):
        assert alarms_on("ApproximateNumberOfMessagesVisible", q), f"DLQ {q} has no depth alarm"
    read = set()
    for f in of_type("AWS::Serverless::Function").values():
        for ev in f["Properties"].get("Events", {}).values():
            if ev["Type"] == "SQS":
                read.add(ref_name(ev["Properties"]["Queue"]))
    assert read, "no function reads a queue"
    for q in sorted(read):
        assert alarms_on("ApproximateAgeOfOldestMessage", q), f"queue {q} has no age alarm"
    for name, a in of_type("AWS::CloudWatch::Alarm").items():
        assert "AlarmActions" in a["Properties"], f"{name} notifies nobody (AlarmTopicArn)"


def the_archive_never_keeps_erasure_requests():
    archives = of_type("AWS::Events::Archive")
    assert len(archives) == 1, f"{len(archives)} archives"
    (a,) = archives.values()
    p = a["Properties"]
    assert ref_name(p["SourceArn"]) == "HubBus", "the archive is not the hub bus's"
    assert p["RetentionDays"] == {"Ref": "EventArchiveRetentionDays"}
    assert TEMPLATE["Parameters"]["EventArchiveRetentionDays"]["Default"] == 7
    kinds = p["EventPattern"].get("detail-type")
    assert kinds == [{"anything-but": ["ErasureRequested"]}], f"the archive's pattern keeps {kinds!r}"


def every_function_deploys_gradually():
    glob = TEMPLATE.get("Globals", {}).get("Function", {})
    alarms = set(of_type("AWS::CloudWatch::Alarm"))
    for name, f in of_type("AWS::Serverless::Function").items():
        p = f["Properties"]
        alias = p.get("AutoPublishAlias", glob.get("AutoPublishAlias"))
        pref = p.get("DeploymentPreference", glob.get("DeploymentPreference"))
        assert alias, f"{name} publishes no alias"
        assert pref and pref.get("Type"), f"{name} has no deployment preference"
        triggers = [ref_name(a) for a in pref.get("Alarms", [])]
        assert triggers and set(triggers) <= alarms, f"{name}: rollback alarms {triggers} not all in the template"
    for dlq_alarm in ("IngestDLQAlarm", "MergeDLQAlarm", "EventDeliveryFailuresAlarm", "Api5xxAlarm"):
        assert dlq_alarm in [ref_name(a) for a in glob["DeploymentPreference"]["Alarms"]], f"{dlq_alarm} rolls nothing back"


def every_indicator_has_its_metric_and_alarm():
    """docs/operations.md's table: each row's metric is emitted by the hub's code (a string in
    shared/aws/src) or is AWS's own (`AWS/...`), and its alarm exists and watches that metric."""
    with open(os.path.join(ROOT, "docs", "operations.md"), encoding="utf-8") as f:
        doc = f.read()
    code = ""
    for folder, _, files in os.walk(os.path.join(ROOT, "shared", "aws", "src")):
        for n in files:
            if n.endswith(".rs"):
                with open(os.path.join(folder, n), encoding="utf-8") as f:
                    code += f.read()
    rows = re.findall(r"^\| \*\*(.+?)\*\* \| `([^`]+)` \| `([^`]+)` \| \[", doc, re.M)
    assert len(rows) >= 8, f"{len(rows)} indicators in docs/operations.md"
    for indicator, metric, alarm in rows:
        namespace, name = metric.rsplit("/", 1) if "/" in metric and metric.startswith("AWS/") else ("MdmHub", metric)
        if namespace == "MdmHub":
            assert f'"{name}"' in code, f"{indicator}: metric {name} is emitted nowhere in shared/aws/src"
        assert alarm in RES and RES[alarm]["Type"] == "AWS::CloudWatch::Alarm", f"{indicator}: no alarm {alarm}"
        watched = RES[alarm]["Properties"].get("MetricName")
        assert watched == name, f"{indicator}: {alarm} watches {watched}, not {name}"
    # An alarm on one route names a route the template serves, as API Gateway's route key
    # (`METHOD path`): the functions put that key in their `Route` dimension.
    routes = set()
    for f in of_type("AWS::Serverless::Function").values():
        for e in (f["Properties"].get("Events") or {}).values():
            if e.get("Type") == "HttpApi":
                routes.add(f"{e['Properties']['Method'].upper()} {e['Properties']['Path']}")
    assert "GET /v1/golden/{entity}/{goldenId}" in routes, sorted(routes)
    for alarm, a in of_type("AWS::CloudWatch::Alarm").items():
        for d in a["Properties"].get("Dimensions") or []:
            if d.get("Name") == "Route":
                assert d["Value"] in routes, f"{alarm} watches route {d['Value']!r}, which the template does not serve"
    dashboard = json_text = str(of_type("AWS::CloudWatch::Dashboard"))
    for alarm in of_type("AWS::CloudWatch::Alarm"):
        assert f"{alarm}.Arn" in json_text, f"the dashboard does not show {alarm}"
    assert dashboard


def every_route_has_the_authorizer_but_the_console():
    """Every HTTP route needs a token with a scope, except the steward console's page and files
    (no data: the page calls the routes with the steward's token), which need none."""
    open_routes = []
    for name, f in of_type("AWS::Serverless::Function").items():
        for ev, e in (f["Properties"].get("Events") or {}).items():
            if e.get("Type") != "HttpApi":
                continue
            p = e["Properties"]
            auth = p.get("Auth") or {}
            if auth.get("Authorizer") == "NONE":
                open_routes.append((p["Method"], p["Path"]))
                assert name == "StewardFunction", f"{name}.{ev}: only the steward function serves the console"
                assert not auth.get("AuthorizationScopes"), f"{ev}: no authorizer, no scopes"
            else:
                assert auth.get("Authorizer") == "HubJwt" and auth.get("AuthorizationScopes"), f"{name}.{ev}: {auth}"
    assert sorted(open_routes) == [("GET", "/console"), ("GET", "/console/{file}")], open_routes


check("every rule target has a DLQ (alarmed, writable by EventBridge) and retries", rule_targets_have_a_dlq_and_retries)
check("every DLQ has a depth alarm, every queue a function reads an age alarm", every_dlq_and_queue_is_alarmed)
check("the bus archive keeps every hub event but ErasureRequested", the_archive_never_keeps_erasure_requests)
check("every function deploys gradually, rolled back by the alarms", every_function_deploys_gradually)
check("every route needs a token with a scope, but the console's page and files", every_route_has_the_authorizer_but_the_console)
check("every indicator in docs/operations.md has its metric and alarm; the dashboard shows every alarm", every_indicator_has_its_metric_and_alarm)
for name, err in results:
    print(f"{'ok  ' if err is None else 'FAIL'} {name}" + ("" if err is None else f": {err}"))
failed = sum(1 for _, e in results if e is not None)
print(f"template: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
