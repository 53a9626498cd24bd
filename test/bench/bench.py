#!/usr/bin/python3
"""test/bench/bench.py: the measurements behind `make bench`.

Called by test/bench/run once the emulator and a throwaway cluster are up
(PGHOST, PGPORT, PGUSER and SM_EMULATOR_URL set by test/lib.sh).  Prints one
table and rewrites docs/benchmarks.md with it, the machine and the versions.

Every figure is measured side by side in the same run against the same
emulator; timings are medians over several runs.  No password is printed.

Adding a row: write a function that appends Row(...) objects to ROWS (and
method text to METHODS), and call it from main().

Optional tools: perf (uprobes count PostgreSQL's PBKDF2 calls per rotation)
and strace (connects on a warm path); without them those figures say "not
measured".
"""

import argparse
import base64
import hashlib
import hmac
import ctypes
import http.client
import datetime
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import boto3
import botocore
import psycopg2
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

import latency

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SMCTL = os.path.join(ROOT, "test", "emulator", "smctl")

CACHED_CALLS = 100_000
CACHED_RUNS = 5
UNCACHED_BATCHES = 5
UNCACHED_BATCH = 400            # 5 x 400 = 2,000 calls per method
ROTATIONS = 60
ROTATION_WARMUP = 3
FLOOR_TXNS = 50
REF_ROTATIONS = 20              # reference-Lambda-style rotations
FLEET = 1000                    # managed roles in the fleet
LOGINS = 150                    # password logins per batch
LOGIN_ROUNDS = 3                # batches per mode, modes interleaved
FLEET_BATCH = 100               # due per secretsmgr_rotate_due() call
MEM_READS = 100_000             # cached reads in the memory row
MEM_UNCACHED = 2_000            # uncached reads in the memory row

# the performance targets (docs/benchmarks.md states each met or missed)
CACHED_TARGET_US = 5.0
CACHED_TARGET_X = 3.0           # × the trivial-function floor
UNCACHED_TARGET_X = 3.0         # × faster than boto3
SHARE_TARGET_US = 100.0
ROTATION_REF_TARGET_X = 10.0    # × faster than the reference Lambda
ROTATION_FLOOR_TARGET_X = 2.0   # × the floor
FLEET_TARGET_S = 30.0
PBKDF2_N = 200                  # verifiers built each way in the PBKDF2 row
FLEET_ONE_CALL_TARGET_S = 8.0   # 1,000 due in one call, under +10 ms a call


class Row:
    def __init__(self, name, ours, ours_unit, against, theirs, target="—",
                 note=""):
        self.name = name
        self.ours = ours            # float, or None when not measured
        self.unit = ours_unit
        self.against = against      # what the comparison figure is
        self.theirs = theirs        # float or None
        self.target = target
        self.note = note

    def cells(self):
        def fmt(v):
            if v is None:
                return "not measured"
            if v >= 100:
                return "%.0f %s" % (v, self.unit)
            if v >= 10:
                return "%.1f %s" % (v, self.unit)
            if v >= 1:
                return "%.2f %s" % (v, self.unit)
            return "%.3f %s" % (v, self.unit)
        if self.theirs is None and self.against == "—":
            return [self.name, fmt(self.ours), "—", "—", "—", self.target]
        if self.ours is None or self.theirs is None or self.theirs <= 0:
            ratio = "—"
        else:
            ratio = "%.2f×" % (self.ours / self.theirs)
        return [self.name, fmt(self.ours), self.against, fmt(self.theirs),
                ratio, self.target]


ROWS = []
METHODS = []
NOTES = []
RESULTS = {}                    # figures one section hands to another
TARGETS = []                    # one paragraph per target
HEADER = ["measurement", "secretsmgr", "compared with", "that figure",
          "ratio (secretsmgr ÷ that)", "target"]


def say(msg):
    print("== " + msg, flush=True)


# --- helpers ----------------------------------------------------------------

def pg_connect(autocommit=True):
    conn = psycopg2.connect(dbname="postgres", application_name="bench")
    conn.autocommit = autocommit
    return conn


def q1(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchone()[0]


def smctl(*args):
    r = subprocess.run([sys.executable, SMCTL] + list(args),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("smctl %s: %s" % (args[0], r.stderr.strip()))
    return r.stdout


def emu_calls():
    return json.loads(smctl("calls"))["calls"]


def new_password():
    return secrets.token_urlsafe(24)


class EmuLog:
    """The emulator's per-request log: UTC time, op, SecretId, status, µs."""

    def __init__(self, path):
        self.path = path

    def mark(self):
        time.sleep(0.05)        # the line is written just after the response
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def service_us(self, start, end, op=None):
        out = {}
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read(end - start).decode("utf-8", "replace")
        for line in data.splitlines():
            parts = line.split("\t")
            if len(parts) != 5 or not parts[4].isdigit():
                continue
            if op is not None and parts[1] != op:
                continue
            out.setdefault(parts[1], []).append(int(parts[4]))
        return out if op is None else out.get(op, [])


def boto_client(url):
    return boto3.session.Session().client(
        "secretsmanager", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=os.environ["SM_TEST_ACCESS_KEY"],
        aws_secret_access_key=os.environ["SM_TEST_SECRET_KEY"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def server_loop_us(cur, expr, n):
    """Per-row time of SELECT count(expr) FROM generate_series(1, n) AS g(i),
    from the server's own Execution Time (EXPLAIN ANALYZE, TIMING OFF)."""
    cur.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) "
                "SELECT count(%s) FROM generate_series(1, %d) AS g(i)"
                % (expr, n))
    plan = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return plan[0]["Execution Time"] * 1000.0 / n


def scram_verifier(password, iterations=4096):
    """A SCRAM-SHA-256 verifier as PostgreSQL stores it in pg_authid."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                 iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (
        iterations, b64(salt), b64(hashlib.sha256(client_key).digest()),
        b64(server_key))


def med(xs):
    return statistics.median(xs) if xs else None


def backend_pid(cur):
    return q1(cur, "SELECT pg_backend_pid()")


def cpu_ns(pid):
    """CPU time (user + system) a process has used, in ns: the scheduler's
    own figure from /proc/<pid>/schedstat, else utime + stime."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1e9 / \
            os.sysconf("SC_CLK_TCK")


def rss_anon_kb(pid):
    """Private anonymous memory of a process (palloc'd and malloc'd alike;
    shared buffers are not in it), kB."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def syscall_counts(pid, work, names=("socket", "connect")):
    """Calls of each syscall in names a process makes while work() runs
    (strace -c attached to it), or None when strace is not there."""
    try:
        p = subprocess.Popen(["strace", "-c", "-e", "trace=" + ",".join(names),
                              "-p", str(pid)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    except OSError:
        work()
        return None
    time.sleep(0.5)                     # strace attaches
    work()
    p.send_signal(signal.SIGINT)
    err = p.communicate()[1]
    counts = {n: 0 for n in names}
    for line in err.splitlines():
        t = line.split()
        if len(t) >= 5 and t[-1] in counts and t[3].isdigit():
            counts[t[-1]] = int(t[3])
    if "attached" not in err:
        return None
    return counts


def contexts_kb(cur):
    """Total of the backend's own memory contexts, kB."""
    return float(q1(cur, "SELECT sum(total_bytes) / 1024.0 "
                    "FROM pg_backend_memory_contexts"))


class PeakRss(threading.Thread):
    """Samples a process's RssAnon every 5 ms; .peak is the largest seen."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_anon_kb(pid) or 0
        self.samples = 0
        self._halt = threading.Event()

    def reset(self):
        """Start a new peak from the current value; returns the old peak."""
        old = self.peak
        self.peak = rss_anon_kb(self.pid) or 0
        return old

    def run(self):
        while not self._halt.is_set():
            v = rss_anon_kb(self.pid)
            if v is not None:
                self.peak = max(self.peak, v)
                self.samples += 1
            time.sleep(0.005)

    def stop(self):
        self._halt.set()
        self.join()
        return self.peak


class ProbeCount:
    """Counts calls of a function of the PostgreSQL server in one backend
    with a perf uprobe (perf stat -e probe_postgres:<func> -p <pid>).
    Optional: stop() returns None when perf or uprobes are not there."""

    BIN = os.environ.get("SM_BENCH_POSTGRES") or os.path.join(
        subprocess.run([os.environ.get("PG_CONFIG", "pg_config"), "--bindir"],
                       capture_output=True, text=True).stdout.strip(),
        "postgres")

    def __init__(self, func):
        self.func = func
        name = "smbench_" + func        # ours alone, removed afterwards
        self.event = "probe_postgres:" + name
        self.added = False
        self.ok = False
        try:
            subprocess.run(["perf", "probe", "-d", self.event],
                           capture_output=True)
            r = subprocess.run(["perf", "probe", "-x", self.BIN,
                                "%s=%s" % (name, func)],
                               capture_output=True, text=True)
            self.added = self.ok = r.returncode == 0
        except OSError:
            pass

    def start(self, pid):
        self.proc = None
        if not self.ok:
            return
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x,", "-e", self.event, "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)                 # perf attaches

    def stop(self):
        """The number of calls since start, or None."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        err = self.proc.communicate()[1]
        for line in err.splitlines():
            parts = line.split(",")
            if len(parts) > 2 and parts[2] == self.event and \
                    parts[0].isdigit():
                return int(parts[0])
        return None

    def remove(self):
        if self.added:
            subprocess.run(["perf", "probe", "-d", self.event],
                           capture_output=True)


def p90(xs):
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]


# --- machine and versions ---------------------------------------------------

def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    osname = "unknown"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return [("CPUs (nproc)", str(os.cpu_count())), ("CPU model", model),
            ("memory", mem), ("OS", osname),
            ("load average at start", " ".join(
                open("/proc/loadavg").read().split()[:3]))]


def c_version(lib, func, arg=None):
    try:
        f = getattr(ctypes.CDLL(lib), func)
        f.restype = ctypes.c_char_p
        v = f(arg) if arg is not None else f()
        return v.decode()
    except (OSError, AttributeError):
        return "unknown"


def dpkg_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "?"


def versions(cur):
    curl = " ".join(c_version("libcurl.so.4", "curl_version").split()[:2])
    ssl = c_version("libcrypto.so.3", "OpenSSL_version", 0)
    try:
        src = subprocess.run(["git", "-C", ROOT, "describe", "--always",
                              "--dirty"], capture_output=True,
                             text=True).stdout.strip() or "unknown"
    except OSError:
        src = "unknown"
    return [
        ("PostgreSQL", q1(cur, "SELECT version()")),
        ("libcurl", "%s (libcurl4 %s)" % (curl, dpkg_version("libcurl4"))),
        ("OpenSSL", "%s (libssl3 %s)" % (ssl, dpkg_version("libssl3"))),
        ("botocore / boto3", "%s / %s" % (botocore.__version__,
                                         boto3.__version__)),
        ("psycopg2", psycopg2.__version__.split()[0]),
        ("Python", "%s (%s)" % (platform.python_version(), sys.executable)),
        ("secretsmgr source", src),
    ]


# --- 1. cached read ---------------------------------------------------------

def bench_cached(url):
    say("cached read: %d calls per loop, median of %d"
        % (CACHED_CALLS, CACHED_RUNS))
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("SELECT secretsmgr_stats_reset()")
    cur.execute("SELECT secretsmgr_get_secret('bench/app') IS NOT NULL")
    ours_expr = "secretsmgr_get_secret('bench/app')"
    floor_expr = "abs(i)"
    bare_expr = "i"
    text_expr = "secretsmgr_get_secret_string('bench/app')"
    for e in (ours_expr, floor_expr, bare_expr, text_expr):     # warm-up
        server_loop_us(cur, e, 10_000)

    client = boto_client(url)
    ttl = 300.0
    cache = {}

    def cached_get(secret_id):
        now = time.monotonic()
        e = cache.get(secret_id)
        if e is not None and now < e[0]:
            return e[1]
        r = client.get_secret_value(SecretId=secret_id)
        v = json.loads(r["SecretString"])
        cache[secret_id] = (now + ttl, v)
        return v

    cached_get("bench/app")
    ours, floor, bare, text, py = [], [], [], [], []
    for _ in range(CACHED_RUNS):
        ours.append(server_loop_us(cur, ours_expr, CACHED_CALLS))
        floor.append(server_loop_us(cur, floor_expr, CACHED_CALLS))
        bare.append(server_loop_us(cur, bare_expr, CACHED_CALLS))
        text.append(server_loop_us(cur, text_expr, CACHED_CALLS))
        t0 = time.perf_counter()
        for _ in range(CACHED_CALLS):
            cached_get("bench/app")
        py.append((time.perf_counter() - t0) * 1e6 / CACHED_CALLS)

    hits = q1(cur, "SELECT coalesce(sum(count), 0) FROM secretsmgr_stats() "
              "WHERE category = 'cache' AND name = 'hit'")
    api = q1(cur, "SELECT coalesce(sum(count), 0) FROM secretsmgr_stats() "
             "WHERE category = 'api_call'")
    conn.close()

    o, f, b, t, p = med(ours), med(floor), med(bare), med(text), med(py)
    met = "met" if o <= CACHED_TARGET_US else \
        "missed by %.2f µs" % (o - CACHED_TARGET_US)
    met_x = "met" if o <= CACHED_TARGET_X * f else \
        "missed by %.2f×" % (o / f - CACHED_TARGET_X)
    ROWS.append(Row("cached read, per call (server-side loop)", o, "µs",
                    "trivial function `count(abs(i))`, same loop", f,
                    "≤ %g µs: **%s**; ≤ %g× floor: **%s**"
                    % (CACHED_TARGET_US, met, CACHED_TARGET_X, met_x)))
    ROWS.append(Row("cached read, per call (server-side loop)", o, "µs",
                    "Python dict + TTL over boto3, per lookup", p))
    TARGETS.append(
        "**Cached read ≤ %g µs and within %g× of the trivial-function "
        "floor: %s.** %.3f µs a call, %.2f× `abs(i)` in the same loop "
        "(%.3f µs); most of either is the loop itself (%.3f µs for "
        "`count(i)`)." % (CACHED_TARGET_US, CACHED_TARGET_X,
                          "met" if met == met_x == "met" else "missed",
                          o, o / f, f, b))
    NOTES.append(
        "Cached read: the empty loop `count(i)` costs %.3f µs a row, so the "
        "call itself (loop subtracted) is %.3f µs against %.3f µs for "
        "`abs(i)`; runs of the secretsmgr loop: %s µs. The same cached read "
        "as text, `secretsmgr_get_secret_string('bench/app')` (no jsonb "
        "built), costs %.3f µs a row. Backend counters over the whole "
        "row: %s cache hits, %s API calls."
        % (b, o - b, f - b, ", ".join("%.3f" % x for x in ours), t,
           hits, api))
    METHODS.append(
        "**Cached read.** `EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT "
        "count(secretsmgr_get_secret('bench/app')) FROM generate_series(1, "
        "100000) AS g(i)` on a warm cache (default `secretsmgr.cache_ttl`, "
        "5 min); the server's Execution Time ÷ 100,000, median of 5 runs. "
        "The floor is the same statement with `count(abs(i))` (a built-in C "
        "function called once a row); `count(i)` gives the bare loop. The "
        "Python figure is 100,000 lookups in a dict with a TTL in front of "
        "boto3's `get_secret_value` (parsed JSON kept, as applications do "
        "today), timed with `time.perf_counter`, median of 5 runs. The runs "
        "of the three are interleaved.")


# --- 1b. cached read with cluster-wide statistics --------------------------

CSTATS_TARGET_X = 1.5


def start_preloaded_cluster():
    """A second throwaway cluster of the same server, with
    shared_preload_libraries = 'secretsmgr' (cluster-wide statistics on).
    Returns (datadir, port, stop function)."""
    bindir = os.path.dirname(ProbeCount.BIN)
    work = tempfile.mkdtemp(prefix="smbench-preload.")
    os.chmod(work, 0o755)
    as_pg = []
    if os.getuid() == 0:
        as_pg = ["runuser", "-u", "postgres", "--"]
        shutil.chown(work, "postgres", "postgres")
    data = os.path.join(work, "pgdata")
    subprocess.run(as_pg + [os.path.join(bindir, "initdb"), "-D", data, "-U",
                            "postgres", "-A", "trust", "--no-sync"],
                   check=True, capture_output=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                "unix_socket_directories = '%s'\nfsync = off\n"
                "shared_preload_libraries = 'secretsmgr'\n"
                "secretsmgr.endpoint = '%s'\nsecretsmgr.region = 'us-east-1'\n"
                "secretsmgr.access_key_id = '%s'\n"
                "secretsmgr.secret_access_key = '%s'\n"
                % (port, work, os.environ["SM_EMULATOR_URL"],
                   os.environ["SM_TEST_ACCESS_KEY"],
                   os.environ["SM_TEST_SECRET_KEY"]))
    pg_ctl = os.path.join(bindir, "pg_ctl")
    subprocess.run(as_pg + ["env", "AWS_EC2_METADATA_DISABLED=true", pg_ctl,
                            "-D", data, "-l", os.path.join(work, "pg.log"),
                            "-w", "start"], check=True, capture_output=True)

    def stop():
        subprocess.run(as_pg + [pg_ctl, "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return work, port, stop


def bench_cluster_stats():
    say("cached read with cluster-wide statistics: %d calls per loop, "
        "median of %d" % (CACHED_CALLS, CACHED_RUNS))
    work, port, stop = start_preloaded_cluster()
    try:
        plain = pg_connect()
        pre = psycopg2.connect(dbname="postgres", host=work, port=port,
                               user="postgres", application_name="bench")
        pre.autocommit = True
        pcur, qcur = plain.cursor(), pre.cursor()
        qcur.execute("CREATE EXTENSION secretsmgr")
        expr = "secretsmgr_get_secret('bench/app')"
        for c in (pcur, qcur):
            c.execute("SELECT %s IS NOT NULL" % expr)
            server_loop_us(c, expr, 10_000)     # warm-up
        off, on = [], []
        for _ in range(CACHED_RUNS):
            off.append(server_loop_us(pcur, expr, CACHED_CALLS))
            on.append(server_loop_us(qcur, expr, CACHED_CALLS))
        hits = q1(qcur, "SELECT sum(cache_hits) FROM secretsmgr_cluster_stats "
                  "WHERE secret_id = 'bench/app'")
        plain.close()
        pre.close()
    finally:
        stop()
    o, f = med(on), med(off)
    met = "met" if o <= CSTATS_TARGET_X * f else \
        "missed by %.2f×" % (o / f - CSTATS_TARGET_X)
    ROWS.append(Row("cached read with cluster-wide statistics (preloaded), "
                    "per call", o, "µs",
                    "the same read, library not preloaded (statistics off)",
                    f, "≤ %g×: **%s**" % (CSTATS_TARGET_X, met)))
    TARGETS.append(
        "**A cached read with cluster-wide statistics costs ≤ %g× the read "
        "without: %s.** %.3f µs a call with `shared_preload_libraries = "
        "'secretsmgr'` against %.3f µs on the cluster without (%.2f×); "
        "runs with: %s µs, without: %s µs."
        % (CSTATS_TARGET_X, met, o, f, o / f,
           ", ".join("%.3f" % x for x in on),
           ", ".join("%.3f" % x for x in off)))
    METHODS.append(
        "**Cached read with cluster-wide statistics.** The cached-read "
        "statement above, on a second throwaway cluster of the same server "
        "started with `shared_preload_libraries = 'secretsmgr'`, interleaved "
        "with the same statement on the main cluster (not preloaded), median "
        "of 5 runs each; the preloaded cluster's "
        "`secretsmgr_cluster_stats` then showed %s cache hits of `bench/app`."
        % hits)


# --- 2. uncached read -------------------------------------------------------

def bench_uncached(url, emulog):
    n = UNCACHED_BATCHES * UNCACHED_BATCH
    say("uncached read: %d calls per method (%d batches of %d)"
        % (n, UNCACHED_BATCHES, UNCACHED_BATCH))
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("SET secretsmgr.cache_ttl = 0")
    client = boto_client(url)
    for _ in range(20):                             # warm-up
        cur.execute("SELECT secretsmgr_get_secret('bench/app') IS NOT NULL")
        cur.fetchone()
        client.get_secret_value(SecretId="bench/app")
    server_loop_us(cur, "secretsmgr_get_secret('bench/app')", 50)

    pid = backend_pid(cur)
    loop, query, boto = [], [], []
    loop_cpu, boto_cpu = [], []
    emu_ours, emu_boto = [], []
    calls0 = emu_calls().get("GetSecretValue", 0)
    for _ in range(UNCACHED_BATCHES):
        m0 = emulog.mark()
        c0 = cpu_ns(pid)
        loop.append(server_loop_us(cur, "secretsmgr_get_secret('bench/app')",
                                   UNCACHED_BATCH))
        loop_cpu.append((cpu_ns(pid) - c0) / 1e3 / UNCACHED_BATCH)
        t0 = time.perf_counter()
        for _ in range(UNCACHED_BATCH):
            cur.execute("SELECT secretsmgr_get_secret('bench/app')")
            cur.fetchone()
        query.append((time.perf_counter() - t0) * 1e6 / UNCACHED_BATCH)
        m1 = emulog.mark()
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(UNCACHED_BATCH):
            client.get_secret_value(SecretId="bench/app")
        boto.append((time.perf_counter() - t0) * 1e6 / UNCACHED_BATCH)
        boto_cpu.append((time.process_time() - c0) * 1e6 / UNCACHED_BATCH)
        m2 = emulog.mark()
        emu_ours += emulog.service_us(m0, m1, "GetSecretValue")
        emu_boto += emulog.service_us(m1, m2, "GetSecretValue")
    calls = emu_calls().get("GetSecretValue", 0) - calls0
    # no new connection on a warm path: the backend's socket and connect
    # calls over 200 more uncached reads (untimed; strace slows them)
    warm = syscall_counts(pid, lambda: server_loop_us(
        cur, "secretsmgr_get_secret('bench/app')", 200))
    conn.close()

    # a bare kept-alive HTTP round trip to the emulator (admin health check,
    # no signature): an upper bound of what its timer leaves out
    hc = http.client.HTTPConnection(url.split("//", 1)[1], timeout=10)
    rtt = []
    for i in range(UNCACHED_BATCH + 20):
        t0 = time.perf_counter()
        hc.request("GET", "/_admin/health")
        hc.getresponse().read()
        if i >= 20:
            rtt.append((time.perf_counter() - t0) * 1e6)
    hc.close()

    # the emulator's floor: one GetSecretValue signed once by botocore and
    # replayed over a kept-alive http.client connection, so the client does
    # next to nothing; its own CPU is measured and taken off
    body = json.dumps({"SecretId": "bench/app", "VersionStage": "AWSCURRENT"})
    areq = AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "secretsmanager.GetSecretValue"})
    SigV4Auth(Credentials(os.environ["SM_TEST_ACCESS_KEY"],
                          os.environ["SM_TEST_SECRET_KEY"]),
              "secretsmanager", "us-east-1").add_auth(areq)
    headers = dict(areq.headers.items())
    hc = http.client.HTTPConnection(url.split("//", 1)[1], timeout=10)
    replay, replay_cpu = [], []
    for b in range(UNCACHED_BATCHES + 1):
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(UNCACHED_BATCH):
            hc.request("POST", "/", body=body, headers=headers)
            r = hc.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit("replayed GetSecretValue: HTTP %d" % r.status)
        if b > 0:                       # the first batch warms up
            replay.append((time.perf_counter() - t0) * 1e6 / UNCACHED_BATCH)
            replay_cpu.append((time.process_time() - c0) * 1e6 /
                              UNCACHED_BATCH)
    hc.close()

    lo, qu, bo = med(loop), med(query), med(boto)
    eo, eb = med(emu_ours), med(emu_boto)
    lc, bc = med(loop_cpu), med(boto_cpu)
    rw, rc = med(replay), med(replay_cpu)
    emu_floor = rw - rc             # a client that costs nothing
    met = "met" if lo * UNCACHED_TARGET_X <= bo else \
        "missed: %.2f× faster, not %g×" % (bo / lo, UNCACHED_TARGET_X)
    ROWS.append(Row("uncached read, per call (server-side loop)", lo, "µs",
                    "boto3 `get_secret_value`, one client, keep-alive", bo,
                    "≥ %g× faster: **%s**" % (UNCACHED_TARGET_X, met)))
    ROWS.append(Row("uncached read, emulator floor (a client costing "
                    "nothing)", emu_floor, "µs",
                    "boto3 `get_secret_value`", bo,
                    "bounds the ratio above"))
    ROWS.append(Row("uncached read, per call (one query per call from "
                    "psycopg2)", qu, "µs",
                    "boto3 `get_secret_value`", bo))
    met = "met" if lc <= SHARE_TARGET_US else \
        "missed by %.0f µs" % (lc - SHARE_TARGET_US)
    ROWS.append(Row("uncached read, our share: backend CPU per call",
                    lc, "µs", "boto3's share: its process CPU per call", bc,
                    "≤ %g µs: **%s**" % (SHARE_TARGET_US, met)))
    ROWS.append(Row("uncached read, our share: wall − emulator floor",
                    lo - emu_floor, "µs", "boto3's: wall − emulator floor",
                    bo - emu_floor))
    if eo is not None and eb is not None:
        ROWS.append(Row("uncached read, wall − emulator service time (its "
                        "log)", lo - eo, "µs",
                        "boto3's (boto3 − emulator service time)",
                        bo - eb))
    TARGETS.append(
        "**Uncached read ≥ %g× faster than boto3: %s.** %.0f µs a call "
        "against boto3's %.0f µs, %.2f× faster. What bounds it is the "
        "emulator: a signed GetSecretValue replayed by a client that does "
        "nothing else waits %.0f µs, so no client can be more than %.1f× "
        "faster than boto3 here, and %g× needs %.0f µs a call, %.0f µs "
        "above that floor for everything a client does (send, wake up, "
        "receive, parse); secretsmgr is %.0f µs above it. Against the real "
        "service, whose own time is not a Python server's, the same "
        "client work decides more of the ratio: boto3 spends %.0f µs of "
        "CPU a call, the backend %.0f µs."
        % (UNCACHED_TARGET_X, "met" if lo * UNCACHED_TARGET_X <= bo else
           "missed by %.0f µs a call" % (lo - bo / UNCACHED_TARGET_X),
           lo, bo, bo / lo, emu_floor, bo / emu_floor, UNCACHED_TARGET_X,
           bo / UNCACHED_TARGET_X, bo / UNCACHED_TARGET_X - emu_floor,
           lo - emu_floor, bc, lc))
    TARGETS.append(
        "**Our share of an uncached read ≤ %g µs: %s.** The backend's own "
        "CPU time is %.0f µs a call (executor, signing, JSON, libcurl and "
        "the kernel's loopback TCP work together). Wall time less the "
        "emulator's floor is %.0f µs; less only the service time in the "
        "emulator's log, %.0f µs, which still holds the emulator's HTTP "
        "parsing (see Method)."
        % (SHARE_TARGET_US, "met" if lc <= SHARE_TARGET_US else
           "missed by %.0f µs" % (lc - SHARE_TARGET_US), lc,
           lo - emu_floor, (lo - eo) if eo is not None else float("nan")))
    NOTES.append(
        "Uncached read: the emulator's median service time per "
        "GetSecretValue was %s µs for secretsmgr's requests and %s µs for "
        "boto3's (%d and %d log lines); it counted %d GetSecretValue calls "
        "for the %d timed ones (%d from each method)."
        % ("%.0f" % eo if eo is not None else "?",
           "%.0f" % eb if eb is not None else "?",
           len(emu_ours), len(emu_boto), calls, 3 * n, n)
        + " A bare kept-alive HTTP round trip to the emulator (`GET "
        "/_admin/health` from Python's http.client, no signature) takes "
        "%.0f µs (median of %d): emulator and loopback time its service "
        "timer does not see." % (med(rtt), len(rtt))
        + " A GetSecretValue signed once and replayed over one kept-alive "
        "http.client connection takes %.0f µs of wall time, of which the "
        "replaying client used %.0f µs of CPU: %.0f µs is the emulator's "
        "floor, what a client costing nothing would wait. Against it, "
        "boto3's %.0f µs allows at best %.1f× faster; %g× faster than "
        "boto3 would need %.0f µs a call, %.0f µs above the floor for "
        "everything the client does." % (
            rw, rc, emu_floor, bo, bo / emu_floor, UNCACHED_TARGET_X,
            bo / UNCACHED_TARGET_X, bo / UNCACHED_TARGET_X - emu_floor)
        + " Our share measured as CPU: the backend (its scheduler "
        "statistics, `/proc/<pid>/schedstat`, over the server-side loops) "
        "used %.0f µs a call (runs: %s), all of it: executor, signing, "
        "JSON, libcurl and the kernel's loopback TCP work; boto3's "
        "process used %.0f µs. Warm path: over 200 more uncached reads "
        "`strace -c` on the backend counted %s, so no new connection, DNS "
        "lookup or TLS handshake (the credentials come from settings "
        "here, so there is no credential fetch either)."
        % (lc, ", ".join("%.0f" % x for x in loop_cpu), bc,
           "not run (no strace)" if warm is None else
           " and ".join("%d %s()" % (n, k) for k, n in sorted(warm.items()))))
    METHODS.append(
        "**Uncached read.** One session with `SET secretsmgr.cache_ttl = 0`, "
        "so every call is a signed GetSecretValue over the backend's "
        "kept-alive connection. Each method makes 2,000 calls as 5 batches "
        "of 400, interleaved: (a) a server-side loop `SELECT "
        "count(secretsmgr_get_secret('bench/app')) FROM generate_series(1, "
        "400)` timed by EXPLAIN ANALYZE (the fair comparison with boto3, "
        "which has no SQL round trip); (b) 400 separate `SELECT "
        "secretsmgr_get_secret('bench/app')` from psycopg2, timed by the "
        "client; (c) boto3 `get_secret_value` 400 times on one client "
        "(keep-alive). Each figure is the median of the 5 batch means. "
        "**Our share**, three ways: (1) the backend's CPU time over the "
        "server-side loop batches (`/proc/<pid>/schedstat`), against the "
        "CPU time of the Python process over the boto3 batches "
        "(`time.process_time`); (2) wall time less the emulator's floor, "
        "a GetSecretValue signed once by botocore and replayed 400 times "
        "in 5 batches over one kept-alive `http.client` connection, less "
        "that client's own CPU time; (3) wall time less the emulator's "
        "median service time for GetSecretValue, read from its log "
        "(`--log`, one line per request, service time in µs) for the same "
        "batches: the emulator's timer starts after http.server has read "
        "the request line and headers and stops after the response is "
        "written, so (3) still holds that parsing and the loopback round "
        "trip, and is an upper bound. The target is assessed on (1).")


# --- 3. rotation ------------------------------------------------------------

def bench_batch():
    """20 secrets in one secretsmgr_get_secrets call beside 20 single reads,
    both uncached, same session and emulator."""
    reps = 50
    say("batch read: 20 secrets, %d repetitions each way" % reps)
    ids = ["bench/batch%02d" % i for i in range(20)]
    for i in ids:
        smctl("create", i, json.dumps({"username": "b", "password": new_password()}))
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("SET secretsmgr.cache_ttl = 0")
    batch_sql = "SELECT count(value) FROM secretsmgr_get_secrets(%s)"
    single_sql = ("SELECT count(secretsmgr_get_secret(id)) "
                  "FROM unnest(%s::text[]) id")
    for _ in range(5):                              # warm-up
        q1(cur, batch_sql, (ids,))
        q1(cur, single_sql, (ids,))
    batch, single = [], []
    c0 = emu_calls()
    for _ in range(reps):
        t0 = time.perf_counter()
        got = q1(cur, batch_sql, (ids,))
        batch.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        got2 = q1(cur, single_sql, (ids,))
        single.append((time.perf_counter() - t0) * 1e3)
        if got != 20 or got2 != 20:
            raise SystemExit("batch read returned %s and %s values" % (got, got2))
    c1 = emu_calls()
    conn.close()
    ROWS.append(Row("batch read of 20 secrets, uncached (median of %d)" % reps,
                    med(batch), "ms",
                    "20 single `secretsmgr_get_secret` reads, uncached",
                    med(single)))
    NOTES.append(
        "Batch read: %d BatchGetSecretValue and %d GetSecretValue calls for "
        "%d repetitions of each way (cache off), i.e. 1 round trip against 20."
        % (c1.get("BatchGetSecretValue", 0) - c0.get("BatchGetSecretValue", 0),
           c1.get("GetSecretValue", 0) - c0.get("GetSecretValue", 0), reps))


def bench_rotation(port, emulog):
    say("rotation: %d rotations, one per transaction" % ROTATIONS)
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("CREATE ROLE bench_rot LOGIN")
    smctl("create", "bench/rot", json.dumps({
        "engine": "postgres", "host": "127.0.0.1", "port": int(port),
        "dbname": "postgres", "username": "bench_rot",
        "password": new_password()}))
    cur.execute("SELECT secretsmgr_manage('bench/rot', 'bench_rot')")

    times = []
    error = None
    api_ms = 0.0
    calls0 = calls1 = {}
    m0 = m1 = 0
    try:
        for _ in range(ROTATION_WARMUP):
            cur.execute("SELECT secretsmgr_rotate('bench/rot') IS NOT NULL")
        cur.execute("SELECT secretsmgr_stats_reset()")
        calls0 = emu_calls()
        m0 = emulog.mark()
        for _ in range(ROTATIONS):
            t0 = time.perf_counter()
            cur.execute("SELECT secretsmgr_rotate('bench/rot') IS NOT NULL")
            cur.fetchone()
            times.append((time.perf_counter() - t0) * 1e3)
        m1 = emulog.mark()
        calls1 = emu_calls()
        api_ms = q1(cur, "SELECT coalesce(sum(total_ms), 0) FROM "
                    "secretsmgr_stats() WHERE category = 'api_call'") \
            / ROTATIONS
    except psycopg2.Error as e:
        error = "%s: %s" % (e.pgcode, (e.pgerror or str(e)).strip()
                            .splitlines()[0])
        print("secretsmgr_rotate failed: " + error, flush=True)

    verified = None
    pbkdf2_calls = None
    if error is None:
        verified = q1(cur, "SELECT secretsmgr_verify('bench/rot')")
        # PBKDF2 passes per rotation: calls of PostgreSQL's
        # scram_SaltedPassword in this backend over 10 more rotations
        probe = ProbeCount("scram_SaltedPassword")
        probe.start(backend_pid(cur))
        for _ in range(10):
            cur.execute("SELECT secretsmgr_rotate('bench/rot') IS NOT NULL")
        n = probe.stop()
        probe.remove()
        if n is not None:
            pbkdf2_calls = n / 10.0

    # floor: one SCRAM verifier build + one commit, in one round trip; the
    # same without PASSWORD, and ALTER ROLE with a verifier built here,
    # to see what the SCRAM work costs on its own
    cur.execute("CREATE ROLE bench_tmp2")
    verifier = scram_verifier(new_password())
    txns = {
        "floor": "CREATE ROLE bench_tmp PASSWORD 'x'; DROP ROLE bench_tmp",
        "nopw": "CREATE ROLE bench_tmp; DROP ROLE bench_tmp",
        "alter": "ALTER ROLE bench_tmp2 PASSWORD '%s'" % verifier,
        "alter_nopw": "ALTER ROLE bench_tmp2 VALID UNTIL 'infinity'",
    }
    txn_ms = {k: [] for k in txns}
    for i in range(5 + FLOOR_TXNS):                 # 5 untimed, interleaved
        for k, sql in txns.items():
            t0 = time.perf_counter()
            cur.execute(sql)
            if i >= 5:
                txn_ms[k].append((time.perf_counter() - t0) * 1e3)
    floor_txn, nopw_txn = txn_ms["floor"], txn_ms["nopw"]
    alter_txn, alter_nopw = txn_ms["alter"], txn_ms["alter_nopw"]
    cur.execute("DROP ROLE bench_tmp2")
    pbkdf2 = []
    for _ in range(FLOOR_TXNS):
        t0 = time.perf_counter()
        hashlib.pbkdf2_hmac("sha256", b"x", b"0123456789abcdef", 4096)
        pbkdf2.append((time.perf_counter() - t0) * 1e3)
    scram_iter = q1(cur, "SHOW scram_iterations") if q1(
        cur, "SELECT count(*) FROM pg_settings "
        "WHERE name = 'scram_iterations'") else "4096 (fixed in 15)"
    conn.close()

    if error is not None or not times:
        ROWS.append(Row("rotation, `secretsmgr_rotate` per transaction "
                        "(median)", None, "ms", "floor", None,
                        note=error))
        NOTES.append("Rotation: not measured — secretsmgr_rotate raised "
                     "`%s`." % error)
    else:
        per_rot = {op: (calls1.get(op, 0) - calls0.get(op, 0)) / ROTATIONS
                   for op in set(calls0) | set(calls1)}
        per_rot = {op: c for op, c in per_rot.items() if c > 0}
        svc = emulog.service_us(m0, m1)
        emu_ms = sum(c * (med(svc.get(op, [])) or 0)
                     for op, c in per_rot.items()) / 1000.0
        ft = med(floor_txn)
        floor = emu_ms + ft
        RESULTS["rotation_emu_ms"] = emu_ms
        RESULTS["rotation_ms"] = med(times)
        RESULTS["rotation_floor_ms"] = floor
        x = med(times) / floor
        met = "met" if x <= ROTATION_FLOOR_TARGET_X else \
            "missed by %.2f×" % (x - ROTATION_FLOOR_TARGET_X)
        ROWS.append(Row("rotation, `secretsmgr_rotate` per transaction "
                        "(median of %d)" % ROTATIONS, med(times), "ms",
                        "floor: emulator time of its API calls + SCRAM "
                        "build + commit", floor,
                        "≤ %g× floor: **%s**" % (ROTATION_FLOOR_TARGET_X,
                                                  met)))
        ROWS.append(Row("rotation, p90 of %d" % ROTATIONS, p90(times), "ms",
                        "floor", floor))
        # what a rotation that never lets the plain password into
        # PostgreSQL's statement path must pay: the floor plus the PBKDF2
        # that ALTER ROLE runs over a pre-built verifier
        alter_pbkdf2 = med(alter_txn) - med(alter_nopw)
        bound = floor + alter_pbkdf2
        RESULTS["rotation_bound_ms"] = bound
        # the floor's parts, for the latency row (latency.py)
        RESULTS["emu_call_ms"] = emu_ms / sum(per_rot.values())
        RESULTS["alter_pbkdf2_ms"] = alter_pbkdf2
        RESULTS["openssl_pbkdf2_ms"] = med(pbkdf2)
        RESULTS["pg_pbkdf2_ms"] = ft - med(nopw_txn)
        RESULTS["commit_ms"] = med(nopw_txn)
        ROWS.append(Row("rotation, median", med(times), "ms",
                        "bound: floor + ALTER ROLE's own PBKDF2 over a "
                        "pre-built verifier", bound))
        TARGETS.append(
            "**Rotation within %g× of the floor: %s.** %.2f ms against a "
            "floor of %.2f ms (%.2f×): the emulator's time for the %g calls "
            "a rotation makes (%.2f ms) and one `CREATE ROLE … PASSWORD` "
            "transaction (%.2f ms, one SCRAM verifier build and a commit). "
            "What bounds it is SCRAM's 4096 PBKDF2 iterations, paid twice: "
            "the verifier build, and PostgreSQL's own check inside `ALTER "
            "ROLE` that a pre-built verifier does not match the empty "
            "password (%.2f ms measured: `ALTER ROLE … PASSWORD "
            "'<verifier>'` less `ALTER ROLE … VALID UNTIL`), which no "
            "rotation that keeps the plain password out of PostgreSQL's "
            "statement path can skip. Counting it, the bound is %.2f ms "
            "(%.2f× the floor) and a rotation takes %.2f× the bound."
            % (ROTATION_FLOOR_TARGET_X,
               "met" if x <= ROTATION_FLOOR_TARGET_X else
               "missed by %.2f× (%.2f ms)" % (
                   x - ROTATION_FLOOR_TARGET_X,
                   med(times) - ROTATION_FLOOR_TARGET_X * floor),
               med(times), floor, x, sum(per_rot.values()), emu_ms, ft,
               alter_pbkdf2, bound, bound / floor, med(times) / bound))
        NOTES.append(
            "Rotation: API calls per rotation (from `smctl calls` "
            "deltas over the %d timed rotations): %s; the emulator's median "
            "service times of those calls add up to %.2f ms per rotation; "
            "`CREATE ROLE … PASSWORD; DROP ROLE` in one transaction: median "
            "%.2f ms, and %.2f ms without `PASSWORD`, so one SCRAM verifier "
            "build costs about %.2f ms (SCRAM iterations: %s). `ALTER ROLE "
            "… PASSWORD '<a SCRAM verifier built by the client>'` costs "
            "%.2f ms against %.2f ms for `ALTER ROLE … VALID UNTIL`: "
            "PostgreSQL runs one more PBKDF2 on a pre-built verifier (it "
            "checks it does not match the empty password), which no "
            "rotation that keeps the plain password out of PostgreSQL's "
            "statement path (and so out of `check_password_hook` and audit "
            "hooks) can avoid. PBKDF2 passes per rotation, counted as calls "
            "of PostgreSQL's `scram_SaltedPassword` in the backend (a perf "
            "uprobe) over 10 more rotations: %s — the verifier build "
            "(setSecret) and that check inside ALTER ROLE; testSecret "
            "compares the verifier in `pg_authid` with the one built "
            "(src/verify.c says why that proves the password). For scale, "
            "OpenSSL's own PKCS5_PBKDF2_HMAC (Python `hashlib.pbkdf2_hmac`, "
            "same 4096 × HMAC-SHA-256) takes %.2f ms, against about %.2f ms "
            "for PostgreSQL's own loop. "
            "The backend timed its Secrets Manager calls "
            "(`secretsmgr_stats()` total_ms) at %.2f ms per rotation, "
            "leaving about %.2f ms of local work. "
            "Rotation times: min %.2f, "
            "median %.2f, p90 %.2f, max %.2f ms. After the run "
            "`secretsmgr_verify('bench/rot')` = %s."
            % (ROTATIONS,
               ", ".join("%s %g" % (op, c) for op, c in sorted(
                   per_rot.items())),
               emu_ms, ft, med(nopw_txn), ft - med(nopw_txn), scram_iter,
               med(alter_txn), med(alter_nopw),
               "%g" % pbkdf2_calls if pbkdf2_calls is not None
               else "not measured (perf uprobes unavailable)",
               med(pbkdf2), ft - med(nopw_txn),
               api_ms, med(times) - api_ms, min(times), med(times), p90(times),
               max(times), verified))
    METHODS.append(
        "**Rotation.** Role `bench_rot` (LOGIN), secret `bench/rot` holding "
        "`{engine, host, port, dbname, username, password}` created with "
        "`smctl create`, bound with `secretsmgr_manage('bench/rot', "
        "'bench_rot')` (single strategy). After %d untimed rotations, %d "
        "times `SELECT secretsmgr_rotate('bench/rot')` from psycopg2 in "
        "autocommit, so each is one whole transaction including the "
        "PutSecretValue at pre-commit; client wall time, median and p90. The "
        "floor is the emulator's median service time of each API call the "
        "rotations made (counted from `smctl calls` before and after) "
        "times calls per rotation, plus the median of %d one-round-trip "
        "transactions `CREATE ROLE bench_tmp PASSWORD 'x'; DROP ROLE "
        "bench_tmp` — an approximation of one SCRAM verifier build plus one "
        "commit (`password_encryption = scram-sha-256`)."
        % (ROTATION_WARMUP, ROTATIONS, FLOOR_TXNS))


# --- 4. reference-Lambda-style rotation -------------------------------------

class ReferenceLambda:
    """AWS's reference single-user PostgreSQL rotation Lambda
    (SecretsManagerRDSPostgreSQLRotationSingleUser), step for step: each
    invocation calls DescribeSecret and checks the token; createSecret reads
    AWSCURRENT and AWSPENDING, calls GetRandomPassword and PutSecretValue;
    setSecret reads AWSPREVIOUS, AWSCURRENT and AWSPENDING, tries to log in
    with the pending password, logs in with the current one and runs
    `ALTER USER ... WITH PASSWORD` with the plain password in the SQL;
    testSecret logs in with the pending password and runs `SELECT NOW()`;
    finishSecret reads DescribeSecret and moves AWSCURRENT.  Every login is
    a new psycopg2 connection over TCP with SCRAM, as a Lambda makes.
    Kinder to it than a real Lambda: one boto3 client for every invocation
    (the reference builds one per invocation) and no cold starts."""

    EXCLUDE = "/@\"'\\"

    def __init__(self, client):
        self.sm = client
        self.logins = 0

    def secret_dict(self, arn, stage, token=None):
        kw = {"SecretId": arn, "VersionStage": stage}
        if token:
            kw["VersionId"] = token
        d = json.loads(self.sm.get_secret_value(**kw)["SecretString"])
        for field in ("host", "username", "password"):
            if field not in d:
                raise KeyError("%s key is missing from secret JSON" % field)
        return d

    def connect(self, d):
        self.logins += 1
        try:
            return psycopg2.connect(
                host=d["host"], port=int(d.get("port", 5432)),
                dbname=d.get("dbname", "postgres"), user=d["username"],
                password=d["password"], connect_timeout=5)
        except psycopg2.OperationalError:
            return None

    def invoke(self, arn, token, step):
        meta = self.sm.describe_secret(SecretId=arn)
        if not meta.get("RotationEnabled"):
            raise ValueError("rotation is not enabled")
        versions = meta["VersionIdsToStages"]
        if token not in versions:
            raise ValueError("no version %s" % token)
        if "AWSCURRENT" in versions[token]:
            return
        if "AWSPENDING" not in versions[token]:
            raise ValueError("version %s is not AWSPENDING" % token)
        getattr(self, step)(arn, token)

    def createSecret(self, arn, token):
        current = self.secret_dict(arn, "AWSCURRENT")
        try:
            self.secret_dict(arn, "AWSPENDING", token)
        except self.sm.exceptions.ResourceNotFoundException:
            pw = self.sm.get_random_password(
                ExcludeCharacters=self.EXCLUDE)["RandomPassword"]
            current["password"] = pw
            self.sm.put_secret_value(
                SecretId=arn, ClientRequestToken=token,
                SecretString=json.dumps(current),
                VersionStages=["AWSPENDING"])

    def setSecret(self, arn, token):
        try:
            previous = self.secret_dict(arn, "AWSPREVIOUS")
        except (self.sm.exceptions.ResourceNotFoundException, KeyError):
            previous = None
        current = self.secret_dict(arn, "AWSCURRENT")
        pending = self.secret_dict(arn, "AWSPENDING", token)
        conn = self.connect(pending)
        if conn:
            conn.close()
            return
        if current["username"] != pending["username"] or \
                current["host"] != pending["host"]:
            raise ValueError("username or host differ")
        conn = self.connect(current)
        if not conn and previous:
            conn = self.connect(previous)
        if not conn:
            raise ValueError("unable to log into the database")
        try:
            with conn.cursor() as c:
                c.execute("SELECT quote_ident(%s)", (pending["username"],))
                user = c.fetchone()[0]
                c.execute("ALTER USER %s WITH PASSWORD %%s" % user,
                          (pending["password"],))
            conn.commit()
        finally:
            conn.close()

    def testSecret(self, arn, token):
        conn = self.connect(self.secret_dict(arn, "AWSPENDING", token))
        if not conn:
            raise ValueError("the pending password does not log in")
        try:
            with conn.cursor() as c:
                c.execute("SELECT NOW()")
            conn.commit()
        finally:
            conn.close()

    def finishSecret(self, arn, token):
        meta = self.sm.describe_secret(SecretId=arn)
        current = None
        for version, stages in meta["VersionIdsToStages"].items():
            if "AWSCURRENT" in stages:
                if version == token:
                    return
                current = version
                break
        self.sm.update_secret_version_stage(
            SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
            RemoveFromVersionId=current)

    def rotate(self, arn):
        """RotateSecret (what Secrets Manager does first) and the four
        invocations; returns the new version id."""
        token = str(uuid.uuid4())
        self.sm.rotate_secret(
            SecretId=arn, ClientRequestToken=token, RotateImmediately=True,
            RotationLambdaARN="arn:aws:lambda:us-east-1:123456789012:"
            "function:bench-reference-rotation")
        for step in ("createSecret", "setSecret", "testSecret",
                     "finishSecret"):
            self.invoke(arn, token, step)
        return token


def bench_reference(url, port):
    say("reference-Lambda-style rotation: %d rotations" % REF_ROTATIONS)
    client = boto_client(url)
    pw = new_password()
    arn = client.create_secret(Name="bench/ref", SecretString=json.dumps({
        "engine": "postgres", "host": "127.0.0.1", "port": int(port),
        "dbname": "postgres", "username": "bench_ref",
        "password": pw}))["ARN"]
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("CREATE ROLE bench_ref LOGIN PASSWORD %s", (pw,))
    ref = ReferenceLambda(client)
    for _ in range(2):                              # warm-up
        ref.rotate(arn)
    ref.logins = 0
    c0 = emu_calls()
    times = []
    for _ in range(REF_ROTATIONS):
        t0 = time.perf_counter()
        ref.rotate(arn)
        times.append((time.perf_counter() - t0) * 1e3)
    c1 = emu_calls()
    logins = ref.logins / REF_ROTATIONS
    ok = ref.connect(ref.secret_dict(arn, "AWSCURRENT"))
    if ok:
        ok.close()
    conn.close()
    # what the reference pays per invocation and this run leaves out
    mk = []
    for _ in range(5):
        t0 = time.perf_counter()
        boto_client(url)
        mk.append((time.perf_counter() - t0) * 1e3)
    per = {op: (c1.get(op, 0) - c0.get(op, 0)) / REF_ROTATIONS
           for op in set(c0) | set(c1)}
    per = {op: n for op, n in per.items() if n > 0}
    ncalls = sum(per.values())

    ours = RESULTS.get("rotation_ms")
    theirs = med(times)
    if ours is not None:
        x = theirs / ours
        met = "met" if x >= ROTATION_REF_TARGET_X else \
            "missed: %.1f× faster, not %g×" % (x, ROTATION_REF_TARGET_X)
        ROWS.append(Row("rotation, `secretsmgr_rotate` (median)", ours, "ms",
                        "reference-Lambda-style rotation: boto3, a new "
                        "connection per login, `ALTER USER … PASSWORD` "
                        "(median of %d)" % REF_ROTATIONS, theirs,
                        "≥ %g× faster: **%s**" % (ROTATION_REF_TARGET_X,
                                                  met)))
    bound = RESULTS.get("rotation_bound_ms")
    if ours is not None and bound:
        TARGETS.append(
            "**Rotation ≥ %g× faster than a reference-Lambda-style "
            "rotation: %s.** %.2f ms against %.1f ms, %.1f× faster, with %g "
            "Secrets Manager calls (RotateSecret included) and %g logins "
            "for the reference. %g× would need %.2f ms a rotation; %s The "
            "comparison is kind to the reference: it builds a boto3 client "
            "in each of its four invocations, %.1f ms each here; counted, "
            "it takes %.1f ms, %.1f× ours."
            % (ROTATION_REF_TARGET_X,
               "met" if theirs / ours >= ROTATION_REF_TARGET_X else
               "missed by %.1f×" % (ROTATION_REF_TARGET_X - theirs / ours),
               ours, theirs, theirs / ours, ncalls, logins,
               ROTATION_REF_TARGET_X, theirs / ROTATION_REF_TARGET_X,
               ("that is below the %.2f ms bound above (two PBKDF2 passes "
                "of PostgreSQL's and the emulator's time), so against this "
                "emulator and cluster no rotation that keeps the password "
                "out of SQL can be more than %.1f× faster."
                % (bound, theirs / bound))
               if theirs / ROTATION_REF_TARGET_X < bound else
               ("the bound above (two PBKDF2 passes of PostgreSQL's and the "
                "emulator's time) is %.2f ms, %.1f× faster than the "
                "reference, and secretsmgr is %.2f ms above it."
                % (bound, theirs / bound, ours - bound)),
               med(mk), theirs + 4 * med(mk), (theirs + 4 * med(mk)) / ours))
    NOTES.append(
        "Reference-Lambda-style rotation: %g Secrets Manager calls per "
        "rotation (%s) and %g database logins; times: min %.1f, median "
        "%.1f, p90 %.1f, max %.1f ms; after the run AWSCURRENT %s. Not in "
        "those times: the reference builds a boto3 client in each of its "
        "4 invocations, %.1f ms each here (median of 5)."
        % (ncalls, ", ".join("%s %g" % kv for kv in sorted(per.items())),
           logins, min(times), theirs, p90(times),
           max(times), "logs in" if ok else "DOES NOT log in", med(mk)))
    METHODS.append(
        "**Reference-Lambda-style rotation.** `test/bench/bench.py`'s "
        "`ReferenceLambda` follows AWS's single-user PostgreSQL rotation "
        "function step for step (DescribeSecret and the token checks in "
        "every invocation; createSecret, setSecret with its login attempts "
        "and `ALTER USER … WITH PASSWORD %%s`, testSecret with a login and "
        "`SELECT NOW()`, finishSecret), against the same emulator and "
        "cluster: secret `bench/ref`, role `bench_ref`, logins over TCP "
        "to 127.0.0.1 with SCRAM as the secret says. Each rotation is "
        "`RotateSecret` (what Secrets Manager does before invoking the "
        "function) and the four invocations in a row; 2 untimed, then "
        "%d timed by the client, median. It is given one boto3 client for "
        "every invocation, where the reference builds one per invocation, "
        "and no cold starts: the comparison is kind to it." % REF_ROTATIONS)


# --- 5. fleet and memory ----------------------------------------------------

def fleet_ids():
    return [("bench/fleet/%04d" % i, "bench_fleet_%04d" % i)
            for i in range(1, FLEET + 1)]


def bench_fleet(url, port, emulog):
    say("fleet: %d managed roles, rotated by secretsmgr_rotate_due() in "
        "batches of %d, then one secretsmgr_rotate per transaction"
        % (FLEET, FLEET_BATCH))
    ids = fleet_ids()
    client = boto_client(url)
    t0 = time.perf_counter()
    for sid, role in ids:
        client.create_secret(Name=sid, SecretString=json.dumps({
            "engine": "postgres", "host": "127.0.0.1", "port": int(port),
            "dbname": "postgres", "username": role,
            "password": new_password()}))
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("DO $$ BEGIN FOR i IN 1..%d LOOP "
                "EXECUTE format('CREATE ROLE bench_fleet_%%s LOGIN', "
                "lpad(i::text, 4, '0')); "
                "PERFORM secretsmgr_manage('bench/fleet/' || "
                "lpad(i::text, 4, '0'), "
                "('bench_fleet_' || lpad(i::text, 4, '0'))::name); "
                "END LOOP; END $$" % FLEET)
    setup_s = time.perf_counter() - t0

    # (A) secretsmgr_rotate_due(), FLEET_BATCH due per call: a batch
    # becomes due by getting a rotation interval (never rotated yet); the
    # batches before it were rotated moments ago, the ones after it have
    # no interval.  Each call is one transaction, its puts at commit.
    pid = backend_pid(cur)
    cur.execute("SELECT secretsmgr_get_secret('bench/app') IS NOT NULL")
    ctx0, rss0 = contexts_kb(cur), rss_anon_kb(pid)
    sampler = PeakRss(pid)
    sampler.start()
    batch_s, statuses, batch_peak = [], {}, []
    calls_a = 0
    for b in range(0, FLEET, FLEET_BATCH):
        cur.execute("DO $$ BEGIN FOR i IN %d..%d LOOP "
                    "PERFORM secretsmgr_manage('bench/fleet/' || "
                    "lpad(i::text, 4, '0'), "
                    "('bench_fleet_' || lpad(i::text, 4, '0'))::name, "
                    "'single', interval '1 day'); END LOOP; END $$"
                    % (b + 1, b + FLEET_BATCH))
        c0 = emu_calls()
        sampler.reset()
        t0 = time.perf_counter()
        cur.execute("SELECT status, count(*) FROM secretsmgr_rotate_due() "
                    "GROUP BY status")
        for st, n in cur.fetchall():
            statuses[st] = statuses.get(st, 0) + n
        batch_s.append(time.perf_counter() - t0)
        batch_peak.append(sampler.reset())
        c1 = emu_calls()
        calls_a += sum(c1.get(op, 0) - c0.get(op, 0) for op in c1)
    sampler.stop()
    peak_a = max(batch_peak)
    ctx1, rss1 = contexts_kb(cur), rss_anon_kb(pid)
    conn.close()
    calls_a /= FLEET

    # (B) with the memory row: in one fresh backend, 100k cached reads,
    # uncached reads, then every fleet role rotated once more, one
    # secretsmgr_rotate per transaction.  Memory read between the phases.
    conn = pg_connect()
    cur = conn.cursor()
    pid = backend_pid(cur)
    mem = []

    def snap(label):
        mem.append((label, contexts_kb(cur), rss_anon_kb(pid)))

    cur.execute("SELECT secretsmgr_get_secret('bench/app') IS NOT NULL")
    cur.execute("SELECT secretsmgr_rotate(%s) IS NOT NULL", (ids[0][0],))
    # the loop's own memory (generate_series keeps its rows in a
    # tuplestore, and malloc keeps what it freed) before the baseline
    server_loop_us(cur, "i", MEM_READS)
    snap("after one read, one rotation and an empty %d-row loop"
         % MEM_READS)
    sampler = PeakRss(pid)
    sampler.start()
    server_loop_us(cur, "secretsmgr_get_secret('bench/app')", MEM_READS)
    snap("after %d cached reads" % MEM_READS)
    server_loop_us(cur, "secretsmgr_get_secret('bench/app')", MEM_READS)
    snap("after %d more" % MEM_READS)
    cur.execute("SET secretsmgr.cache_ttl = 0")
    for _ in range(MEM_UNCACHED // 400):
        server_loop_us(cur, "secretsmgr_get_secret('bench/app')", 400)
    cur.execute("RESET secretsmgr.cache_ttl")
    snap("after %d uncached reads" % MEM_UNCACHED)
    times = []
    c0 = emu_calls()
    m0 = emulog.mark()
    t_all = time.perf_counter()
    for sid, _ in ids:
        t0 = time.perf_counter()
        cur.execute("SELECT secretsmgr_rotate(%s) IS NOT NULL", (sid,))
        cur.fetchone()
        times.append((time.perf_counter() - t0) * 1e3)
    total_b = time.perf_counter() - t_all
    m1 = emulog.mark()
    c1 = emu_calls()
    svc = emulog.service_us(m0, m1)
    emu_b = sum((c1.get(op, 0) - c0.get(op, 0)) / FLEET *
                (med(svc.get(op, [])) or 0) for op in c1) / 1000.0
    snap("after %d rotations" % FLEET)
    peak_b = sampler.stop()
    calls_b = sum(c1.get(op, 0) - c0.get(op, 0) for op in c1) / FLEET

    # every fleet role's AWSCURRENT logs in
    cur.execute("SELECT count(*) FILTER (WHERE secretsmgr_verify(id)) "
                "FROM unnest(%s::text[]) id", ([sid for sid, _ in ids],))
    verified = cur.fetchone()[0]
    conn.close()

    total_a = sum(batch_s)
    per_a = [s_ * 1e3 / FLEET_BATCH for s_ in batch_s]
    met_a = "met" if total_a <= FLEET_TARGET_S else \
        "missed by %.1f s" % (total_a - FLEET_TARGET_S)
    met_b = "met" if total_b <= FLEET_TARGET_S else \
        "missed by %.1f s" % (total_b - FLEET_TARGET_S)
    ROWS.append(Row("fleet: %d roles by `secretsmgr_rotate_due()`, %d due "
                    "per call, total" % (FLEET, FLEET_BATCH), total_a, "s",
                    "—", None, "≤ %g s: **%s**" % (FLEET_TARGET_S, met_a)))
    ROWS.append(Row("fleet: the same, per rotation (median of %d batch "
                    "means)" % len(per_a), med(per_a), "ms",
                    "single `secretsmgr_rotate`, above",
                    RESULTS.get("rotation_ms")))
    ROWS.append(Row("fleet: %d roles, one `secretsmgr_rotate` per "
                    "transaction, total" % FLEET, total_b, "s", "—", None,
                    "≤ %g s: **%s**" % (FLEET_TARGET_S, met_b)))
    ROWS.append(Row("fleet: the same, per rotation (median of %d)" % FLEET,
                    med(times), "ms", "single `secretsmgr_rotate`, above",
                    RESULTS.get("rotation_ms")))
    ROWS.append(Row("fleet: backend peak private memory, rotate_due "
                    "batches", peak_a / 1024.0, "MiB",
                    "before the first batch", rss0 / 1024.0))
    # flat: no growth from the end of the first read loop to the end (the
    # first loop of a backend grows malloc's arena once; see the note)
    m0, m1, m3 = mem[0], mem[1], mem[-1]
    ctx_flat = m3[1] - m0[1] < 1024
    rss_flat = m3[2] - m1[2] < 1024
    TARGETS.append(
        "**1,000 rotations in ≤ %g s with flat memory: %s.** By "
        "`secretsmgr_rotate_due()`, %d due per call: %.1f s, %.2f ms a "
        "rotation, backend memory peaking at %.1f MiB within a call; by "
        "one `secretsmgr_rotate` per transaction: %.1f s, median %.2f ms. "
        "Over %dk cached reads, %d uncached reads and %d rotations in one "
        "backend its memory contexts went from %.0f to %.0f kB; its "
        "private memory grew %.0f kB during the first %dk-read loop, once "
        "(malloc keeps what the executor freed), and %+.0f kB over "
        "everything after it."
        % (FLEET_TARGET_S, "met" if max(total_a, total_b) <= FLEET_TARGET_S
           and ctx_flat and rss_flat else "missed",
           FLEET_BATCH, total_a, med(per_a), peak_a / 1024.0, total_b,
           med(times), 2 * MEM_READS // 1000, MEM_UNCACHED, FLEET, m0[1],
           m3[1], m1[2] - m0[2], MEM_READS // 1000, m3[2] - m1[2]))
    ROWS.append(Row("memory: backend contexts after %dk reads and %d "
                    "rotations" % (2 * MEM_READS // 1000, FLEET),
                    m3[1] / 1024.0, "MiB", "before them", m0[1] / 1024.0,
                    "flat: **%s**" % ("yes" if ctx_flat else
                                      "no, +%.0f kB" % (m3[1] - m0[1]))))
    ROWS.append(Row("memory: backend private memory (RssAnon) after them",
                    m3[2] / 1024.0, "MiB", "after the first %dk reads"
                    % (MEM_READS // 1000), m1[2] / 1024.0,
                    "flat: **%s**; peak %.1f MiB" % (
                        "yes" if rss_flat else
                        "no, +%.0f kB" % (m3[2] - m1[2]), peak_b / 1024.0)))
    NOTES.append(
        "Fleet: set-up (%d secrets created with boto3, %d roles created and "
        "bound) took %.1f s, untimed. (A) `secretsmgr_rotate_due()` in %d "
        "transactions of %d: statuses %s; batch times %s s; %.2f Secrets "
        "Manager calls per rotation (first rotation of each secret); the "
        "backend's memory contexts went from %.0f to %.0f kB and its "
        "RssAnon from %.0f to %.0f kB (peak during each call: %s kB; %d "
        "samples). "
        "(B) one `secretsmgr_rotate` per transaction: p90 %.2f ms, max "
        "%.2f ms; %.2f calls per rotation, whose median emulator service "
        "times add up to %.2f ms a rotation (%.2f ms for the single "
        "secret above: the emulator finds a secret by ARN by a linear "
        "search over its %d+ secrets). Afterwards "
        "`secretsmgr_verify` is true for %d of the %d secrets. Rotating all "
        "%d in one `secretsmgr_rotate_due()` call would hold %d puts "
        "for one commit: a failure at the last would abort the "
        "transaction after the earlier versions were put, leaving that "
        "many labels for the stage-undo worker to move back (and, after a "
        "crash, that many secrets for `secretsmgr_reconcile`); batches "
        "bound that."
        % (FLEET, FLEET, setup_s, len(batch_s), FLEET_BATCH,
           ", ".join("%s %d" % kv for kv in sorted(statuses.items())),
           ", ".join("%.2f" % x for x in batch_s), calls_a, ctx0, ctx1,
           rss0, rss1, ", ".join("%d" % x for x in batch_peak),
           sampler.samples, p90(times), max(times),
           calls_b, emu_b, RESULTS.get("rotation_emu_ms") or 0, FLEET,
           verified, FLEET, FLEET, FLEET))
    NOTES.append(
        "Memory of one backend (memory contexts, `pg_backend_memory_"
        "contexts`; private memory, RssAnon of `/proc/<pid>/status`): "
        + "; ".join("%s: %.0f kB / %.0f kB" % m for m in mem)
        + "; peak RssAnon %.0f kB." % peak_b)
    METHODS.append(
        "**Fleet.** %d roles `bench_fleet_NNNN` (LOGIN), %d secrets "
        "`bench/fleet/NNNN` created with boto3 and bound with "
        "`secretsmgr_manage` (single strategy, no interval). (A) For each "
        "batch of %d, `secretsmgr_manage` again with a 1-day interval (so "
        "exactly that batch is due: never rotated), then `SELECT status, "
        "count(*) FROM secretsmgr_rotate_due() GROUP BY status` in "
        "autocommit, timed by the client: one transaction whose %d puts "
        "happen at its commit. (B) In a fresh backend, `SELECT "
        "secretsmgr_rotate(id)` for every secret, one autocommit "
        "transaction each, timed by the client. Peak memory: RssAnon of "
        "`/proc/<pid>/status` sampled every 5 ms while it runs."
        % (FLEET, FLEET, FLEET_BATCH, FLEET_BATCH))
    METHODS.append(
        "**Memory.** The backend of (B): one read, one rotation and the "
        "empty loop `count(i)` over as many rows as the read loop (its "
        "tuplestore, which malloc keeps after it is freed, is the loop's, "
        "not ours), then %d cached reads (one server-side loop) twice, %d "
        "uncached reads "
        "(`secretsmgr.cache_ttl = 0`, loops of 400), then the %d "
        "rotations; the sum of `pg_backend_memory_contexts.total_bytes` "
        "and RssAnon after each phase. Flat means less than 1 MiB of "
        "growth: of the contexts from the first snapshot, of RssAnon from "
        "the end of the first read loop (the first long loop of a backend "
        "grows malloc's arena once; a second one adds nothing, which is "
        "what shows there is no growth per call). RssAnon keeps what "
        "malloc has not returned to the system, so it can only overstate "
        "growth."
        % (MEM_READS, MEM_UNCACHED, FLEET))


def bench_pbkdf2():
    """The SCRAM verifier: scram.c (OpenSSL's PKCS5_PBKDF2_HMAC) beside
    PostgreSQL's pg_be_scram_build_secret, in the same backend, through the
    test-only entry point secretsmgr_scram_bench (bound as in sql/scram.sql)."""
    say("PBKDF2: %d SCRAM verifiers each way" % PBKDF2_N)
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("CREATE FUNCTION pg_temp.scram_bench(int, bool) RETURNS float8 "
                "AS '$libdir/secretsmgr', 'secretsmgr_scram_bench' "
                "LANGUAGE C STRICT")
    cur.execute("SELECT coalesce(current_setting('scram_iterations', true), "
                "'4096')")
    iterations = cur.fetchone()[0]
    ours, theirs = [], []
    for _ in range(3):          # interleaved, the median of three runs
        cur.execute("SELECT pg_temp.scram_bench(%s, true)", (PBKDF2_N,))
        ours.append(cur.fetchone()[0])
        cur.execute("SELECT pg_temp.scram_bench(%s, false)", (PBKDF2_N,))
        theirs.append(cur.fetchone()[0])
    conn.close()
    o, t = med(ours) / 1000.0, med(theirs) / 1000.0
    RESULTS["pbkdf2_ms"] = o
    ROWS.append(Row("SCRAM verifier build, OpenSSL `PKCS5_PBKDF2_HMAC` "
                    "(median of 3 × %d)" % PBKDF2_N, o, "ms",
                    "PostgreSQL's `pg_be_scram_build_secret`, same backend",
                    t, "≥ 3× faster: **%s**" % (
                        "met" if t >= 3 * o else
                        "missed: %.2f× faster" % (t / o))))
    TARGETS.append(
        "**The verifier with OpenSSL's PBKDF2, byte-identical to "
        "PostgreSQL's: %.2f× faster.** %.2f ms a verifier against %.2f ms "
        "for `pg_be_scram_build_secret` at %s iterations, in the same "
        "backend. Identity is not measured here but proven by the regress "
        "suite `scram` (10,000 generated passwords, 0 differing bytes)."
        % (t / o, o, t, iterations))
    METHODS.append(
        "**PBKDF2.** In one backend, the test-only C entry point "
        "`secretsmgr_scram_bench(n, openssl)` (bound with `CREATE FUNCTION "
        "... LANGUAGE C` as the regress suite `scram` binds its self-test) "
        "builds %d verifiers of distinct passwords with a fresh salt at the "
        "server's iteration count, by `sm_scram_build_secret` or by "
        "`pg_be_scram_build_secret`, and returns the mean time; three runs "
        "each way, interleaved, median." % PBKDF2_N)


def fleet_due_once(endpoint=None):
    """Bind the fleet due (1-second interval), wait, and time one
    secretsmgr_rotate_due() call (through endpoint when given); returns
    (seconds, statuses, calls by operation, max_concurrent_requests)."""
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("DO $$ BEGIN FOR i IN 1..%d LOOP "
                "PERFORM secretsmgr_manage('bench/fleet/' || "
                "lpad(i::text, 4, '0'), "
                "('bench_fleet_' || lpad(i::text, 4, '0'))::name, "
                "'single', interval '1 second'); END LOOP; END $$" % FLEET)
    time.sleep(1.2)
    if endpoint:
        cur.execute("SET secretsmgr.endpoint = %s", (endpoint,))
    cur.execute("SHOW secretsmgr.max_concurrent_requests")
    in_flight = cur.fetchone()[0]
    c0 = emu_calls()
    t0 = time.perf_counter()
    cur.execute("SELECT status, count(*) FROM secretsmgr_rotate_due() "
                "GROUP BY status")
    statuses = dict(cur.fetchall())
    total = time.perf_counter() - t0
    c1 = emu_calls()
    calls = {op: c1.get(op, 0) - c0.get(op, 0) for op in c1
             if c1.get(op, 0) != c0.get(op, 0)}
    cur.execute("RESET secretsmgr.endpoint")
    cur.execute("DO $$ BEGIN FOR i IN 1..%d LOOP "
                "PERFORM secretsmgr_manage('bench/fleet/' || "
                "lpad(i::text, 4, '0'), "
                "('bench_fleet_' || lpad(i::text, 4, '0'))::name); "
                "END LOOP; END $$" % FLEET)
    conn.close()
    return total, statuses, calls, in_flight


def bench_fleet_one_call(emulog, url):
    """All of the fleet due at once: one secretsmgr_rotate_due() call reads
    the 1,000 values with BatchGetSecretValue (20 a call, several in flight)
    and sends the puts at commit concurrently; without added latency, then
    through the latency proxy (+10 ms a Secrets Manager call)."""
    say("fleet: %d due in one secretsmgr_rotate_due() call" % FLEET)
    total, statuses, calls, in_flight = fleet_due_once()
    say("fleet: the same under +%g ms a call" % latency.ADDED_MS)
    proxy, purl = latency.start_proxy(url)
    try:
        total10, statuses10, calls10, _ = fleet_due_once(purl)
    finally:
        proxy.terminate()
        proxy.wait()
    met = total10 <= FLEET_ONE_CALL_TARGET_S and statuses10.get("rotated") == FLEET
    ROWS.append(Row("fleet: %d due in one `secretsmgr_rotate_due()` call, "
                    "total (no added latency)" % FLEET, total, "s",
                    "per rotation × %d: single `secretsmgr_rotate`, above"
                    % FLEET,
                    (RESULTS.get("rotation_ms") or 0) * FLEET / 1000.0 or None))
    ROWS.append(Row("fleet: %d due in one `secretsmgr_rotate_due()` call "
                    "under +%g ms a call, total" % (FLEET, latency.ADDED_MS),
                    total10, "s",
                    "%d sequential calls × %g ms (one read and one put each)"
                    % (2 * FLEET, latency.ADDED_MS),
                    2 * FLEET * latency.ADDED_MS / 1000.0,
                    "≤ %g s: **%s**" % (FLEET_ONE_CALL_TARGET_S,
                                        "met" if met else "missed by %.2f s"
                                        % (total10 - FLEET_ONE_CALL_TARGET_S))))
    ROWS.append(Row("fleet: the same, Secrets Manager calls",
                    sum(calls10.values()), "calls",
                    "one `GetSecretValue` and one `PutSecretValue` each",
                    2 * FLEET))
    TARGETS.append(
        "**1,000 due secrets by `secretsmgr_rotate_due()` under +%g ms a "
        "call in ≤ %g s: %s.** %.2f s for %d due in one call through the "
        "latency proxy (statuses %s), %.2f s without it; sequential calls "
        "would wait %d × %g ms = %.0f s for the network alone. The current "
        "values came in %d `BatchGetSecretValue` calls and the new versions "
        "went in %d `PutSecretValue` calls, %s in flight at a time (the "
        "calls of the run: %s). What is left is local work: one `ALTER "
        "ROLE` (with PostgreSQL's own PBKDF2 of the verifier) and one "
        "OpenSSL PBKDF2 per secret, run one after another in the backend."
        % (latency.ADDED_MS, FLEET_ONE_CALL_TARGET_S,
           "met" if met else "missed by %.2f s" % (total10 - FLEET_ONE_CALL_TARGET_S),
           total10, FLEET,
           ", ".join("%s %d" % kv for kv in sorted(statuses10.items())),
           total, 2 * FLEET, latency.ADDED_MS, 2 * FLEET * latency.ADDED_MS / 1000.0,
           calls10.get("BatchGetSecretValue", 0), calls10.get("PutSecretValue", 0),
           in_flight,
           ", ".join("%s %d" % kv for kv in sorted(calls10.items()))))
    METHODS.append(
        "**Fleet in one call.** After (B), every fleet secret is bound "
        "again with a 1-second interval and, 1.2 s later, `SELECT status, "
        "count(*) FROM secretsmgr_rotate_due() GROUP BY status` runs once "
        "in autocommit (default `secretsmgr.max_concurrent_requests`), "
        "timed by the client; the emulator's call counters before and "
        "after it give the calls. Then the same again with the session's "
        "`secretsmgr.endpoint` set to the latency proxy (+10 ms a Secrets "
        "Manager call, test/proxy/latency_proxy.py). The intervals are "
        "removed afterwards.")


# --- output -----------------------------------------------------------------

# --- logins: the stale-client hook (ClientAuthentication_hook) ---------------

def restart_cluster(preload):
    """Restart the cluster with secretsmgr in shared_preload_libraries or not."""
    conn = pg_connect()
    cur = conn.cursor()
    if preload:
        cur.execute("ALTER SYSTEM SET shared_preload_libraries = 'secretsmgr'")
    else:
        cur.execute("ALTER SYSTEM RESET shared_preload_libraries")
    conn.close()
    pg_ctl = os.path.join(os.path.dirname(os.environ["SM_BENCH_POSTGRES"]), "pg_ctl")
    cmd = [pg_ctl, "-D", os.environ["SM_BENCH_PGDATA"], "-l",
           os.environ["SM_BENCH_PGLOG"], "-w", "-m", "fast", "restart"]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, capture_output=True,
                   env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))
    conn = pg_connect()
    cur = conn.cursor()
    on = q1(cur, "SELECT 'secretsmgr' = ANY (string_to_array("
            "current_setting('shared_preload_libraries'), ','))")
    conn.close()
    if on != preload:
        raise RuntimeError("shared_preload_libraries did not change")


def login_batch_us(port, user, password, n):
    """Mean wall time of n password logins (connect + close) over TCP."""
    t0 = time.perf_counter()
    for _ in range(n):
        try:
            psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres",
                             user=user, password=password).close()
        except psycopg2.OperationalError:
            pass
    return (time.perf_counter() - t0) / n * 1e6


def bench_logins(port):
    say("logins: %d per batch, %d batches per mode, preloaded and not"
        % (LOGINS, LOGIN_ROUNDS))
    good = new_password()
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("CREATE ROLE bench_login LOGIN PASSWORD %s", (good,))
    cur.execute("CREATE ROLE bench_login_managed LOGIN")
    conn.close()
    smctl("create", "bench/login", json.dumps({
        "engine": "postgres", "host": "127.0.0.1", "port": int(port),
        "dbname": "postgres", "username": "bench_login_managed",
        "password": new_password()}))
    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("SELECT secretsmgr_manage('bench/login', 'bench_login_managed')")
    conn.close()

    times = {(m, k): [] for m in (False, True) for k in ("ok", "failed")}
    for _ in range(LOGIN_ROUNDS):
        for preload in (False, True):
            restart_cluster(preload)
            conn = pg_connect()
            cur = conn.cursor()
            # a rotation's commit puts the managed role in the hook's segment
            cur.execute("SELECT secretsmgr_rotate('bench/login')")
            conn.close()
            login_batch_us(port, "bench_login", good, 10)       # warm-up
            times[(preload, "ok")].append(
                login_batch_us(port, "bench_login", good, LOGINS))
            times[(preload, "failed")].append(
                login_batch_us(port, "bench_login", "wrong-" + good, LOGINS))
            if preload:
                conn = pg_connect()
                cur = conn.cursor()
                counted = q1(cur, "SELECT count(*) FROM secretsmgr_stale_clients() "
                             "WHERE role_name = 'bench_login'")
                conn.close()
    restart_cluster(False)

    for kind, what in (("ok", "accepted"), ("failed", "refused")):
        plain = times[(False, kind)]
        pre = times[(True, kind)]
        spread = (max(plain) - min(plain)) / med(plain)
        limit = med(plain) * (1 + max(spread, 0.02))
        ROWS.append(Row(
            "login of an unmanaged role, password %s (SCRAM, TCP), preloaded" % what,
            med(pre) / 1000, "ms",
            "the same login, secretsmgr not preloaded (no hook)",
            med(plain) / 1000,
            "no measurable cost: **%s**" % ("met" if med(pre) <= limit else "missed")))
    NOTES.append(
        "Logins: batch means (ms) not preloaded, accepted %s, refused %s; "
        "preloaded, accepted %s, refused %s. The target counts a preloaded "
        "median within the spread of the plain batches (at least 2%%) as no "
        "measurable cost. `secretsmgr_stale_clients()` lists %d row(s) for "
        "the unmanaged role (0: its failed logins are not counted)." % (
            ", ".join("%.2f" % (t / 1000) for t in times[(False, "ok")]),
            ", ".join("%.2f" % (t / 1000) for t in times[(False, "failed")]),
            ", ".join("%.2f" % (t / 1000) for t in times[(True, "ok")]),
            ", ".join("%.2f" % (t / 1000) for t in times[(True, "failed")]),
            counted))
    METHODS.append(
        "**Logins.** The stale-client hook (`ClientAuthentication_hook`) runs "
        "in every login once secretsmgr is in `shared_preload_libraries`. Role "
        "`bench_login` (unmanaged, SCRAM password) logs in %d times over TCP "
        "to 127.0.0.1 from psycopg2 (connect and close, timed by the client), "
        "then %d times with a wrong password; the cluster is restarted with "
        "and without the library preloaded, %d batches each, interleaved, and "
        "each row is the median of the batch means. Before each batch one "
        "`secretsmgr_rotate` of a managed role (`bench_login_managed`) puts "
        "that role in the hook's shared segment, so a refused login does the "
        "segment lookup it does in production." % (LOGINS, LOGINS, LOGIN_ROUNDS))


def table_lines():
    cells = [HEADER] + [r.cells() for r in ROWS]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    out = []
    for n, c in enumerate(cells):
        out.append("| " + " | ".join(c[i].ljust(widths[i])
                                     for i in range(len(c))) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return out


def write_doc(path, command, started, elapsed, mach, vers):
    lines = [
        "# Benchmarks",
        "",
        "Written by `make docs-figures` from a `make bench` run; do not "
        "edit by hand.",
        "Every figure below comes from one run, measured side by side "
        "against the same local emulator (`test/emulator/smemu.py`) and "
        "the same throwaway PostgreSQL cluster, so compare within the "
        "table, not across machines.",
        "",
        "- date: %s (run took %.0f s)" % (started, elapsed),
        "- command: `%s` (from the repository root, as root; on Debian 12 it "
        "installs the packages it needs)" % command,
        "",
        "## Machine",
        "",
    ]
    lines += ["- %s: %s" % kv for kv in mach]
    lines += ["", "## Versions", ""]
    lines += ["- %s: %s" % kv for kv in vers]
    lines += ["", "## Results", ""]
    lines += table_lines()
    lines += ["", "Ratios are secretsmgr's figure divided by the comparison "
              "(below 1 means secretsmgr takes less time). Rows without a "
              "target are not assessed.", ""]
    lines += ["## Targets", ""]
    lines += ["- " + t for t in TARGETS]
    lines += ["", "## Observations of this run", ""]
    lines += ["- " + n for n in NOTES]
    lines += ["", "## Method", ""]
    for m in METHODS:
        lines += [m, ""]
    lines += [
        "Set-up: `test/lib.sh` (`sm_packages`, `sm_workdir`, "
        "`sm_start_emulator`, `sm_start_cluster` with default settings, "
        "`fsync = off`), the extension built into a private copy of the "
        "server tree (`sm_private_tree` of `test/sanitize/lib.sh`), so "
        "nothing installed on the machine during the run can change the "
        "module it measures; the driver is `test/bench/bench.py` under Debian's "
        "`/usr/bin/python3` with python3-psycopg2 and python3-boto3, "
        "connected over the cluster's Unix socket. The emulator is a "
        "threaded Python server that checks every signature with botocore, "
        "so it is far slower than the real service; absolute uncached and "
        "rotation figures are dominated by it, which is why its own "
        "service time is measured and shown. Timings on shared 2-core "
        "machines are noisy: read the ratios, and the run's load average.",
        ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emu-log", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--command", default="make bench")
    a = ap.parse_args()

    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    if os.environ.get("SM_BENCH_T0"):       # the run's start, set-up included
        t_start -= time.time() - float(os.environ["SM_BENCH_T0"])
    url = os.environ["SM_EMULATOR_URL"]
    port = os.environ["PGPORT"]
    emulog = EmuLog(a.emu_log)
    mach = machine()

    conn = pg_connect()
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS secretsmgr")
    vers = versions(cur)
    conn.close()
    smctl("create", "bench/app", json.dumps({
        "engine": "postgres", "host": "127.0.0.1", "port": int(port),
        "dbname": "postgres", "username": "bench_app",
        "password": new_password()}))

    bench_logins(port)
    bench_cached(url)
    bench_cluster_stats()
    bench_uncached(url, emulog)
    bench_batch()
    bench_pbkdf2()
    bench_rotation(port, emulog)
    bench_reference(url, port)
    if "rotation_ms" in RESULTS:
        latency.bench_latency(sys.modules[__name__], url, port, emulog)
    bench_fleet(url, port, emulog)
    bench_fleet_one_call(emulog, url)

    elapsed = time.monotonic() - t_start
    mach.append(("load average at end", " ".join(
        open("/proc/loadavg").read().split()[:3])))
    print()
    for line in table_lines():
        print(line)
    print()
    for n in TARGETS + NOTES:
        print("- " + n)
    write_doc(a.doc, a.command,
              started.strftime("%Y-%m-%d %H:%M UTC"), elapsed, mach, vers)
    print("\nwritten to %s" % a.doc)


if __name__ == "__main__":
    main()
