#!/usr/bin/python3
"""recording_proxy.py: a forward HTTP proxy on 127.0.0.1 that writes one line
per request it is asked to carry ("METHOD absolute-URL") to a log file, then
forwards it.  Tests point a server's http_proxy/HTTPS_PROXY/ALL_PROXY at it to
see which requests went through a proxy.  Plain http only (CONNECT is
recorded and refused).  Stops by itself when --parent-pid is gone or after
--lifetime seconds.

usage: recording_proxy.py --port-file F --log F [--parent-pid P] [--lifetime S]
"""

import argparse
import http.client
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

    def record(self):
        with self.lock, open(self.log_path, "a") as f:
            f.write("%s %s\n" % (self.command, self.path))

    def do_CONNECT(self):
        self.record()
        self.send_response(501)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def forward(self):
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
    a = ap.parse_args()
    Handler.log_path = a.log
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
