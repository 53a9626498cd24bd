#!/usr/bin/python3
"""tls.py: https listeners of the Secrets Manager emulator, and the test PKI
they serve.

Nothing here is committed as a key or a certificate: `make-pki DIR` makes
them at test time with the openssl command:

    ca.crt, ca.key          a test CA
    server.crt, server.key  signed by ca, for 127.0.0.1, ::1 and localhost
    wrong-host.crt, .key    signed by ca, for wrong-host.invalid only
    other-ca.crt            a CA that signed nothing served here

`smemu.py --tls-dir DIR` then serves, next to its plain http port, one https
listener per certificate of DIR (server, wrong-host): the same handler, so
the same store, counters and log.  Each listener writes its port to
DIR/<name>.port and one line per event to DIR/<name>.log:

    handshake-ok
    handshake-failed <reason>
    request <METHOD> <path>

so a test can show that a client refused the certificate (the handshake
failed) and that no request arrived over it.

usage: tls.py make-pki DIR
"""

import os
import ssl
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer

LISTENERS = ("server", "wrong-host")
HANDSHAKE_TIMEOUT = 10


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _ca(d, name, cn):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
             "-days", "2", "-subj", "/CN=%s" % cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", name + ".key", "-out", name + ".crt", cwd=d)


def _leaf(d, name, cn, san):
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=%s\n" % san)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256",
             "-subj", "/CN=%s" % cn, "-keyout", name + ".key",
             "-out", name + ".csr", cwd=d)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
             "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-sha256", "-extfile", ext, "-out", name + ".crt", cwd=d)
    os.unlink(os.path.join(d, name + ".csr"))
    os.unlink(ext)


def make_pki(d):
    """Make the test CA and the certificates the listeners serve in d."""
    os.makedirs(d, exist_ok=True)
    _ca(d, "ca", "secretsmgr test CA")
    _ca(d, "other-ca", "secretsmgr unrelated test CA")
    os.unlink(os.path.join(d, "other-ca.key"))
    _leaf(d, "server", "127.0.0.1",
          "IP:127.0.0.1,IP:::1,DNS:localhost")
    _leaf(d, "wrong-host", "wrong-host.invalid", "DNS:wrong-host.invalid")
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name),
                 0o600 if name.endswith(".key") else 0o644)


def _write_port(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


class TlsServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer whose connections speak TLS.  The handshake is
    made in the connection's own thread, so a client that stalls it holds
    up no one else."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, context, log_path):
        self.context = context
        self.log_path = log_path
        self.log_lock = threading.Lock()
        open(log_path, "a").close()
        super().__init__(addr, handler)

    def note(self, line):
        with self.log_lock, open(self.log_path, "a") as f:
            f.write(line + "\n")

    def get_request(self):
        sock, addr = self.socket.accept()
        return (self.context.wrap_socket(sock, server_side=True,
                                         do_handshake_on_connect=False),
                addr)

    def finish_request(self, request, client_address):
        try:
            request.settimeout(HANDSHAKE_TIMEOUT)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            reason = getattr(e, "reason", None) or type(e).__name__
            self.note("handshake-failed %s" % reason)
            return
        self.note("handshake-ok")
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass


def _handler_for(handler, server_ref):
    class TlsHandler(handler):
        def parse_request(self):
            ok = super().parse_request()
            if ok:
                server_ref[0].note("request %s %s" % (self.command,
                                                      self.path))
            return ok
    return TlsHandler


def serve(d, handler):
    """Start one https listener per certificate of d (see the module
    docstring), each in a daemon thread; returns the servers."""
    servers = []
    for name in LISTENERS:
        crt = os.path.join(d, name + ".crt")
        key = os.path.join(d, name + ".key")
        if not (os.path.exists(crt) and os.path.exists(key)):
            continue
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(crt, key)
        ref = [None]
        srv = TlsServer(("127.0.0.1", 0), _handler_for(handler, ref), ctx,
                        os.path.join(d, name + ".log"))
        ref[0] = srv
        threading.Thread(target=srv.serve_forever, kwargs={
            "poll_interval": 0.2}, daemon=True).start()
        _write_port(os.path.join(d, name + ".port"), srv.server_address[1])
        servers.append(srv)
    return servers


def main(argv):
    if len(argv) == 2 and argv[0] == "make-pki":
        make_pki(argv[1])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
