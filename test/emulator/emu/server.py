"""The HTTP server: request plumbing and dispatch, the Secrets Manager API
path (signature, fault, deny, IAM, operation, dialect), the command line
and main().
"""

import argparse
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .admin import AdminMixin
from .common import ApiError, client_error
from .credentials import CredentialsMixin
from .dialects import (
    DIALECTS, dialect_error, dialect_request, dialect_response, parse_dialects)
from .faults import FaultsMixin
from .iam import access_denied_message, iam_check_call
from . import lost_answer
from .operations import HANDLERS
from .params import p_value
from .sigv4 import verify_signature
from .state import Emulator
from .sts import is_sts_request


# ---------------------------------------------------------------------------
# HTTP handler
# ---------------------------------------------------------------------------

class Handler(FaultsMixin, CredentialsMixin, AdminMixin,
              BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "smemu/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = 256 * 1024       # one write per response (flushed in send)
    emu = None      # set on the class by main()

    def log_message(self, fmt, *args):   # quiet: we keep our own log
        pass

    def version_string(self):
        return self.server_version

    # --- plumbing ----------------------------------------------------------
    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n",
                                                             b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body=b"", ctype="application/x-amz-json-1.1",
             headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status, obj, ctype="application/x-amz-json-1.1"):
        self.send(status, json.dumps(obj), ctype)

    def send_error_json(self, e):
        ctype, body = dialect_error(self.emu, e)
        self.send(e.status, body, ctype, headers=e.headers)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- dispatch ----------------------------------------------------------
    def do_POST(self):
        self.dispatch()

    def do_GET(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        start = time.monotonic()
        path = urlsplit(self.path).path
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.send(400, "bad request body", "text/plain")
            return
        try:
            if path.startswith("/_admin/sts"):
                self.emu.sts.handle_admin(self, path, body)
            elif path.startswith("/_admin/"):
                self.handle_admin(path, body, start)
            elif is_sts_request(self, path, body):
                self.emu.sts.handle(self, body, start)
            elif path.startswith("/ecs/"):
                self.handle_ecs(path, start)
            elif path.startswith("/latest/"):
                self.handle_imds(path, start)
            else:
                self.handle_api(body, start)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def elapsed_us(self, start):
        return int((time.monotonic() - start) * 1e6)

    # --- Secrets Manager API -----------------------------------------------
    def handle_api(self, body, start):
        emu = self.emu
        target = self.headers.get("X-Amz-Target", "")
        op = target[len("secretsmanager."):] \
            if target.startswith("secretsmanager.") else None
        secret_id = None
        try:
            if self.command != "POST" or urlsplit(self.path).path != "/":
                raise ApiError(404, "UnknownOperationException",
                               "Unknown path or method.")
            try:
                parsed = json.loads(body.decode("utf-8")) if body else {}
            except (ValueError, UnicodeDecodeError):
                parsed = None
            if isinstance(parsed, dict):
                sid = parsed.get("SecretId")
                if isinstance(sid, str):
                    secret_id = sid
                elif isinstance(parsed.get("SecretIdList"), list):
                    secret_id = ",".join(str(x) for x in
                                         parsed["SecretIdList"])
                elif isinstance(parsed.get("Name"), str):
                    secret_id = parsed["Name"]
            try:
                policy_key = verify_signature(emu, self, body)
            except ApiError:
                with emu.lock:
                    emu.sig_failures += 1
                raise
            if op not in HANDLERS:
                raise client_error("UnknownOperationException",
                                   "Unknown operation %s"
                                   % (target or "(no X-Amz-Target)"))
            with emu.lock:
                emu.calls[op] = emu.calls.get(op, 0) + 1
            ctype = self.headers.get("Content-Type", "")
            if not ctype.startswith("application/x-amz-json-1.1"):
                raise client_error("SerializationException",
                                   "Content-Type must be "
                                   "application/x-amz-json-1.1")
            if not isinstance(parsed, dict):
                raise client_error("SerializationException",
                                   "Start of structure or map found where "
                                   "not expected." if parsed is not None else
                                   "The request body is not valid JSON.")
            ids = []
            if isinstance(parsed.get("SecretIdList"), list):
                ids = [x for x in parsed["SecretIdList"]
                       if isinstance(x, str)]
            elif secret_id is not None:
                ids = [secret_id]
            f = emu.take_fault(op, ids)
            if not lost_answer.arm(self, f) and f is not None and \
                    self.serve_fault(f, op, secret_id, start):
                return
            if op != "BatchGetSecretValue" and \
                    emu.is_denied(op, parsed.get("SecretId")):
                raise client_error(
                    "AccessDeniedException",
                    access_denied_message(op, parsed.get("SecretId")))
            with emu.lock:
                iam_check_call(emu, policy_key, op, parsed)
                emu.request_key = policy_key
                try:
                    result = HANDLERS[op](emu, dialect_request(emu, op, parsed))
                finally:
                    emu.request_key = None
            result = {k: v for k, v in result.items() if v is not None}
            result = dialect_response(emu, op, result)
            if lost_answer.intercept(self, emu, op, secret_id, start):
                return
            self.send_json(200, result)
            emu.record(op or target, secret_id, 200, self.elapsed_us(start))
        except ApiError as e:
            self.send_error_json(e)
            emu.record(op or target or "-", secret_id, e.status,
                       self.elapsed_us(start), error=e.etype)
        except Exception as e:      # a bug here must still answer
            err = ApiError(500, "InternalServiceError",
                           "emulator error: %s" % type(e).__name__)
            self.send_error_json(err)
            emu.record(op or "-", secret_id, 500, self.elapsed_us(start),
                       error="InternalServiceError")
            sys.stderr.write("smemu: internal error in %s: %r\n" % (op, e))


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def load_seed(emu, path):
    with open(path) as f:
        data = json.load(f)
    for item in data.get("secrets", []):
        s = emu.store.create(item["Name"], item.get("Description"))
        kind, value = p_value(item)
        if kind is not None:
            s.add_version(item.get("VersionId") or str(uuid.uuid4()), kind,
                          value, ["AWSCURRENT"])


def write_port_file(path, port):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".smemu-port.", dir=d)
    with os.fdopen(fd, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Local AWS Secrets Manager emulator (tests only).")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--access-key", default="AKIDSECRETSMGRTEST")
    ap.add_argument("--secret-key",
                    default="TESTSECRETKEY/secretsmgr+EXAMPLE")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--seed")
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--log")
    ap.add_argument("--ecs-token")
    ap.add_argument("--temp-cred-ttl", type=int, default=3600)
    ap.add_argument("--key", action="append", metavar="AKID:SECRET",
                    help="another static key pair (repeatable)")
    ap.add_argument("--iam-policy", action="append", metavar="AKID=FILE",
                    help="attach the IAM policy in FILE to key AKID "
                    "(repeatable; *temporary* for issued credentials)")
    ap.add_argument("--dialect", type=parse_dialects, default=set(),
                    help="answer as other implementations do: a comma list "
                    "of %s" % ", ".join(sorted(DIALECTS)))
    ap.add_argument("--tls-dir", help="also serve https with the "
                    "certificates of this directory (see tls.py)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    emu = Emulator(args)
    if args.seed:
        load_seed(emu, args.seed)
    Handler.emu = emu
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    stop = threading.Event()

    def shutdown(*_a):
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)

    if args.parent_pid:
        def watch_parent():
            while not stop.wait(0.5):
                try:
                    os.kill(args.parent_pid, 0)
                except ProcessLookupError:
                    shutdown()
                except PermissionError:
                    pass
        threading.Thread(target=watch_parent, daemon=True).start()

    if args.tls_dir:
        import tls      # test/emulator/tls.py, beside the entry point
        tls.serve(args.tls_dir, Handler)
    if args.port_file:
        write_port_file(args.port_file, port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        server.server_close()
        if args.port_file:
            try:
                with open(args.port_file) as f:
                    if f.read().strip() == str(port):
                        os.unlink(args.port_file)
            except OSError:
                pass
        if emu.log_file is not None:
            emu.log_file.close()
    return 0
