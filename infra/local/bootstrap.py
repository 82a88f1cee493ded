#!/usr/bin/env python3
"""Creates the hub's AWS resources on an emulator (or any endpoint) from infra/template.yaml.

The SAM template is the one source of truth: this script reads its DynamoDB tables, SQS queues
(with their redrive policies), S3 buckets (with their notifications to queues), EventBridge buses,
rules and queue policies, creates them under names prefixed with --prefix (lower-cased for a
bucket), and prints a JSON description of what it made: physical names, the environment each
function gets (the template's Globals plus the function's own variables, with references
resolved) and each function's event sources (queue, batch size, stream, HTTP route). Functions,
APIs, alarms, bucket policies and lifecycle rules are not created: the local runner plays the
functions and event-source mappings; the emulator enforces no policy and expires nothing.

    AWS_ENDPOINT_URL=http://127.0.0.1:5005 python infra/local/bootstrap.py --prefix demo > .local/resources.json
"""
import argparse
import json
import os
import re
import sys

import boto3
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEMPLATE = os.path.join(HERE, "..", "template.yaml")


class CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short tags (!Ref, !GetAtt, !Sub, ...) into the long form."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _tag)


class Stack:
    def __init__(self, template, prefix, parameters, region):
        self.t = template
        self.prefix = prefix
        self.region = region
        self.params = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}
        # The local stack's own secret for suppression markers (a deployment supplies its own).
        self.params["SuppressionSecrets"] = "local-stack-suppression-secret-not-for-production"
        self.params.update(parameters)
        # A CommaDelimitedList parameter is a list wherever it is referenced (as in CloudFormation).
        for k, v in template.get("Parameters", {}).items():
            if v.get("Type") == "CommaDelimitedList" and isinstance(self.params.get(k), str):
                self.params[k] = [x.strip() for x in self.params[k].split(",")]
        self.resources = template.get("Resources", {})
        self.made = {}  # logical id -> {"ref": ..., attrs...}
        self.skipped = []
        self.ddb = boto3.client("dynamodb", region_name=region)
        self.sqs = boto3.client("sqs", region_name=region)
        self.events = boto3.client("events", region_name=region)
        self.s3 = boto3.client("s3", region_name=region)
        self.account = "123456789012"

    # ------------------------------------------------------------ intrinsic functions
    def resolve(self, v):
        # An intrinsic that yields AWS::NoValue (None) drops its list item or property, as in
        # CloudFormation (e.g. a statement or a condition under !If).
        if isinstance(v, list):
            out = [(x, self.resolve(x)) for x in v]
            return [r for x, r in out if r is not None or not isinstance(x, dict)]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                return self.ref(arg)
            if k == "Fn::GetAtt":
                return self.get_att(arg[0], arg[1])
            if k == "Fn::Sub":
                return self.sub(arg)
            if k == "Fn::Join":
                sep, items = arg
                items = items if isinstance(items, list) else self.resolve(items)
                return sep.join(str(self.resolve(x)) for x in items)
            if k == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if k in ("Fn::Not", "Fn::Equals"):
                return v
        out = {k: (x, self.resolve(x)) for k, x in v.items()}
        return {k: r for k, (x, r) in out.items() if r is not None or not isinstance(x, dict)}

    def condition(self, name):
        c = self.t.get("Conditions", {}).get(name)
        return self.eval_condition(c)

    def eval_condition(self, c):
        if isinstance(c, dict) and "Fn::Not" in c:
            return not self.eval_condition(c["Fn::Not"][0])
        if isinstance(c, dict) and "Fn::Equals" in c:
            a, b = c["Fn::Equals"]
            # As in CloudFormation, values compare as strings (a Number parameter with "0").
            return str(self.resolve(a)) == str(self.resolve(b))
        if isinstance(c, dict) and "Condition" in c:
            return self.condition(c["Condition"])
        return bool(c)

    def ref(self, name):
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.prefix,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.create(name)["ref"]

    def get_att(self, name, attr):
        made = self.create(name)
        if attr not in made:
            raise SystemExit(f"bootstrap: {name}.{attr} is not supported locally")
        return made[attr]

    def sub(self, arg):
        if isinstance(arg, list):
            text, extra = arg
        else:
            text, extra = arg, {}

        def one(m):
            expr = m.group(1)
            if expr in extra:
                return str(self.resolve(extra[expr]))
            if "." in expr and not expr.startswith("AWS::"):
                res, attr = expr.split(".", 1)
                return str(self.get_att(res, attr))
            return str(self.ref(expr))

        # `${!Literal}` stands for the text `${Literal}` (e.g. an IAM policy variable).
        return re.sub(r"\$\{([^}!]+)\}", one, text).replace("${!", "${")

    # ------------------------------------------------------------ resources
    def name_of(self, logical):
        return f"{self.prefix}-{logical}"

    def create(self, logical):
        if logical in self.made:
            return self.made[logical]
        res = self.resources.get(logical)
        if res is None:
            raise SystemExit(f"bootstrap: unknown resource {logical}")
        kind = res["Type"]
        props = res.get("Properties", {})
        # What a resource depends on exists first (e.g. the queue policy letting S3 notify a queue).
        depends = res.get("DependsOn", [])
        for dep in [depends] if isinstance(depends, str) else depends:
            self.create(dep)
        if logical in self.made:  # created meanwhile (a dependency referred back to it)
            return self.made[logical]
        maker = {
            "AWS::DynamoDB::Table": self.make_table,
            "AWS::SQS::Queue": self.make_queue,
            "AWS::Events::EventBus": self.make_bus,
            "AWS::Events::Rule": self.make_rule,
            "AWS::SQS::QueuePolicy": self.make_queue_policy,
            "AWS::S3::Bucket": self.make_bucket,
        }.get(kind)
        if maker is None:
            self.made[logical] = {"ref": self.name_of(logical), "Arn": f"arn:aws:local:{self.region}:{self.account}:{logical}"}
            self.skipped.append(logical)
            return self.made[logical]
        self.made[logical] = maker(logical, props)
        return self.made[logical]

    def make_table(self, logical, p):
        name = self.name_of(logical)
        args = {
            "TableName": name,
            "AttributeDefinitions": self.resolve(p["AttributeDefinitions"]),
            "KeySchema": self.resolve(p["KeySchema"]),
            "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in p:
            args["GlobalSecondaryIndexes"] = self.resolve(p["GlobalSecondaryIndexes"])
        if "StreamSpecification" in p:
            args["StreamSpecification"] = {"StreamEnabled": True, **self.resolve(p["StreamSpecification"])}
        self.ddb.create_table(**args)
        if p.get("TimeToLiveSpecification"):
            self.ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=self.resolve(p["TimeToLiveSpecification"]))
        pitr = p.get("PointInTimeRecoverySpecification", {})
        if pitr.get("PointInTimeRecoveryEnabled"):
            self.ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        desc = self.ddb.describe_table(TableName=name)["Table"]
        return {"ref": name, "Arn": desc["TableArn"], "StreamArn": desc.get("LatestStreamArn")}

    def make_queue(self, logical, p):
        name = self.name_of(logical) + (".fifo" if p.get("FifoQueue") else "")
        attrs = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds", "FifoQueue"):
            if key in p:
                attrs[key] = str(self.resolve(p[key])).lower() if key == "FifoQueue" else str(self.resolve(p[key]))
        if "RedrivePolicy" in p:
            attrs["RedrivePolicy"] = json.dumps(self.resolve(p["RedrivePolicy"]))
        url = self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}

    def make_bus(self, logical, p):
        name = self.name_of(logical)
        arn = self.events.create_event_bus(Name=name)["EventBusArn"]
        return {"ref": name, "Arn": arn, "Name": name}

    def make_rule(self, logical, p):
        name = self.name_of(logical)
        bus = self.resolve(p.get("EventBusName", "default"))
        arn = self.events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(self.resolve(p["EventPattern"])),
            State=p.get("State", "ENABLED"),
        )["RuleArn"]
        self.made[logical] = {"ref": name, "Arn": arn}
        targets = []
        for t in self.resolve(p.get("Targets", [])):
            target = {"Id": t["Id"], "Arn": t["Arn"]}
            for k in ("Input", "InputPath", "InputTransformer", "RetryPolicy", "DeadLetterConfig"):
                if k in t:
                    target[k] = t[k]
            targets.append(target)
        if targets:
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return self.made[logical]

    def make_queue_policy(self, logical, p):
        doc = json.dumps(self.resolve(p["PolicyDocument"]))
        for url in self.resolve(p["Queues"]):
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": doc})
        return {"ref": self.name_of(logical)}

    def make_bucket(self, logical, p):
        # Bucket names are lower case, at most 63 characters (a prefix of 40 leaves room).
        name = self.name_of(logical).lower()
        if self.region == "us-east-1":
            self.s3.create_bucket(Bucket=name)
        else:
            self.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        self.made[logical] = {"ref": name, "Arn": f"arn:aws:s3:::{name}", "BucketName": name}
        queues = []
        for q in self.resolve(p.get("NotificationConfiguration", {}).get("QueueConfigurations", [])):
            conf = {"QueueArn": q["Queue"], "Events": [q["Event"]]}
            rules = q.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            if rules:
                conf["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
            queues.append(conf)
        if queues:
            # S3 sends each queue an s3:TestEvent message now, as on AWS.
            self.s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": queues}
            )
        return self.made[logical]

    # ------------------------------------------------------------ functions (described, not created)
    local_scopes = "mdm/read,mdm/write,mdm/write:*,mdm/steward,mdm/erasure"

    def functions(self):
        glob = self.t.get("Globals", {}).get("Function", {})
        base_env = glob.get("Environment", {}).get("Variables", {})
        out = {}
        for logical, res in self.resources.items():
            if res["Type"] != "AWS::Serverless::Function":
                continue
            p = res.get("Properties", {})
            env = dict(base_env)
            env.update(p.get("Environment", {}).get("Variables", {}))
            env = {k: str(self.resolve(v)) for k, v in env.items()}
            # The local stack only: function URLs carry no JWT, so every caller gets these scopes.
            # A function honours this only while AWS_ENDPOINT_URL points at this machine.
            env["MDM_LOCAL_SCOPES"] = self.local_scopes
            sources = []
            for ev_name, ev in p.get("Events", {}).items():
                kind, ep = ev["Type"], ev.get("Properties", {})
                if kind == "SQS":
                    arn = self.resolve(ep["Queue"])
                    queue = next(v for v in self.made.values() if v.get("Arn") == arn)
                    sources.append({"name": ev_name, "type": "sqs", "queueUrl": queue["QueueUrl"],
                                    "batchSize": ep.get("BatchSize", 10),
                                    "reportBatchItemFailures": "ReportBatchItemFailures" in ep.get("FunctionResponseTypes", [])})
                elif kind == "DynamoDB":
                    dest = ep.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                    dlq = next((v["QueueUrl"] for v in self.made.values() if dest and v.get("Arn") == self.resolve(dest)), None)
                    sources.append({"name": ev_name, "type": "dynamodb", "streamArn": self.resolve(ep["Stream"]),
                                    "batchSize": ep.get("BatchSize", 100),
                                    "maximumRetryAttempts": ep.get("MaximumRetryAttempts", -1),
                                    "onFailureQueueUrl": dlq,
                                    "filters": [json.loads(f["Pattern"]) for f in ep.get("FilterCriteria", {}).get("Filters", [])]})
                elif kind == "HttpApi":
                    sources.append({"name": ev_name, "type": "http", "method": ep.get("Method"), "path": ep.get("Path"),
                                    "scopes": ep.get("Auth", {}).get("AuthorizationScopes", [])})
            binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary", logical)
            out[logical] = {"binary": binary, "env": env, "eventSources": sources}
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", required=True, help="name prefix for every resource (isolates runs)")
    ap.add_argument("--template", default=DEFAULT_TEMPLATE)
    ap.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    if not re.fullmatch(r"[A-Za-z0-9-]{1,40}", args.prefix):
        sys.exit("bootstrap: --prefix must be 1-40 letters, digits or '-'")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    with open(args.template) as f:
        template = yaml.load(f, Loader=CfnLoader)
    params = dict(p.split("=", 1) for p in args.parameter)
    stack = Stack(template, args.prefix, params, region)
    for logical, res in template["Resources"].items():
        if res["Type"].startswith("AWS::Serverless::") or res["Type"].startswith("AWS::CloudWatch::"):
            stack.skipped.append(logical)
            continue
        stack.create(logical)
    out = {
        "prefix": args.prefix,
        "region": region,
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "resources": {k: v for k, v in stack.made.items() if k not in stack.skipped},
        "functions": stack.functions(),
        "notCreatedLocally": sorted(set(stack.skipped)),
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
