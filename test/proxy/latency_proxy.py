#!/usr/bin/python3
"""latency_proxy.py: a reverse proxy on 127.0.0.1 in front of the Secrets
Manager emulator that adds a fixed delay to every Secrets Manager call (a
POST to / with an X-Amz-Target header): what a network round trip to
Secrets Manager in a region costs, on loopback.  Everything else (the
emulator's admin paths, credential endpoints) passes through at once.

Requests are forwarded byte for byte with their own Host header, so a
SigV4 signature made for the proxy's address is what the emulator checks.
Client connections are kept alive, and each of them holds its own kept-alive
connection to the emulator; both sides run without Nagle's algorithm and an
answer goes out in one write, so the delay is the only cost added beyond
the forwarding itself.  Stops by itself when --parent-pid is gone or after
--lifetime seconds.

usage: latency_proxy.py --upstream http://127.0.0.1:PORT --port-file F
                        [--delay-ms 10] [--parent-pid P] [--lifetime S]
"""

import argparse
import http.client
import http.server
import os
import socket
import sys
import threading
import time
import urllib.parse

HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "proxy-authorization",
              "te", "trailer", "transfer-encoding", "upgrade"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None             # (host, port)
    delay_s = 0.010
    lock = threading.Lock()
    delayed = 0                 # Secrets Manager calls delayed so far

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        # no Nagle: a small answer must not wait for the client's delayed
        # ACK (40 ms), which would add far more than the delay asked for
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def upstream_conn(self, fresh=False):
        conn = getattr(self, "_up", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(*self.upstream, timeout=120)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._up = conn
        return conn

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.command == "POST" and self.headers.get("X-Amz-Target"):
            time.sleep(self.delay_s)
            with Handler.lock:
                Handler.delayed += 1
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP}
        data = None
        for attempt in (1, 2):
            try:
                conn = self.upstream_conn(fresh=attempt == 2)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status, reason, rheaders = resp.status, resp.reason, resp.getheaders()
                break
            except (OSError, http.client.HTTPException):
                if attempt == 2:
                    # the emulator dropped the call (a fault): so do we
                    self.close_connection = True
                    return
        self.send_response(status, reason)
        for k, v in rheaders:
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        # headers and body in one write
        self._headers_buffer.append(b"\r\n" + data)
        self.flush_headers()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

    def finish(self):
        conn = getattr(self, "_up", None)
        if conn is not None:
            conn.close()
        super().finish()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--delay-ms", type=float, default=10.0)
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--lifetime", type=float, default=1800)
    a = ap.parse_args()
    up = urllib.parse.urlsplit(a.upstream)
    Handler.upstream = (up.hostname, up.port or 80)
    Handler.delay_s = a.delay_ms / 1000.0
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
