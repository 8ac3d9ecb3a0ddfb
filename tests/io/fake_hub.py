#!/usr/bin/env python3
"""A minimal stand-in for the Hugging Face Hub on 127.0.0.1, for the download tests.

Serves the files under --root as repository --repo at commit --sha:
  GET /api/models/<repo>/revision/<rev>   -> {"sha": ..., "siblings": [{"rfilename": ...}, ...]}
  GET /<repo>/resolve/<sha>/<path>        -> the file, with an ETag, honouring "Range: bytes=N-"
--cut-after N: the first request for each file sends only N bytes and drops the connection (to test resuming).
--bad-name NAME: list NAME among the siblings (to test unsafe names).
Prints "<port> <pid>" on its first line, then logs requests to stderr. Stops after --lifetime seconds.
"""
import argparse
import hashlib
import http.server
import json
import os
import threading
import urllib.parse

args = None
cut_done = set()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *a):
        import sys
        sys.stderr.write("fake_hub: " + (fmt % a) + " range=" + str(self.headers.get("Range")) + "\n")

    def files(self):
        out = []
        for base, _, names in os.walk(args.root):
            for n in names:
                out.append(os.path.relpath(os.path.join(base, n), args.root))
        return sorted(out)

    def do_GET(self):
        path = urllib.parse.unquote(self.path)
        api = "/api/models/%s/revision/" % args.repo
        resolve = "/%s/resolve/%s/" % (args.repo, args.sha)
        if path.startswith(api):
            siblings = [{"rfilename": f} for f in self.files()]
            if args.bad_name:
                siblings.append({"rfilename": args.bad_name})
            body = json.dumps({"sha": args.sha, "siblings": siblings}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if not path.startswith(resolve):
            self.send_error(404)
            return
        name = path[len(resolve):]
        full = os.path.join(args.root, name)
        if name not in self.files():
            self.send_error(404)
            return
        data = open(full, "rb").read()
        etag = hashlib.sha256(data).hexdigest()
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        if start > len(data):
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("ETag", '"%s"' % etag)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        chunk = data[start:]
        if args.cut_after and name not in cut_done and len(chunk) > args.cut_after:
            cut_done.add(name)
            self.wfile.write(chunk[: args.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(chunk)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--sha", default="0123456789abcdef0123456789abcdef01234567")
    p.add_argument("--cut-after", type=int, default=0)
    p.add_argument("--bad-name", default="")
    p.add_argument("--lifetime", type=float, default=120.0)
    args = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], os.getpid(), flush=True)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
