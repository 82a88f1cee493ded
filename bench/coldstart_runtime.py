#!/usr/bin/env python3
"""Init time of Lambda bootstrap binaries against a local Lambda Runtime API (bench/coldstart.sh).

Serves the Runtime API on a free loopback port and, for each run, starts a bootstrap binary with
the environment Lambda and the SAM template give it. The init time is the time from just before
the process is spawned to the arrival of its first `GET /2018-06-01/runtime/invocation/next`. The
request is held unanswered and the process killed. The AWS endpoint points at a listener that
answers nothing: a connection to it during init fails the benchmark, as does a binary that exits
or calls anything else before asking for its first event.

Usage: coldstart_runtime.py [--runs N] [--warmup N] NAME=BOOTSTRAP [NAME=BOOTSTRAP ...]
Prints one tab-separated line per function: name, median ms, p90 ms, runs.
"""

import argparse
import math
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NEXT = "/2018-06-01/runtime/invocation/next"
SECRET = "coldstart-benchmark-suppression-secret-0123456789"  # >= 32 characters
START_TIMEOUT_S = 10.0


class Run:
    """One start of one binary: when its first `next` request arrived, and anything unexpected."""

    def __init__(self):
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.t_next = None
        self.unexpected = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        now = time.perf_counter()
        run = self.server.run
        if self.path != NEXT:
            run.unexpected.append(f"GET {self.path}")
            run.arrived.set()
            return
        if run.t_next is None:
            run.t_next = now
        run.arrived.set()
        # Hold the request: no event is ever delivered; the driver kills the process.
        run.release.wait(START_TIMEOUT_S)
        self.close_connection = True

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        run = self.server.run
        run.unexpected.append(f"POST {self.path} {body}")
        run.arrived.set()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def free_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def lambda_env(name, runtime_port, aws_port):
    aws = f"http://127.0.0.1:{aws_port}"
    queue = f"{aws}/000000000000/"
    return {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[1]coldstart",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL": aws,
        "MDM_EMF": "off",
        "MDM_TABLE_NAME": "mdm-hub",
        "MDM_MATCH_QUEUE_URL": queue + "mdm-match",
        "MDM_MERGE_QUEUE_URL": queue + "mdm-merge",
        "MDM_INGEST_DLQ_URL": queue + "mdm-ingest-dlq",
        "MDM_MATCH_DLQ_URL": queue + "mdm-match-dlq",
        "MDM_MERGE_DLQ_URL": queue + "mdm-merge-dlq",
        "MDM_EVENT_BUS_NAME": "mdm-hub",
        "MDM_ERASURE_QUEUE_URL": queue + "mdm-erasure",
        "MDM_ERASURE_DLQ_URL": queue + "mdm-erasure-dlq",
        "MDM_SUPPRESSION_SECRETS": SECRET,
    }


def fail(name, why, out_path, err_path):
    sys.stderr.write(f"coldstart: {name}: {why}\n")
    for label, path in (("stdout", out_path), ("stderr", err_path)):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        sys.stderr.write(f"--- {name} {label}\n{text}\n")
    sys.exit(1)


def start_once(server, aws_sock, name, binary, workdir):
    """Starts `binary` once; returns its init time in ms."""
    run = Run()
    server.run = run
    env = lambda_env(name, server.server_address[1], aws_sock.getsockname()[1])
    out_path = os.path.join(workdir, f"{name}.stdout")
    err_path = os.path.join(workdir, f"{name}.stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = t0 + START_TIMEOUT_S
        exited = None
        while not run.arrived.wait(0.01):
            exited = proc.poll()
            if exited is not None or time.perf_counter() > deadline:
                break
        proc.kill()
        proc.wait()
        run.release.set()
    if run.unexpected:
        fail(name, "unexpected Runtime API call during init: " + "; ".join(run.unexpected), out_path, err_path)
    if run.t_next is None:
        why = f"exited with status {exited} during init" if exited is not None else f"no request in {START_TIMEOUT_S} s"
        fail(name, why, out_path, err_path)
    if select.select([aws_sock], [], [], 0)[0]:
        fail(name, "connected to the AWS endpoint during init", out_path, err_path)
    return (run.t_next - t0) * 1000.0


def p90(samples):
    ordered = sorted(samples)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]  # nearest rank


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1, help="starts per function before measuring (discarded)")
    ap.add_argument("functions", nargs="+", metavar="NAME=BOOTSTRAP")
    args = ap.parse_args()
    targets = []
    for spec in args.functions:
        name, sep, binary = spec.partition("=")
        if not sep or not os.access(binary, os.X_OK):
            sys.exit(f"coldstart: {spec!r} is not NAME=EXECUTABLE")
        targets.append((name, os.path.abspath(binary)))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    aws_sock = free_listener()
    samples = {name: [] for name, _ in targets}
    with tempfile.TemporaryDirectory(prefix="coldstart-") as workdir:
        # Round robin, so drift in the machine's load spreads over every function alike.
        for i in range(args.warmup + args.runs):
            for name, binary in targets:
                ms = start_once(server, aws_sock, name, binary, workdir)
                if i >= args.warmup:
                    samples[name].append(ms)
    server.shutdown()
    for name, _ in targets:
        s = samples[name]
        print(f"{name}\t{statistics.median(s):.1f}\t{p90(s):.1f}\t{len(s)}")


if __name__ == "__main__":
    main()
