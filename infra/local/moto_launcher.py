#!/usr/bin/env python3
"""Serves moto (DynamoDB + Streams, SQS, EventBridge) on loopback, one request at a time.

moto's own server runs requests on threads without a lock, and its DynamoDB transactions copy and
restore whole tables: two requests at once can interleave and corrupt state. This launcher keeps
moto's threaded HTTP server (so idle keep-alive connections block nobody) but runs the WSGI
application under one lock.

It also replaces the whole-table copy that moto takes before every TransactWriteItems (its way to
roll back) by a snapshot of just the items the transaction names plus the length of the table's
stream: the copy costs time and memory in proportion to the table (minutes and gigabytes for a few
hundred records, since a restored copy also strands every stream iterator taken before). The
rollback stays all-or-nothing; the store conformance suite checks it on every run.

And SendMessage on a standard queue no longer computes every attribute of the queue: moto reads
one (ContentBasedDeduplication, a FIFO attribute) from the full set, whose message counts walk every
message in the queue, so sending to a queue holding n messages cost O(n) (a 10,000-row file's match
messages took minutes).

    python infra/local/moto_launcher.py --port 0 --port-file .local/moto.port
"""
import argparse
import copy
import os
import sys
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from moto.dynamodb import models as ddb_models
from moto.sqs import models as sqs_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table


class _TableCopyIsSnapshot:
    """Stands in for the `copy` module inside moto.dynamodb.models during a transaction: a Table is
    not copied (the item snapshot below restores it); anything else is copied as before."""

    @staticmethod
    def deepcopy(x, memo=None):
        return x if isinstance(x, Table) else copy.deepcopy(x, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


_original_transact = ddb_models.DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    snapshot = []  # (table, hash key, range key, the item before, or None)
    streams = {}  # table name -> (shard, record count before)
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName"))
        if table is None:
            continue
        key = op.get("Item") if op_type == "Put" else op.get("Key")
        if not key or table.hash_key_attr not in key:
            continue
        hk = DynamoType(key[table.hash_key_attr])
        rk = DynamoType(key[table.range_key_attr]) if table.range_key_attr and table.range_key_attr in key else None
        try:
            old = table.get_item(hk, rk)
        except Exception:  # invalid key: moto's own validation reports it
            continue
        snapshot.append((table, hk, rk, copy.deepcopy(old) if old is not None else None))
        if table.stream_shard is not None and table.name not in streams:
            streams[table.name] = (table.stream_shard, len(table.stream_shard.items))
    ddb_models.copy = _TableCopyIsSnapshot()
    try:
        return _original_transact(self, transact_items)
    except Exception:
        for table, hk, rk, old in reversed(snapshot):
            if rk is not None:
                if old is None:
                    table.items[hk].pop(rk, None)
                else:
                    table.items[hk][rk] = old
            elif old is None:
                table.items.pop(hk, None)
            else:
                table.items[hk] = old
        for shard, count in streams.values():
            del shard.items[count:]
        raise
    finally:
        ddb_models.copy = copy


ddb_models.DynamoDBBackend.transact_write_items = _transact_write_items


_queue_attributes = sqs_models.Queue.attributes
_send_message = sqs_models.SQSBackend.send_message


class _Sending:
    """Set while SendMessage runs (requests run one at a time: see Serialised)."""

    active = False


def _attributes(queue):
    if _Sending.active and not queue.fifo_queue:
        # What SendMessage reads of a standard queue's attributes: none of them is set.
        return {}
    return _queue_attributes.fget(queue)


def _send(self, *args, **kwargs):
    _Sending.active = True
    try:
        return _send_message(self, *args, **kwargs)
    finally:
        _Sending.active = False


sqs_models.Queue.attributes = property(_attributes)
sqs_models.SQSBackend.send_message = _send


class Serialised:
    """WSGI middleware: one request inside the application at a time, body included."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.served = 0
        # MDM_MOTO_TRACE=<file>: one line per request (operation, milliseconds) to find what a slow test waits on.
        trace = os.environ.get("MDM_MOTO_TRACE")
        self.trace = open(trace, "a", buffering=1) if trace else None

    def __call__(self, environ, start_response):
        with self.lock:
            self.served += 1
            started = time.perf_counter()
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close:
                    close()
                if self.trace:
                    operation = environ.get("HTTP_X_AMZ_TARGET") or environ.get("PATH_INFO", "")
                    self.trace.write(f"{operation}\t{(time.perf_counter() - started) * 1000:.1f}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="loopback only (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5005, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the port here once listening")
    args = parser.parse_args()
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        sys.exit("moto_launcher: refusing to listen on a non-loopback address")
    app = Serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"moto (serialised) listening on http://{args.host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
