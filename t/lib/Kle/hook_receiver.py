#!/usr/bin/env python3
"""Receives the module's hook POSTs for t/005_hooks.t.

Each request is appended to DIR/hooks.jsonl as one JSON line:
{"seq", "time", "method", "path", "content_type", "body"} where body is the
decoded JSON body, or the raw text if it is not JSON.  Answers 200, or the
code given by a "code=N" query.  DIR/port appears once it listens.
"""

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

LOCK = threading.Lock()
SEQ = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        url = urlsplit(self.path)
        code = int(parse_qs(url.query).get("code", ["200"])[0])
        with LOCK:
            SEQ[0] += 1
            rec = {"seq": SEQ[0], "time": time.time(),
                   "method": self.command, "path": url.path,
                   "content_type": self.headers.get("Content-Type"),
                   "body": body}
            with open(self.server.log_path, "a") as out:
                out.write(json.dumps(rec) + "\n")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    do_POST = handle_any
    do_GET = handle_any
    do_PUT = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.log_path = os.path.join(args.dir, "hooks.jsonl")
    open(srv.log_path, "a").close()
    tmp = os.path.join(args.dir, "port.tmp")
    with open(tmp, "w") as out:
        out.write(str(srv.server_address[1]))
    os.rename(tmp, os.path.join(args.dir, "port"))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
