#!/usr/bin/python3
"""recording_proxy.py: a forward HTTP proxy on 127.0.0.1 that writes one line
per request it is asked to carry ("METHOD absolute-URL", or "CONNECT
host:port" for a tunnel) to a log file, then forwards it.  Tests point a
server's http_proxy/HTTPS_PROXY/ALL_PROXY at it to see which requests went
through a proxy.  Plain http requests are forwarded; CONNECT opens a tunnel
to a loopback address only (the https traffic inside stays opaque to the
proxy).  With --require-auth USER:PASSWORD, a request without that
Proxy-Authorization (Basic) is recorded with " 407" appended and refused
with 407.  Stops by itself when --parent-pid is gone or after --lifetime
seconds.

usage: recording_proxy.py --port-file F --log F [--parent-pid P] [--lifetime S]
       [--require-auth USER:PASSWORD]
"""

import argparse
import base64
import http.client
import select
import socket
import http.server
import os
import sys
import threading
import time
import urllib.parse

HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "proxy-authorization",
              "te", "trailer", "transfer-encoding", "upgrade"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_path = None
    lock = threading.Lock()

    def log_message(self, fmt, *args):
        pass

    require_auth = None

    def record(self, suffix=""):
        with self.lock, open(self.log_path, "a") as f:
            f.write("%s %s%s\n" % (self.command, self.path, suffix))

    def refuse(self, status, extra=None):
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def authorized(self):
        """True when no credentials are required or the right ones came;
        otherwise records the request, answers 407 and returns False."""
        if self.require_auth is None:
            return True
        want = "Basic " + base64.b64encode(
            self.require_auth.encode()).decode()
        if self.headers.get("Proxy-Authorization", "") == want:
            return True
        self.record(" 407")
        self.refuse(407, {"Proxy-Authenticate": 'Basic realm="test"'})
        return False

    def do_CONNECT(self):
        if not self.authorized():
            return
        self.record()
        host, _, port = self.path.rpartition(":")
        host = host.strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1") or not port.isdigit():
            self.refuse(403)
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=30)
        except OSError:
            self.refuse(502)
            return
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        client = self.connection
        try:
            while True:
                r, _, _ = select.select([client, upstream], [], [], 60)
                if not r:
                    break
                done = False
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        done = True
                        break
                    (upstream if s is client else client).sendall(data)
                if done:
                    break
        except OSError:
            pass
        finally:
            upstream.close()

    def forward(self):
        if not self.authorized():
            return
        self.record()
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
            path = url.path or "/"
            if url.query:
                path += "?" + url.query
            conn.request(self.command, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, reason, rheaders = resp.status, resp.reason, resp.getheaders()
            conn.close()
        except OSError:
            status, reason, rheaders, data = 502, "Bad Gateway", [], b""
        self.send_response(status, reason)
        for k, v in rheaders:
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--lifetime", type=float, default=900)
    ap.add_argument("--require-auth")
    a = ap.parse_args()
    Handler.log_path = a.log
    Handler.require_auth = a.require_auth
    open(a.log, "a").close()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, a.port_file)

    def watchdog():
        deadline = time.time() + a.lifetime
        while time.time() < deadline:
            if a.parent_pid:
                try:
                    os.kill(a.parent_pid, 0)
                except OSError:
                    break
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
