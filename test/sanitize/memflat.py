#!/usr/bin/python3
"""memflat.py: does one backend's memory stay flat over many secretsmgr calls?

Run by test/sanitize/memflat against a cluster and emulator it started
(PGHOST, PGPORT, PGUSER and SM_EMULATOR_URL in the environment).  One
connection, so one backend: after a warm-up (the cache, the curl handle, the
signing key and every hash table exist by then) it measures the backend's
memory contexts (pg_backend_memory_contexts, all contexts summed) and its
resident set (VmRSS of /proc/<pid>/status), runs cached reads, uncached
reads and rotations, and measures again after each phase.

Usage: memflat.py CACHED UNCACHED ROTATIONS [MAX_CONTEXT_GROWTH_BYTES MAX_RSSANON_GROWTH_BYTES]
Prints one line per phase and "N passed, N failed" (growth over the bounds
fails).
"""

import os
import subprocess
import sys
import time

import psycopg2

SMCTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                     "emulator", "smctl")


def smctl(*args):
    subprocess.run([SMCTL] + list(args), check=True)


def contexts(cur):
    cur.execute("SELECT sum(total_bytes)::bigint, count(*) FROM pg_backend_memory_contexts")
    return cur.fetchone()


def context_detail(cur):
    cur.execute("SELECT name, coalesce(ident, ''), sum(total_bytes)::bigint "
                "FROM pg_backend_memory_contexts GROUP BY 1, 2")
    return {(n, i): b for n, i, b in cur.fetchall()}


def rss(pid):
    """(VmRSS, RssAnon) in bytes: all resident pages, and the private ones.

    VmRSS also counts the shared buffers this backend has touched, which
    grows as the history table does; RssAnon is the backend's own heap."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                out[key] = int(rest.split()[0]) * 1024
    return out.get("VmRSS", 0), out.get("RssAnon", 0)


def batched(cur, sql, total, per):
    done = 0
    while done < total:
        n = min(per, total - done)
        cur.execute(sql, (n,))
        cur.fetchall()
        done += n


def main():
    cached, uncached, rotations = (int(a) for a in sys.argv[1:4])
    max_ctx = int(sys.argv[4]) if len(sys.argv) > 4 else None
    max_rss = int(sys.argv[5]) if len(sys.argv) > 5 else None

    smctl("create", "memflat/read",
          '{"username":"memflat_reader","password":"Memflat-Read-Pw-1","host":"db.internal"}')
    smctl("create", "memflat/rot",
          '{"username":"regress_memflat_rot","password":"Memflat-Rot-Pw-2"}')
    conn = psycopg2.connect(dbname="postgres")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS secretsmgr")
    cur.execute("DROP ROLE IF EXISTS regress_memflat_rot")
    cur.execute("CREATE ROLE regress_memflat_rot LOGIN")
    cur.execute("SELECT secretsmgr_manage('memflat/rot', 'regress_memflat_rot')")
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]

    read = "SELECT count(secretsmgr_get_secret('memflat/read')) FROM generate_series(1, %s)"
    # warm-up: every lazily built structure exists after this
    batched(cur, read, 1000, 1000)
    cur.execute("SET secretsmgr.cache_ttl = 0")
    batched(cur, read, 20, 10)
    cur.execute("RESET secretsmgr.cache_ttl")
    for _ in range(3):
        cur.execute("SELECT secretsmgr_rotate('memflat/rot')")

    phases = []
    base_ctx, base_n = contexts(cur)
    base_rss = rss(pid)
    base_detail = context_detail(cur)
    print("baseline: contexts %d bytes in %d contexts, VmRSS %d kB, RssAnon %d kB"
          % (base_ctx, base_n, base_rss[0] // 1024, base_rss[1] // 1024))

    def measure(name, count, seconds):
        ctx, n = contexts(cur)
        r = rss(pid)
        phases.append((name, ctx, r))
        print("after %-16s %7d calls in %6.2f s: contexts %+8d bytes (%d), VmRSS %+6d kB, RssAnon %+6d kB"
              % (name + ":", count, seconds, ctx - base_ctx, n,
                 (r[0] - base_rss[0]) // 1024, (r[1] - base_rss[1]) // 1024))

    t = time.time()
    batched(cur, read, cached, 1000)
    measure("cached reads", cached, time.time() - t)

    calls = ("SELECT coalesce(sum(count), 0)::bigint FROM secretsmgr_stats() "
             "WHERE category = 'api_call' AND name = 'GetSecretValue'")
    cur.execute(calls)
    calls_before = cur.fetchone()[0]
    t = time.time()
    cur.execute("SET secretsmgr.cache_ttl = 0")
    batched(cur, read, uncached, 100)
    cur.execute("RESET secretsmgr.cache_ttl")
    measure("uncached reads", uncached, time.time() - t)
    cur.execute(calls)
    sent = cur.fetchone()[0] - calls_before

    t = time.time()
    for _ in range(rotations):
        cur.execute("SELECT secretsmgr_rotate('memflat/rot')")
    measure("rotations", rotations, time.time() - t)

    end_ctx, _ = contexts(cur)
    end_rss = rss(pid)
    grown = sorted(((b - base_detail.get(k, 0), k) for k, b in context_detail(cur).items()),
                   reverse=True)[:5]
    print("largest context changes: " + ", ".join(
        "%s%s %+d" % (k[0], " (%s)" % k[1] if k[1] else "", d) for d, k in grown if d))

    cur.execute("SELECT secretsmgr_unmanage('memflat/rot')")
    cur.execute("DROP ROLE regress_memflat_rot")
    conn.close()

    passed = failed = 0
    # the uncached phase must really have gone to the emulator each time
    if sent == uncached:
        passed += 1
        print("ok %d GetSecretValue calls for %d uncached reads" % (sent, uncached))
    else:
        failed += 1
        print("FAIL %d GetSecretValue calls for %d uncached reads" % (sent, uncached))
    if max_ctx is not None:
        if end_ctx - base_ctx <= max_ctx:
            passed += 1
            print("ok context growth %d bytes <= %d" % (end_ctx - base_ctx, max_ctx))
        else:
            failed += 1
            print("FAIL context growth %d bytes > %d" % (end_ctx - base_ctx, max_ctx))
    if max_rss is not None:
        anon = end_rss[1] - base_rss[1]
        if anon <= max_rss:
            passed += 1
            print("ok RssAnon growth %d kB <= %d kB" % (anon // 1024, max_rss // 1024))
        else:
            failed += 1
            print("FAIL RssAnon growth %d kB > %d kB" % (anon // 1024, max_rss // 1024))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
