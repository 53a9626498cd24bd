#!/usr/bin/python3
"""Run every SQL example of the documentation against a real cluster.

For each Markdown file (README.md, docs/*.md, lambda/README.md) that has
```sql blocks: reset the emulator, create the secrets and roles the file's
fixture comments name, create a fresh database with the extension, run the
blocks in order as the bootstrap superuser, then drop the database and every
role the file (or its fixture) created.

Directives, in HTML comments (invisible when rendered):
  <!-- docs-test: secret NAME {json} -->  a secret (a random password is added
                                          when the JSON has none)
  <!-- docs-test: role NAME OPTIONS; role NAME2 OPTIONS -->
  <!-- docs-test: setup SQL -->           run (hidden) before the page's blocks
  <!-- docs-test: error SQLSTATE -->     the next block must fail with it
  <!-- docs-test: skip -->               the next block is not SQL to run
Prints one line per block, then "N passed, N failed".
"""
import json
import os
import re
import secrets
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SMCTL = os.path.join(ROOT, "test", "emulator", "smctl")
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->")


def psql(sql, db="postgres", expect_ok=True):
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
                        "-d", db, "-f", "-"], input=sql, capture_output=True, text=True)
    if expect_ok and p.returncode != 0:
        raise RuntimeError("psql failed: %s" % p.stderr.strip())
    return p


def smctl(*args):
    subprocess.run([SMCTL] + list(args), check=True, capture_output=True, text=True)


def parse(path):
    """(fixture directives, [(directive or None, sql, line)])"""
    fixtures, blocks = [], []
    pending = None
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = DIRECTIVE.search(line)
        if m:
            d = m.group(1)
            if d.startswith("secret ") or d.startswith("role ") or d.startswith("setup "):
                fixtures.append(d)
            else:
                pending = d
        elif line.strip() == "```sql":
            start = i + 1
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((pending, "\n".join(body) + "\n", start))
            pending = None
        elif line.strip() and not line.startswith("<!--"):
            pass
        i += 1
    return fixtures, blocks


def roles():
    return set(psql("\\pset tuples_only on\n\\pset format unaligned\nSELECT rolname FROM pg_roles;").stdout.split())


def set_up(fixtures):
    smctl("reset", "--state")
    for d in fixtures:
        if d.startswith("secret "):
            _, name, doc = d.split(" ", 2)
            value = json.loads(doc)
            value.setdefault("password", secrets.token_urlsafe(18))
            smctl("create", name, json.dumps(value))
        elif d.startswith("role "):
            for spec in d.split(";"):
                spec = spec.strip()
                if spec.startswith("role "):
                    psql("CREATE ROLE %s;" % spec[len("role "):])


def tear_down(db, before):
    psql("DROP DATABASE IF EXISTS %s;" % db)
    for r in sorted(roles() - before, key=lambda r: r.endswith("_clone"), reverse=True):
        psql('DROP OWNED BY "%s"; DROP ROLE "%s";' % (r, r), expect_ok=False)
    psql("ALTER SYSTEM RESET ALL; SELECT pg_reload_conf();")


def main():
    files = sys.argv[1:] or (["README.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))
        if f.endswith(".md")) + ["lambda/README.md"])
    passed = failed = skipped = 0
    for rel in files:
        path = os.path.join(ROOT, rel)
        fixtures, blocks = parse(path)
        if not blocks:
            continue
        before = roles()
        db = "docs_" + re.sub(r"[^a-z0-9]", "_", rel.lower())
        psql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (db, db))
        # a page that shows CREATE EXTENSION creates it itself
        if not any(re.search(r"CREATE EXTENSION[^;]*secretsmgr", sql, re.I) for _, sql, _ in blocks):
            psql("CREATE EXTENSION secretsmgr;", db=db)
        try:
            set_up(fixtures)
            for d in fixtures:
                if d.startswith("setup "):
                    psql(d[len("setup "):] + ";", db=db)
            for directive, sql, line in blocks:
                where = "%s:%d" % (rel, line)
                if directive == "skip":
                    print("skip %s" % where)
                    skipped += 1
                    continue
                p = psql(sql, db=db, expect_ok=False)
                want = directive.split()[1] if directive and directive.startswith("error ") else None
                got = re.search(r"ERROR:\s+([0-9A-Z]{5}):", p.stderr)
                if want is None and p.returncode == 0:
                    print("ok %s" % where)
                    passed += 1
                elif want is not None and got and got.group(1) == want:
                    print("ok %s (fails with %s, as documented)" % (where, want))
                    passed += 1
                else:
                    print("not ok %s: %s" % (where, (p.stderr.strip() or "no error, expected %s" % want)[:600]))
                    failed += 1
        finally:
            tear_down(db, before)
    print("%d passed, %d failed" % (passed, failed) + (", %d skipped" % skipped if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
