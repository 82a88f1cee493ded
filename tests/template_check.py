#!/usr/bin/env python3
"""Checks of infra/template.yaml that cfn-lint cannot make: who may request an erasure over the
bus, which events reach the erasure queue, that every handler settles a message before its
queue's redrive would move it (raw, without a reason) to the dead-letter queue; and operations:
every rule target has a DLQ and a retry policy, every DLQ and queue an alarm, the archive never
keeps ErasureRequested, every function deploys gradually with the alarms as rollback triggers,
and every indicator in docs/operations.md has its metric (emitted by the code, or AWS's own) and
its alarm on that metric; bulk files: the bucket is private and encrypted, notifies the files
queue of incoming/ only, lets only FileWriters drop files (each in its own system's folders), and
the files function writes nothing but reports.

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
        "FilesQueue": ("mod", "FILES_MAX_RECEIVES"),
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


WRITER = "arn:aws:iam::111122223333:role/webshop-files"  # another account's
LOCAL_WRITER = "arn:aws:iam::123456789012:role/webshop-files"  # the hub's account's


def the_files_bucket_is_private_and_notifies_the_files_queue():
    p = RES["FilesBucket"]["Properties"]
    block = p.get("PublicAccessBlockConfiguration", {})
    for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        assert block.get(k) is True, f"FilesBucket: {k} is {block.get(k)!r}"
    rules = p.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    algos = [r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
    assert algos and all(a in ("AES256", "aws:kms", "aws:kms:dsse") for a in algos), f"FilesBucket encryption {algos}"
    owner = [r.get("ObjectOwnership") for r in p.get("OwnershipControls", {}).get("Rules", [])]
    assert owner == ["BucketOwnerEnforced"], f"FilesBucket object ownership {owner}"
    queues = p.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
    assert len(queues) == 1, f"{len(queues)} queue notifications"
    (q,) = queues
    assert ref_name(q["Queue"]) == "FilesQueue", f"the bucket notifies {q['Queue']}"
    assert q["Event"] == "s3:ObjectCreated:*", q["Event"]
    filters = q.get("Filter", {}).get("S3Key", {}).get("Rules", [])
    assert filters == [{"Name": "prefix", "Value": "incoming/"}], f"notification filter {filters}"
    assert set(p["NotificationConfiguration"]) == {"QueueConfigurations"}, f"the bucket notifies {sorted(p['NotificationConfiguration'])}"
    # S3 checks the queue's policy when the notification is configured: it exists first and
    # names this bucket and account.
    depends = RES["FilesBucket"].get("DependsOn")
    assert "FilesQueuePolicy" in ([depends] if isinstance(depends, str) else depends or []), "FilesBucket does not wait for FilesQueuePolicy"
    r = Resolver({"Stage": "prod"})
    bucket = r.resolve(p["BucketName"])
    (stmt,) = r.resolve(RES["FilesQueuePolicy"]["Properties"]["PolicyDocument"])["Statement"]
    assert stmt["Principal"] == {"Service": "s3.amazonaws.com"} and stmt["Action"] == "sqs:SendMessage", stmt
    assert stmt["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket}", stmt["Condition"]
    assert stmt["Condition"]["StringEquals"]["aws:SourceAccount"] == r.account, stmt["Condition"]
    # Six times the function's timeout (Lambda's advice for SQS event sources).
    timeout = int(RES["FilesFunction"]["Properties"]["Timeout"])
    visibility = int(RES["FilesQueue"]["Properties"]["VisibilityTimeout"])
    assert visibility >= 6 * timeout, f"FilesQueue's visibility timeout {visibility} s < 6 x {timeout} s"
    retention = p["LifecycleConfiguration"]["Rules"]
    for days, kept in ((0, False), (30, True)):
        rules = Resolver({"FileRetentionDays": days}).resolve(retention)
        expiring = [x for x in rules if x.get("ExpirationInDays") is not None]
        assert bool(expiring) == kept, f"FileRetentionDays {days}: expiring rules {expiring}"
        if kept:
            assert expiring[0]["Prefix"] == "incoming/" and str(expiring[0]["ExpirationInDays"]) == str(days), expiring


def put_allowed(statements, principal, key, tag):
    """Whether the bucket policy lets `principal` (its mdm-source-system tag `tag`) put `key`
    over TLS: no Deny applies, and an Allow does - unless the principal is of the bucket's
    account, whose own IAM policy may allow it anything. IAM wildcards: `*` spans any characters,
    "/" included. A statement naming the tag when the principal has none does not apply (the
    conservative reading for a Deny). Anything this model does not know fails the check."""

    def listed(v):
        return v if isinstance(v, list) else [v]

    def matches(pattern, resource):
        return re.fullmatch(".*".join(re.escape(x) for x in pattern.split("*")), resource) is not None

    def applies(s):
        unknown = set(s) - {"Sid", "Effect", "Principal", "Action", "Resource", "NotResource", "Condition"}
        assert not unknown, f"the check does not model {sorted(unknown)} in {s.get('Sid')}"
        if not {"s3:PutObject", "s3:*"} & set(listed(s["Action"])):
            return False
        who = s["Principal"]
        if who != "*" and principal not in listed(who.get("AWS", [])):
            return False
        for op, kv in s.get("Condition", {}).items():
            assert len(kv) == 1, f"{s.get('Sid')}: condition {op} {kv}"
            ((k, v),) = kv.items()
            if (op, k) == ("Bool", "aws:SecureTransport"):
                holds = str(v).lower() == "true"  # these puts come over TLS
            elif (op, k) == ("ArnNotLike", "aws:PrincipalArn"):
                holds = not any(matches(x, principal) for x in listed(v))
            elif (op, k) == ("ArnLike", "aws:PrincipalArn"):
                holds = any(matches(x, principal) for x in listed(v))
            elif (op, k) == ("Null", "aws:PrincipalTag/mdm-source-system"):
                holds = (str(v).lower() == "true") == (tag is None)
            else:
                raise AssertionError(f"the check does not model the condition {op} {k} in {s.get('Sid')}")
            if not holds:
                return False
        patterns = listed(s.get("Resource", s.get("NotResource")))
        variable = "${aws:PrincipalTag/mdm-source-system}"
        if tag is None and any(variable in x for x in patterns):
            return False
        patterns = [x.replace(variable, tag or "") for x in patterns]
        assert not any("${" in x for x in patterns), f"the check does not model a variable in {patterns}"
        hit = any(matches(x, f"arn:aws:s3:::bucket/{key}") for x in patterns)
        return hit if "Resource" in s else not hit

    deny = [s for s in statements if s["Effect"] == "Deny" and applies(s)]
    allow = [s for s in statements if s["Effect"] == "Allow" and applies(s)]
    return not deny and (bool(allow) or principal.split(":")[4] == "123456789012")


def only_file_writers_drop_files_in_their_own_folders():
    def policy(parameters):
        r = Resolver(parameters)
        r.create = lambda logical: {"ref": "bucket", "Arn": "arn:aws:s3:::bucket"}
        return r.resolve(RES["FilesBucketPolicy"]["Properties"]["PolicyDocument"])["Statement"]

    none = policy({})
    for who in (WRITER, LOCAL_WRITER):
        assert not put_allowed(none, who, "incoming/customer/webshop/a.csv", "webshop"), f"with no writers named, {who} may put under incoming/"
    tls = [s for s in none if s["Effect"] == "Deny" and s["Action"] == "s3:*"]
    assert tls and tls[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, "the bucket does not insist on TLS"
    named = policy({"FileWriters": f"{WRITER},{LOCAL_WRITER}"})
    for who in (WRITER, LOCAL_WRITER):
        for key in ("incoming/customer/webshop/a.csv", "incoming/product/webshop/b.jsonl.gz"):
            assert put_allowed(named, who, key, "webshop"), f"{who} may not drop its own system's {key}"
        for key, tag, why in [
            ("incoming/customer/crm/a.csv", "webshop", "another system's folder"),
            ("incoming/customer/crm/webshop/a.csv", "webshop", "a nested key naming its system further down"),
            ("incoming/customer/webshop/x/a.csv", "webshop", "a nested key"),
            ("reports/customer/webshop/a.csv.json", "webshop", "a report"),
            ("customer/webshop/a.csv", "webshop", "outside incoming/"),
            ("incoming/customer/webshop/a.csv", None, "no mdm-source-system tag"),
        ]:
            assert not put_allowed(named, who, key, tag), f"{who} may put {key} ({why})"
    other = "arn:aws:iam::123456789012:role/anyone"
    assert not put_allowed(named, other, "incoming/customer/webshop/a.csv", "webshop"), f"{other} is not kept out"


def the_files_function_writes_only_reports():
    f = RES["FilesFunction"]
    assert f["Metadata"]["BuildProperties"]["Binary"] == "mdm-files"
    p = f["Properties"]
    assert int(p["Timeout"]) == 900, p["Timeout"]
    env = p["Environment"]["Variables"]
    for k, ref in [("MDM_FILES_BUCKET", "FilesBucket"), ("MDM_FILES_QUEUE_URL", "FilesQueue"), ("MDM_FILES_DLQ_URL", "FilesDLQ"),
                   ("MDM_FILE_FEEDS", "FileFeeds"), ("MDM_FILE_RETENTION_DAYS", "FileRetentionDays")]:
        assert ref_name(env.get(k)) == ref, f"{k} is {env.get(k)!r}"
    (ev,) = [e for e in p["Events"].values() if e["Type"] == "SQS"]
    assert ref_name(ev["Properties"]["Queue"]) == "FilesQueue" and ev["Properties"].get("BatchSize") == 1, ev
    assert ev["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"], ev
    r = Resolver({})
    s3 = []
    for pol in p["Policies"]:
        if isinstance(pol, dict) and "Statement" in pol:
            s3 += [s for s in r.resolve(pol["Statement"]) if any(a.startswith("s3:") for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))]
        else:
            assert not any(k.startswith("S3") for k in pol), f"FilesFunction has the policy template {pol}"
    bucket = r.resolve({"Fn::Sub": "arn:${AWS::Partition}:s3:::${FilesBucket}"})
    puts = []
    for s in s3:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        assert s["Effect"] == "Allow" and not any("*" in a for a in actions), f"FilesFunction: {s}"
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        for res in resources:
            assert res == bucket or res.startswith(bucket + "/"), f"FilesFunction may {actions} on {res}"
        if "s3:PutObject" in actions:
            puts += resources
    assert puts == [f"{bucket}/reports/*"], f"FilesFunction may PutObject on {puts}"


check("every rule target has a DLQ (alarmed, writable by EventBridge) and retries", rule_targets_have_a_dlq_and_retries)
check("every DLQ has a depth alarm, every queue a function reads an age alarm", every_dlq_and_queue_is_alarmed)
check("the bus archive keeps every hub event but ErasureRequested", the_archive_never_keeps_erasure_requests)
check("every function deploys gradually, rolled back by the alarms", every_function_deploys_gradually)
check("every route needs a token with a scope, but the console's page and files", every_route_has_the_authorizer_but_the_console)
check("the files bucket is private, encrypted, and notifies the files queue of incoming/", the_files_bucket_is_private_and_notifies_the_files_queue)
check("only FileWriters drop files, each in its own system's folders", only_file_writers_drop_files_in_their_own_folders)
check("the files function puts objects only under reports/", the_files_function_writes_only_reports)
check("every indicator in docs/operations.md has its metric and alarm; the dashboard shows every alarm", every_indicator_has_its_metric_and_alarm)
for name, err in results:
    print(f"{'ok  ' if err is None else 'FAIL'} {name}" + ("" if err is None else f": {err}"))
failed = sum(1 for _, e in results if e is not None)
print(f"template: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
