#!/usr/bin/env python3
"""Serves moto (DynamoDB + Streams, SQS, EventBridge) on loopback, one request at a time.

moto's own server runs requests on threads without a lock, and its DynamoDB transactions copy and
restore whole tables: two requests at once can interleave and corrupt state. This launcher keeps
moto's threaded HTTP server (so idle keep-alive connections block nobody) but runs the WSGI
application under one lock.

    python infra/local/moto_launcher.py --port 0 --port-file .local/moto.port
"""
import argparse
import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


class Serialised:
    """WSGI middleware: one request inside the application at a time, body included."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.served = 0

    def __call__(self, environ, start_response):
        with self.lock:
            self.served += 1
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close:
                    close()


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
