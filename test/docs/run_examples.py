#!/usr/bin/python3
"""Run every SQL example of the documentation against a real cluster.

The cluster is what a newcomer has (see test/docs/run): no secretsmgr
setting in postgresql.conf.  For each Markdown file (README.md, docs/*.md,
lambda/README.md) that has ```sql blocks: reset the emulator, create the
secrets and roles the file's fixture comments name, create a fresh database
with the extension (unless the page shows CREATE EXTENSION itself), run the
blocks in order, each as the persona the page names for it, then drop the
database and every role the file (or its fixture) created, and reset
ALTER SYSTEM.

A page that does not configure secretsmgr.region itself (the README and the
user guide do) gets it as the quick start sets it, before its blocks.

Personas are defined once, in docs/security.md: a ```sql block after
<!-- docs-test: persona NAME --> is NAME's canonical GRANT block.  Every
GRANT of a secretsmgr object on any page must be, word for word (whitespace
aside), a statement of one of those blocks.

Directives, in HTML comments (invisible when rendered):
  <!-- docs-test: secret NAME {json} -->  a secret (a random password is added
                                          when the JSON has none)
  <!-- docs-test: role NAME OPTIONS; role NAME2 OPTIONS -->
  <!-- docs-test: grant PERSONA -->       run PERSONA's canonical block (hidden),
                                          for pages that assume the grants
  <!-- docs-test: setup SQL -->           run (hidden, as superuser) before
                                          the page's blocks
  <!-- docs-test: iam-policy SQL -->      the page's policy query, for pages
                                          that assume the policy was attached
                                          (default: secretsmgr_iam_policy())
  <!-- docs-test: iam-policy -->          the next block is the page's policy
                                          query: what it returns is attached
                                          to the test key, and again after
                                          every later block (the page tells
                                          the reader to re-attach it after a
                                          binding)
  <!-- docs-test: as ROLE -->             the next block runs logged in as ROLE
                                          ("superuser": the bootstrap superuser);
                                          every block must name one
  <!-- docs-test: error SQLSTATE -->      the next block must fail with it
  <!-- docs-test: skip -->                the next block is not SQL to run
  <!-- docs-test: persona NAME -->        (docs/security.md) the next block is
                                          NAME's canonical GRANT block
A ```text block right after a ```sql block is the output the page shows:
psql's aligned output (for an error, its ERROR/DETAIL/HINT lines), compared
line by line; "..." in a shown line stands for any text (ids, timestamps).
Prints one line per check, then "N passed, N failed".
"""
import json
import os
import re
import secrets
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SMCTL = os.path.join(ROOT, "test", "emulator", "smctl")
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->")
SUPERUSER = os.environ.get("PGUSER", "postgres")
REGION = "eu-west-1"
PERSONAS_PAGE = os.path.join("docs", "security.md")

# The emulator enforces an IAM policy on the test key, as IAM does: once the
# extension exists, after every block the key holds exactly what the page's
# policy query returns (see sync_iam_policy), so every example runs with the
# policy secretsmgr_iam_policy() generates and nothing more.
DEFAULT_POLICY_SQL = "SELECT secretsmgr_iam_policy('database')"

FIXTURE_KINDS = ("secret ", "role ", "setup ", "grant ", "iam-policy ")


def psql(sql, db="postgres", expect_ok=True, user=None, password=None, verbose=True):
    env = dict(os.environ)
    if user is not None and user != SUPERUSER:
        env["PGUSER"] = user
        env["PGPASSWORD"] = password
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"]
    if verbose:
        args[2:2] = ["-v", "VERBOSITY=verbose"]
    p = subprocess.run(args, input=sql, capture_output=True, text=True, env=env)
    if expect_ok and p.returncode != 0:
        raise RuntimeError("psql failed: %s" % p.stderr.strip())
    return p


def smctl(*args):
    subprocess.run([SMCTL] + list(args), check=True, capture_output=True, text=True)


class Block:
    def __init__(self, directives, sql, line):
        self.directives = directives
        self.sql = sql
        self.line = line
        self.output = None      # the ```text block shown after it, if any

    def directive(self, word):
        for d in self.directives:
            if d == word or d.startswith(word + " "):
                return d[len(word):].strip()
        return None


def parse(path):
    """(fixture directives, [Block])"""
    fixtures, blocks = [], []
    pending = []
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = DIRECTIVE.search(line)
        if m:
            d = m.group(1)
            if d.startswith(FIXTURE_KINDS):
                fixtures.append(d)
            else:
                pending.append(d)
        elif line.strip() in ("```sql", "```text"):
            kind = line.strip()[3:]
            start = i + 1
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if kind == "sql":
                blocks.append(Block(pending, "\n".join(body) + "\n", start))
                pending = []
            elif blocks and blocks[-1].output is None and after_block(lines, blocks[-1], start):
                blocks[-1].output = body
        i += 1
    return fixtures, blocks


def after_block(lines, block, text_start):
    """Is the ```text block at text_start right after block's closing fence?"""
    j = block.line + block.sql.count("\n")   # index of the closing fence
    return all(not lines[k].strip() for k in range(j + 1, text_start - 1))


def statements(sql):
    """The statements of a block, comments dropped, whitespace folded."""
    sql = re.sub(r"--[^\n]*", "", sql)
    return [" ".join(s.split()) for s in sql.split(";") if s.strip()]


def canonical_personas():
    """{persona: block} from docs/security.md."""
    _, blocks = parse(os.path.join(ROOT, PERSONAS_PAGE))
    return {b.directive("persona"): b for b in blocks if b.directive("persona")}


def check_grants(rel, blocks, personas):
    """Every GRANT of a secretsmgr object is a statement of a persona block."""
    allowed = set()
    for b in personas.values():
        allowed.update(s for s in statements(b.sql) if s.upper().startswith("GRANT"))
    bad = []
    for b in blocks:
        for s in statements(b.sql):
            if s.upper().startswith("GRANT") and "secretsmgr" in s and s not in allowed:
                bad.append("%s:%d: %s" % (rel, b.line, s[:160]))
    return bad


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


def configure_region():
    """What the quick start does, for pages that assume it was done."""
    psql("LOAD 'secretsmgr';\nALTER SYSTEM SET secretsmgr.region = '%s';\n"
         "SELECT pg_reload_conf();\n" % REGION)
    time.sleep(0.3)


def sync_iam_policy(db, policy_sql):
    """Attach what policy_sql returns to the test key, once the extension
    exists (before, the key holds no policy and nothing calls AWS)."""
    installed = psql("\\pset tuples_only on\n"
                     "SELECT 1 FROM pg_extension WHERE extname = 'secretsmgr';",
                     db=db).stdout.strip()
    if not installed:
        return
    policy = psql("\\pset tuples_only on\n\\pset format unaligned\n%s;"
                  % policy_sql.strip().rstrip(";"), db=db).stdout.strip()
    smctl("iam-policy", os.environ["SM_TEST_ACCESS_KEY"], policy)


def login_password(role, db, known):
    """A password the runner logs in with as role (set once per page)."""
    if role not in known:
        known[role] = "docs-" + secrets.token_urlsafe(12)
        psql("ALTER ROLE \"%s\" PASSWORD '%s';" % (role.replace('"', '""'), known[role]))
    return known[role]


def shown_output(p, want_error):
    """What psql printed, as a page shows it."""
    if not want_error:
        return p.stdout.rstrip("\n").split("\n") if p.stdout.strip() else []
    out = []
    for line in p.stderr.rstrip("\n").split("\n"):
        if line.startswith("LOCATION:") or line.startswith("psql:"):
            line = re.sub(r"^psql:[^:]*:\d+: ", "", line)
            if line.startswith("LOCATION:"):
                continue
        out.append(re.sub(r"^(ERROR|WARNING|NOTICE):  [0-9A-Z]{5}: ", r"\1:  ", line))
    return out


def output_matches(shown, got):
    shown = [l.rstrip() for l in shown]
    got = [l.rstrip() for l in got]
    if len(shown) != len(got):
        return False
    for s, g in zip(shown, got):
        pattern = "^" + ".*".join(re.escape(part) for part in s.split("...")) + "$"
        if not re.match(pattern, g):
            return False
    return True


def run_page(rel, personas):
    passed = failed = skipped = 0
    path = os.path.join(ROOT, rel)
    fixtures, blocks = parse(path)
    if not blocks:
        return 0, 0, 0
    bad = check_grants(rel, blocks, personas)
    if bad:
        print("not ok %s: GRANTs that are not a persona's of %s:\n  %s"
              % (rel, PERSONAS_PAGE, "\n  ".join(bad)))
        failed += 1
    elif any(s.upper().startswith("GRANT") for b in blocks for s in statements(b.sql)):
        print("ok %s: every GRANT is a persona's of %s" % (rel, PERSONAS_PAGE))
        passed += 1
    before = roles()
    db = "docs_" + re.sub(r"[^a-z0-9]", "_", rel.lower())
    known = {}
    policy_sql = DEFAULT_POLICY_SQL
    psql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (db, db))
    try:
        set_up(fixtures)
        # a page that shows CREATE EXTENSION creates it itself; one that
        # shows the configuration configures it itself
        if not any(re.search(r"CREATE EXTENSION[^;]*secretsmgr", b.sql, re.I) for b in blocks):
            psql("CREATE EXTENSION secretsmgr;", db=db)
        if not any(re.search(r"ALTER SYSTEM SET secretsmgr\.region", b.sql, re.I) for b in blocks):
            configure_region()
        for d in fixtures:
            if d.startswith("grant "):
                psql(personas[d[len("grant "):]].sql, db=db)
            elif d.startswith("setup "):
                psql(d[len("setup "):] + ";", db=db)
            elif d.startswith("iam-policy "):
                policy_sql = d[len("iam-policy "):]
        sync_iam_policy(db, policy_sql)
        for b in blocks:
            where = "%s:%d" % (rel, b.line)
            if b.directive("skip") is not None:
                print("skip %s" % where)
                skipped += 1
                continue
            who = b.directive("as")
            if not who:
                print("not ok %s: the page names no persona for this block "
                      "(<!-- docs-test: as ROLE -->)" % where)
                failed += 1
                continue
            user = SUPERUSER if who == "superuser" else who
            password = None if user == SUPERUSER else login_password(user, db, known)
            want = b.directive("error")
            p = psql(b.sql, db=db, expect_ok=False, user=user, password=password)
            if "pg_reload_conf()" in b.sql:
                time.sleep(0.3)
            got = re.search(r"ERROR:\s+([0-9A-Z]{5}):", p.stderr)
            if want is None and p.returncode != 0:
                print("not ok %s (as %s): %s" % (where, who, p.stderr.strip()[:600]))
                failed += 1
            elif want is not None and not (got and got.group(1) == want):
                print("not ok %s (as %s): %s" % (where, who, (p.stderr.strip() or "no error, expected %s" % want)[:600]))
                failed += 1
            elif b.output is not None and not output_matches(b.output, shown_output(p, want is not None)):
                print("not ok %s (as %s): output differs from the page's\n--- shown\n%s\n--- got\n%s"
                      % (where, who, "\n".join(b.output), "\n".join(shown_output(p, want is not None))))
                failed += 1
            else:
                print("ok %s (as %s)%s%s" % (where, who,
                                             ", fails with %s as documented" % want if want else "",
                                             ", output as shown" if b.output is not None else ""))
                passed += 1
            if b.directive("iam-policy") is not None:
                policy_sql = b.sql
            try:
                sync_iam_policy(db, policy_sql)
            except (RuntimeError, subprocess.CalledProcessError) as e:
                print("not ok %s: the page's IAM policy could not be attached: %s"
                      % (where, str(e)[:600]))
                failed += 1
    finally:
        tear_down(db, before)
    return passed, failed, skipped


def tear_down(db, before):
    psql("DROP DATABASE IF EXISTS %s;" % db)
    for r in sorted(roles() - before, key=lambda r: r.endswith("_clone"), reverse=True):
        psql('DROP OWNED BY "%s"; DROP ROLE "%s";' % (r, r), expect_ok=False)
    psql("ALTER SYSTEM RESET ALL; SELECT pg_reload_conf();")
    time.sleep(0.3)


def main():
    files = sys.argv[1:] or (["README.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))
        if f.endswith(".md")) + ["lambda/README.md"])
    personas = canonical_personas()
    passed = failed = skipped = 0
    for name in ("app_reader", "dba", "rotation_lambda", "monitoring"):
        if name in personas:
            print("ok persona %s is defined in %s" % (name, PERSONAS_PAGE))
            passed += 1
        else:
            print("not ok persona %s has no canonical GRANT block in %s" % (name, PERSONAS_PAGE))
            failed += 1
    for rel in files:
        p, f, s = run_page(rel, personas)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    print("%d passed, %d failed" % (passed, failed) + (", %d skipped" % skipped if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
