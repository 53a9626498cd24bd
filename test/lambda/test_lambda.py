#!/usr/bin/python3
"""The rotation Lambda driven through its four steps.

Needs the Secrets Manager emulator (SM_EMULATOR_URL) and a PostgreSQL
cluster with secretsmgr installed and TLS on (PGHOST, PGPORT, superuser
PGUSER over the socket; every other role logs in with SCRAM over 127.0.0.1;
the server's certificate in SM_WORK/server.crt), as test/lambda/run starts
them.  SM_PG_LOG names the server log that the last case searches for every
secret value.

Every case uses its own secret and role, and ends by asserting the staging
labels (through smctl stage) and who can log in with what.
"""

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import socket
import ssl
import struct
import subprocess
import sys
import threading
import unittest
import urllib.request
import uuid

import boto3
import botocore.exceptions
import psycopg2
import psycopg2.extensions

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "lambda"))
import secretsmgr_rotation as rotation  # noqa: E402

SMCTL = os.path.join(ROOT, "test", "emulator", "smctl")
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/9999aaaa-8888-bbbb-7777-cccc6666dddd"
ACCESS_KEY = os.environ.get("SM_TEST_ACCESS_KEY", "AKIDSECRETSMGRTEST")
SECRET_KEY = os.environ.get("SM_TEST_SECRET_KEY", "TESTSECRETKEY/secretsmgr+EXAMPLE")
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:secretsmgr-rotation"
EXCLUDED = set(":/@\"'\\ ")

# everything the Lambda logs, and every password the tests made, for the
# leak check
LAMBDA_LOG = io.StringIO()
TEST_PASSWORDS = []


def scram_verifier(password):
    """A SCRAM-SHA-256 verifier, so that no test password is ever in SQL text
    (the server logs every statement).  ASCII passwords: SASLprep is a no-op."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return "SCRAM-SHA-256$4096:%s$%s:%s" % (b64(salt), b64(stored_key), b64(server_key))


def new_password():
    password = "Lambda-Test-" + secrets.token_urlsafe(18)
    TEST_PASSWORDS.append(password)
    return password


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def smctl(*args):
    return subprocess.run([sys.executable, SMCTL] + list(args), check=True,
                          capture_output=True, text=True).stdout


class LambdaTestCase(unittest.TestCase):
    db = None
    sm = None
    master_arn = None

    @classmethod
    def setUpClass(cls):
        for var in ("SM_EMULATOR_URL", "PGHOST", "PGPORT"):
            if not os.environ.get(var):
                raise unittest.SkipTest("%s is not set: run test/lambda/run" % var)
        cls.port = int(os.environ["PGPORT"])
        if LambdaTestCase.db is None:
            LambdaTestCase._set_up_once()

    @classmethod
    def _set_up_once(cls):
        env = {
            "SECRETS_MANAGER_ENDPOINT": os.environ["SM_EMULATOR_URL"],
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        os.environ.update(env)
        for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "TEST_LOGIN", "ROTATION_STRATEGY",
                    "DB_NAME", "DB_SSL_ROOT_CERT", "PASSWORD_LENGTH", "EXCLUDE_CHARACTERS",
                    "DB_ALLOWED_HOSTS", "PGSSLROOTCERT"):
            os.environ.pop(var, None)

        handler = logging.StreamHandler(LAMBDA_LOG)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        rotation.logger.addHandler(handler)
        rotation.logger.setLevel(logging.DEBUG)
        rotation.logger.propagate = False

        db = psycopg2.connect(host=os.environ["PGHOST"], port=os.environ["PGPORT"],
                              user=os.environ.get("PGUSER", "postgres"), dbname="postgres")
        db.autocommit = True
        LambdaTestCase.db = db
        LambdaTestCase.sm = boto3.client("secretsmanager",
                                         endpoint_url=os.environ["SM_EMULATOR_URL"])
        cls.sql("CREATE EXTENSION IF NOT EXISTS secretsmgr")
        cls.sql("SET secretsmgr.cache_ttl = 0")

        # the Lambda's database identity: CREATEROLE and the two functions only
        admin_pw = new_password()
        cls.sql("CREATE ROLE rotation_admin LOGIN CREATEROLE PASSWORD %s",
                (scram_verifier(admin_pw),))
        cls.sql("GRANT EXECUTE ON FUNCTION secretsmgr_set_secret(text, text), "
                "secretsmgr_test_secret(text, text) TO rotation_admin")
        master = {"engine": "postgres", "host": "127.0.0.1", "port": cls.port_of(),
                  "dbname": "postgres", "username": "rotation_admin", "password": admin_pw}
        out = LambdaTestCase.sm.create_secret(Name="lambda/master",
                                              SecretString=json.dumps(master))
        LambdaTestCase.master_arn = out["ARN"]
        os.environ["MASTER_SECRET_ARN"] = out["ARN"]

    @classmethod
    def port_of(cls):
        return int(os.environ["PGPORT"])

    @classmethod
    def sql(cls, query, args=None):
        with LambdaTestCase.db.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None

    def setUp(self):
        # each case starts from the deployment's environment: the database
        # named, TLS verified against the test server's certificate
        for var in ("TEST_LOGIN", "ROTATION_STRATEGY", "DB_ALLOWED_HOSTS", "DB_SSLMODE"):
            os.environ.pop(var, None)
        os.environ["DB_NAME"] = "postgres"
        os.environ["DB_SSL_ROOT_CERT"] = os.path.join(os.environ["SM_WORK"], "server.crt")
        os.environ["MASTER_SECRET_ARN"] = self.master_arn

    # --- fixtures ---------------------------------------------------------

    def make_app(self, name, strategy="single", kms_key_id=None, **fields):
        """Role lambda_<name> with a password, secret lambda/<name> holding
        it, and the binding.  Returns (arn, secret dict)."""
        role = "lambda_" + name
        password = new_password()
        self.sql('CREATE ROLE "%s" LOGIN PASSWORD %%s' % role, (scram_verifier(password),))
        value = {"engine": "postgres", "host": "127.0.0.1", "port": self.port,
                 "dbname": "postgres", "username": role, "password": password}
        value.update(fields)
        kw = {"KmsKeyId": kms_key_id} if kms_key_id else {}
        out = self.sm.create_secret(Name="lambda/" + name, SecretString=json.dumps(value), **kw)
        self.sql("SELECT secretsmgr_manage(%s, %s, %s)", ("lambda/" + name, role, strategy))
        self.assertTrue(self.login(role, password))
        return out["ARN"], value

    def start_rotation(self, arn, token=None):
        token = token or str(uuid.uuid4())
        out = self.sm.rotate_secret(SecretId=arn, ClientRequestToken=token,
                                    RotationLambdaARN=LAMBDA_ARN,
                                    RotationRules={"AutomaticallyAfterDays": 30})
        self.assertEqual(out["VersionId"], token)
        return token

    def step(self, arn, token, step):
        return rotation.lambda_handler({"Step": step, "SecretId": arn,
                                        "ClientRequestToken": token}, None)

    def rotate_all(self, arn, token=None):
        token = self.start_rotation(arn, token)
        for step in rotation.STEPS:
            self.step(arn, token, step)
        return token

    def value(self, arn, stage="AWSCURRENT", version=None):
        kw = {"SecretId": arn, "VersionStage": stage}
        if version:
            kw["VersionId"] = version
        return json.loads(self.sm.get_secret_value(**kw)["SecretString"])

    def stages(self, name):
        """{version id: "LABEL1,LABEL2"} from smctl stage."""
        out = {}
        for line in smctl("stage", name).splitlines():
            vid, labels = line.split()
            out[vid] = labels
        return out

    def login(self, user, password, port=None):
        """A real libpq login over TCP with SCRAM; False if refused."""
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=port or self.port, user=user,
                                    password=password, dbname="postgres",
                                    sslmode="disable", connect_timeout=10)
        except psycopg2.OperationalError as e:
            self.assertIn("password authentication failed", str(e))
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user")
                self.assertEqual(cur.fetchone()[0], user)
        finally:
            conn.close()
        return True

    def history(self, name):
        return self.sql("SELECT step, status FROM secretsmgr_rotation_history "
                        "WHERE secret_id IN (%s, %s) AND via = 'lambda' ORDER BY id",
                        ("lambda/" + name, self.sm.describe_secret(
                            SecretId="lambda/" + name)["ARN"]))


class RotationTests(LambdaTestCase):

    def test_four_steps_end_to_end(self):
        arn, old = self.make_app("e2e")
        old_version = list(self.stages("lambda/e2e"))[0]
        token = self.start_rotation(arn)
        self.assertEqual(self.stages("lambda/e2e"),
                         {old_version: "AWSCURRENT", token: "AWSPENDING"})

        self.step(arn, token, "createSecret")
        new = self.value(arn, "AWSPENDING", token)
        self.assertEqual(new["username"], "lambda_e2e")
        self.assertEqual({k: v for k, v in new.items() if k != "password"},
                         {k: v for k, v in old.items() if k != "password"})
        self.assertEqual(len(new["password"]), 32)
        self.assertFalse(EXCLUDED & set(new["password"]))
        self.assertNotEqual(new["password"], old["password"])

        self.step(arn, token, "setSecret")
        self.assertTrue(self.login("lambda_e2e", new["password"]))
        self.assertFalse(self.login("lambda_e2e", old["password"]))
        self.step(arn, token, "testSecret")
        self.step(arn, token, "finishSecret")

        self.assertEqual(self.stages("lambda/e2e"),
                         {old_version: "AWSPREVIOUS", token: "AWSCURRENT,AWSPENDING"})
        current = self.value(arn)
        self.assertEqual(current["password"], new["password"])
        self.assertTrue(self.login("lambda_e2e", current["password"]))
        self.assertFalse(self.login("lambda_e2e", old["password"]))
        self.assertEqual(self.history("e2e"), [("setSecret", "succeeded"),
                                               ("testSecret", "succeeded")])

    def test_each_step_retried_is_harmless(self):
        arn, old = self.make_app("retry")
        old_version = list(self.stages("lambda/retry"))[0]
        token = self.start_rotation(arn)
        self.step(arn, token, "createSecret")
        first = self.value(arn, "AWSPENDING", token)
        self.step(arn, token, "createSecret")
        self.assertEqual(self.value(arn, "AWSPENDING", token), first)
        for step in ("setSecret", "setSecret", "testSecret", "testSecret"):
            self.step(arn, token, step)
            self.assertTrue(self.login("lambda_retry", first["password"]))
        # a repeated setSecret changed nothing: the database said so
        self.assertEqual(self.history("retry"),
                         [("setSecret", "succeeded"), ("setSecret", "noop"),
                          ("testSecret", "succeeded"), ("testSecret", "succeeded")])
        self.step(arn, token, "finishSecret")
        after = self.stages("lambda/retry")
        # every step again, after the rotation finished: nothing to do
        for step in rotation.STEPS:
            self.step(arn, token, step)
        self.assertEqual(self.stages("lambda/retry"), after)
        self.assertEqual(after, {old_version: "AWSPREVIOUS", token: "AWSCURRENT,AWSPENDING"})
        self.assertEqual(len(self.history("retry")), 4)
        self.assertTrue(self.login("lambda_retry", self.value(arn)["password"]))
        self.assertFalse(self.login("lambda_retry", old["password"]))

    def test_set_secret_without_pending_value(self):
        arn, old = self.make_app("nopending")
        old_version = list(self.stages("lambda/nopending"))[0]
        # RotateSecret's placeholder, createSecret never ran
        token = self.start_rotation(arn)
        with self.assertRaisesRegex(rotation.RotationError, "createSecret has not run"):
            self.step(arn, token, "setSecret")
        with self.assertRaisesRegex(rotation.RotationError, "createSecret has not run"):
            self.step(arn, token, "testSecret")
        self.assertEqual(self.stages("lambda/nopending"),
                         {old_version: "AWSCURRENT", token: "AWSPENDING"})
        self.assertTrue(self.login("lambda_nopending", old["password"]))
        self.assertEqual(self.history("nopending"), [])
        # the database refuses it too, should the function's own check go
        with self.assertRaisesRegex(psycopg2.Error, token):
            self.sql("SELECT secretsmgr_set_secret(%s, %s)", (arn, token))
        self.assertTrue(self.login("lambda_nopending", old["password"]))
        # a token that was never staged at all
        other = str(uuid.uuid4())
        for step in rotation.STEPS:
            with self.assertRaisesRegex(rotation.RotationError, "has no stage for rotation"):
                self.step(arn, other, step)
        self.assertEqual(self.stages("lambda/nopending"),
                         {old_version: "AWSCURRENT", token: "AWSPENDING"})
        self.assertTrue(self.login("lambda_nopending", old["password"]))
        # Secrets Manager's retry of the whole rotation then succeeds
        for step in rotation.STEPS:
            self.step(arn, token, step)
        self.assertEqual(self.stages("lambda/nopending"),
                         {old_version: "AWSPREVIOUS", token: "AWSCURRENT,AWSPENDING"})
        self.assertTrue(self.login("lambda_nopending", self.value(arn)["password"]))

    def test_rotation_not_enabled(self):
        arn, old = self.make_app("disabled")
        old_version = list(self.stages("lambda/disabled"))[0]
        # an AWSPENDING version put by hand on a secret never set to rotate
        token = str(uuid.uuid4())
        pending = dict(old, password=new_password())
        self.sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                 SecretString=json.dumps(pending),
                                 VersionStages=["AWSPENDING"])
        self.assertFalse(self.sm.describe_secret(SecretId=arn).get("RotationEnabled"))
        for step in rotation.STEPS:
            with self.assertRaisesRegex(rotation.RotationError, "not enabled for rotation"):
                self.step(arn, token, step)
        self.assertEqual(self.stages("lambda/disabled"),
                         {old_version: "AWSCURRENT", token: "AWSPENDING"})
        self.assertTrue(self.login("lambda_disabled", old["password"]))
        self.assertFalse(self.login("lambda_disabled", pending["password"]))
        # rotation turned off in the middle of one (CancelRotateSecret)
        self.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING",
                                            RemoveFromVersionId=token)
        token2 = self.start_rotation(arn)
        self.step(arn, token2, "createSecret")
        self.sm.cancel_rotate_secret(SecretId=arn)
        with self.assertRaisesRegex(rotation.RotationError, "not enabled for rotation"):
            self.step(arn, token2, "setSecret")
        self.assertEqual(self.stages("lambda/disabled"),
                         {old_version: "AWSCURRENT", token2: "AWSPENDING"})
        self.assertTrue(self.login("lambda_disabled", old["password"]))
        self.assertEqual(self.history("disabled"), [])

    def test_token_not_pending(self):
        arn, old = self.make_app("notpending")
        first_version = list(self.stages("lambda/notpending"))[0]
        token = self.rotate_all(arn)
        current = self.value(arn)
        # the old version (AWSPREVIOUS) is not AWSPENDING
        for step in rotation.STEPS:
            with self.assertRaisesRegex(rotation.RotationError, "not set as AWSPENDING"):
                self.step(arn, first_version, step)
        # nor is a version with a label of its own
        custom = str(uuid.uuid4())
        self.sm.put_secret_value(SecretId=arn, ClientRequestToken=custom,
                                 SecretString=json.dumps(dict(old, password=new_password())),
                                 VersionStages=["CUSTOM"])
        with self.assertRaisesRegex(rotation.RotationError, "not set as AWSPENDING"):
            self.step(arn, custom, "setSecret")
        self.assertEqual(self.stages("lambda/notpending"),
                         {first_version: "AWSPREVIOUS", token: "AWSCURRENT,AWSPENDING",
                          custom: "CUSTOM"})
        self.assertTrue(self.login("lambda_notpending", current["password"]))
        self.assertFalse(self.login("lambda_notpending", old["password"]))

    def test_database_down(self):
        down = closed_port()
        arn, old = self.make_app("down", port=down)
        old_version = list(self.stages("lambda/down"))[0]
        token = self.start_rotation(arn)
        self.step(arn, token, "createSecret")       # no database needed
        pending = self.value(arn, "AWSPENDING", token)
        self.assertEqual(pending["port"], down)
        # not the administrator's port: refused unless the deployment allows it
        with self.assertRaisesRegex(rotation.RotationError, "not the administrator"):
            self.step(arn, token, "setSecret")
        os.environ["DB_ALLOWED_HOSTS"] = "127.0.0.1:%d, 127.0.0.1:%d" % (self.port, down)
        with self.assertRaises(psycopg2.OperationalError):
            self.step(arn, token, "setSecret")
        with self.assertRaises(psycopg2.OperationalError):
            self.step(arn, token, "testSecret")
        # finishSecret does not look at the database: Secrets Manager never
        # calls it after a failed testSecret
        self.assertEqual(self.stages("lambda/down"),
                         {old_version: "AWSCURRENT", token: "AWSPENDING"})
        self.assertTrue(self.login("lambda_down", old["password"]))
        self.assertFalse(self.login("lambda_down", pending["password"]))
        self.assertEqual(self.value(arn)["password"], old["password"])
        self.assertEqual(self.history("down"), [])

    def test_tls_verified_by_default(self):
        arn, old = self.make_app("tls")
        old_version = list(self.stages("lambda/tls"))[0]
        token = self.start_rotation(arn)
        self.step(arn, token, "createSecret")
        # the default is verify-full: a certificate signed by another CA
        # ends the connection before any credential is sent
        other_ca = os.path.join(os.environ["SM_WORK"], "other-ca.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", other_ca + ".key",
                        "-out", other_ca], check=True, capture_output=True)
        os.environ["DB_SSL_ROOT_CERT"] = other_ca
        for mode in (None, "verify-full", "verify-ca"):
            if mode:
                os.environ["DB_SSLMODE"] = mode
            with self.assertRaisesRegex(psycopg2.OperationalError, "certificate verify failed"):
                self.step(arn, token, "setSecret")
        os.environ["DB_SSLMODE"] = "prefer-nothing"
        with self.assertRaisesRegex(rotation.RotationError, "DB_SSLMODE"):
            self.step(arn, token, "setSecret")
        # without TLS, only libpq 16's require_auth can insist on SCRAM
        os.environ["DB_SSLMODE"] = "disable"
        if psycopg2.extensions.libpq_version() < 160000:
            with self.assertRaisesRegex(rotation.RotationError, "cannot insist on SCRAM-SHA-256"):
                self.step(arn, token, "setSecret")
        self.assertEqual(self.stages("lambda/tls"),
                         {old_version: "AWSCURRENT", token: "AWSPENDING"})
        self.assertTrue(self.login("lambda_tls", old["password"]))
        self.assertEqual(self.history("tls"), [])
        # require (no verification, no CA file) with channel binding, then
        # verify-full with the server's CA: both work
        os.environ["DB_SSLMODE"] = "require"
        os.environ.pop("DB_SSL_ROOT_CERT")
        self.step(arn, token, "setSecret")
        os.environ.pop("DB_SSLMODE")
        os.environ["DB_SSL_ROOT_CERT"] = os.path.join(os.environ["SM_WORK"], "server.crt")
        self.step(arn, token, "testSecret")
        self.assertTrue(self.login("lambda_tls", self.value(arn, "AWSPENDING", token)["password"]))

    def test_test_secret_before_set_secret_fails(self):
        arn, old = self.make_app("order")
        old_version = list(self.stages("lambda/order"))[0]
        token = self.start_rotation(arn)
        self.step(arn, token, "createSecret")
        with self.assertRaisesRegex(rotation.RotationError, "does not log in"):
            self.step(arn, token, "testSecret")
        self.assertEqual(self.stages("lambda/order"),
                         {old_version: "AWSCURRENT", token: "AWSPENDING"})
        self.assertTrue(self.login("lambda_order", old["password"]))
        self.assertEqual(self.history("order"), [("testSecret", "failed")])

    def test_test_login_toggle(self):
        arn, old = self.make_app("testlogin")
        v0 = list(self.stages("lambda/testlogin"))[0]
        os.environ["TEST_LOGIN"] = "true"
        token = self.rotate_all(arn)
        self.assertIn("testSecret: logged in as lambda_testlogin", LAMBDA_LOG.getvalue())
        self.assertTrue(self.login("lambda_testlogin", self.value(arn)["password"]))
        self.assertFalse(self.login("lambda_testlogin", old["password"]))
        self.assertEqual(self.stages("lambda/testlogin"),
                         {v0: "AWSPREVIOUS", token: "AWSCURRENT,AWSPENDING"})

    def test_master_arn_field_and_wrong_admin(self):
        # no MASTER_SECRET_ARN: the secret's masterarn field names the admin
        del os.environ["MASTER_SECRET_ARN"]
        arn, old = self.make_app("masterfield", masterarn=self.master_arn)
        v0 = list(self.stages("lambda/masterfield"))[0]
        os.environ["ROTATION_STRATEGY"] = "single"
        token = self.rotate_all(arn)
        self.assertTrue(self.login("lambda_masterfield", self.value(arn)["password"]))
        # neither: setSecret refuses before connecting anywhere
        arn2, old2 = self.make_app("noadmin")
        v2 = list(self.stages("lambda/noadmin"))[0]
        token2 = self.start_rotation(arn2)
        self.step(arn2, token2, "createSecret")
        with self.assertRaisesRegex(rotation.RotationError, "no admin secret"):
            self.step(arn2, token2, "setSecret")
        self.assertTrue(self.login("lambda_noadmin", old2["password"]))
        self.assertFalse(self.login("lambda_masterfield", old["password"]))
        self.assertEqual(self.stages("lambda/masterfield"),
                         {v0: "AWSPREVIOUS", token: "AWSCURRENT,AWSPENDING"})
        self.assertEqual(self.stages("lambda/noadmin"),
                         {v2: "AWSCURRENT", token2: "AWSPENDING"})

    def test_alternating_two_rotations(self):
        arn, first = self.make_app("alt", strategy="alternating", masterarn=self.master_arn)
        v0 = list(self.stages("lambda/alt"))[0]

        t1 = self.rotate_all(arn)
        one = self.value(arn)
        self.assertEqual(one["username"], "lambda_alt_clone")
        self.assertEqual(one["masterarn"], self.master_arn)
        self.assertEqual(self.stages("lambda/alt"),
                         {v0: "AWSPREVIOUS", t1: "AWSCURRENT,AWSPENDING"})
        self.assertTrue(self.login("lambda_alt_clone", one["password"]))
        self.assertTrue(self.login("lambda_alt", first["password"]))   # untouched

        t2 = self.rotate_all(arn)
        two = self.value(arn)
        self.assertEqual(two["username"], "lambda_alt")
        self.assertEqual(self.stages("lambda/alt"),
                         {t1: "AWSPREVIOUS", t2: "AWSCURRENT,AWSPENDING"})
        # both users log in with their newest passwords, not the old ones
        self.assertTrue(self.login("lambda_alt", two["password"]))
        self.assertTrue(self.login("lambda_alt_clone", one["password"]))
        self.assertFalse(self.login("lambda_alt", first["password"]))
        self.assertEqual(self.value(arn, "AWSPREVIOUS")["username"], "lambda_alt_clone")
        self.assertEqual([s for s, _ in self.history("alt")],
                         ["setSecret", "testSecret", "setSecret", "testSecret"])

    def test_alternate_username(self):
        self.assertEqual(rotation.alternate_username("app"), "app_clone")
        self.assertEqual(rotation.alternate_username("app_clone"), "app")
        self.assertEqual(rotation.alternate_username("x" * 57), "x" * 57 + "_clone")
        with self.assertRaises(rotation.RotationError):
            rotation.alternate_username("x" * 58)


class FakeServer:
    """A TCP listener standing in for a database server: it counts the
    connections it gets; with cleartext=True it speaks TLS and asks for a
    cleartext password, and records whether a password message came."""

    def __init__(self, host="127.0.0.1", cleartext=False):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(5)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.cleartext = cleartext
        self.connections = 0
        self.password_sent = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                if self.cleartext:
                    self.ask_cleartext(conn)
            except (OSError, ssl.SSLError, struct.error):
                pass
            finally:
                conn.close()

    def ask_cleartext(self, conn):
        conn.settimeout(5)
        length, code = struct.unpack("!II", conn.recv(8))
        if code != 80877103:                # SSLRequest
            return
        conn.sendall(b"S")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        work = os.environ["SM_WORK"]
        ctx.load_cert_chain(os.path.join(work, "server.crt"), os.path.join(work, "server.key"))
        tls = ctx.wrap_socket(conn, server_side=True)
        (length,) = struct.unpack("!I", tls.recv(4))
        tls.recv(length - 4)                # the startup message
        try:
            tls.sendall(b"R" + struct.pack("!II", 8, 3))   # AuthenticationCleartextPassword
            reply = tls.recv(1)
            self.password_sent = reply == b"p"
        finally:
            tls.close()

    def close(self):
        self.sock.close()


class SteeringTests(LambdaTestCase):
    """Nothing a secret's fields say steers the administrator's credentials."""

    def planted(self, dbname):
        """Functions an owner of dbname plants ahead of secretsmgr's, with the
        database's search_path pointing at them: run as the administrator,
        they would make their owner CREATEROLE and fake a passing test."""
        conn = psycopg2.connect(host=os.environ["PGHOST"], port=os.environ["PGPORT"],
                                user=os.environ.get("PGUSER", "postgres"), dbname=dbname)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("""
                CREATE SCHEMA m AUTHORIZATION lambda_evil;
                CREATE TABLE m.ran (who text, fn text);
                GRANT ALL ON SCHEMA m TO PUBLIC;
                GRANT ALL ON m.ran TO PUBLIC;
                CREATE FUNCTION m.secretsmgr_set_secret(text, text) RETURNS text
                  LANGUAGE plpgsql AS $$BEGIN
                    INSERT INTO m.ran VALUES (current_user, 'set');
                    ALTER ROLE lambda_evil CREATEROLE;
                    RETURN 'planted'; END$$;
                CREATE FUNCTION m.secretsmgr_test_secret(text, text) RETURNS boolean
                  LANGUAGE plpgsql AS $$BEGIN
                    INSERT INTO m.ran VALUES (current_user, 'test'); RETURN true; END$$;
                ALTER FUNCTION m.secretsmgr_set_secret(text, text) OWNER TO lambda_evil;
                ALTER FUNCTION m.secretsmgr_test_secret(text, text) OWNER TO lambda_evil;
                ALTER TABLE m.ran OWNER TO lambda_evil;
            """)
            cur.execute("ALTER DATABASE %s SET search_path = m, public" % dbname)
        return conn

    def ran(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT who, fn FROM m.ran")
            return cur.fetchall()

    def evil_createrole(self):
        return self.sql("SELECT rolcreaterole FROM pg_roles WHERE rolname = 'lambda_evil'")[0][0]

    def test_planted_schema_and_search_path(self):
        self.sql("CREATE ROLE lambda_evil LOGIN")
        self.sql("CREATE DATABASE lambda_evil OWNER lambda_evil")
        evil = self.planted("lambda_evil")
        here = self.planted("postgres")
        self.addCleanup(self.sql, "ALTER DATABASE postgres RESET search_path")
        self.addCleanup(self.sql, "DROP SCHEMA m CASCADE")
        self.addCleanup(here.close)
        self.addCleanup(evil.close)
        # the secret names the attacker's database; the deployment's is postgres
        arn, old = self.make_app("hijack", dbname="lambda_evil")
        v0 = list(self.stages("lambda/hijack"))[0]
        token = self.rotate_all(arn)
        new = self.value(arn)
        self.assertEqual(self.ran(evil), [])
        self.assertEqual(self.ran(here), [])
        self.assertFalse(self.evil_createrole())
        # the real functions ran, in the deployment's database
        self.assertTrue(self.login("lambda_hijack", new["password"]))
        self.assertFalse(self.login("lambda_hijack", old["password"]))
        self.assertEqual(self.history("hijack"), [("setSecret", "succeeded"),
                                                  ("testSecret", "succeeded")])
        self.assertEqual(self.stages("lambda/hijack"),
                         {v0: "AWSPREVIOUS", token: "AWSCURRENT,AWSPENDING"})
        # a deployment naming a database without the extension is refused
        # before any function is called there
        os.environ["DB_NAME"] = "lambda_evil"
        token2 = self.start_rotation(arn)
        self.step(arn, token2, "createSecret")
        with self.assertRaisesRegex(rotation.RotationError, "secretsmgr is not installed in "
                                                            "database lambda_evil"):
            self.step(arn, token2, "setSecret")
        with self.assertRaisesRegex(rotation.RotationError, "not installed"):
            self.step(arn, token2, "testSecret")
        self.assertEqual(self.ran(evil), [])
        self.assertFalse(self.evil_createrole())
        self.assertTrue(self.login("lambda_hijack", new["password"]))
        # nor is a version of the extension the function does not know
        os.environ["DB_NAME"] = "postgres"
        self.sql("UPDATE pg_extension SET extversion = '0.9' WHERE extname = 'secretsmgr'")
        try:
            with self.assertRaisesRegex(rotation.RotationError, "secretsmgr 0.9 in database "
                                                                "postgres is not a version"):
                self.step(arn, token2, "setSecret")
        finally:
            self.sql("UPDATE pg_extension SET extversion = '1.0' WHERE extname = 'secretsmgr'")
        self.assertTrue(self.login("lambda_hijack", new["password"]))
        self.step(arn, token2, "setSecret")
        self.step(arn, token2, "testSecret")
        self.step(arn, token2, "finishSecret")
        self.assertEqual(self.ran(here), [])
        self.assertTrue(self.login("lambda_hijack", self.value(arn)["password"]))

    def test_db_name_required(self):
        arn, old = self.make_app("nodbname")
        token = self.start_rotation(arn)
        self.step(arn, token, "createSecret")
        del os.environ["DB_NAME"]
        for step in ("setSecret", "testSecret"):
            with self.assertRaisesRegex(rotation.RotationError, "DB_NAME must name the database"):
                self.step(arn, token, step)
        self.assertTrue(self.login("lambda_nodbname", old["password"]))
        self.assertEqual(self.history("nodbname"), [])

    def test_host_must_be_the_administrators(self):
        other = FakeServer("127.0.0.2")
        same_host = FakeServer("127.0.0.1")
        self.addCleanup(other.close)
        self.addCleanup(same_host.close)
        rotations = {}
        for name, server in (("otherhost", other), ("otherport", same_host)):
            arn, old = self.make_app(name, host=server.host, port=server.port)
            token = self.start_rotation(arn)
            rotations[name] = (arn, token)
            self.step(arn, token, "createSecret")
            for step in ("setSecret", "testSecret"):
                with self.assertRaisesRegex(rotation.RotationError,
                                            "names server %s:%d, which is not the administrator"
                                            % (server.host, server.port)):
                    self.step(arn, token, step)
            self.assertEqual(server.connections, 0)
            self.assertTrue(self.login("lambda_" + name, old["password"]))
        # the deployment's allow-list lets the function go there
        os.environ["DB_ALLOWED_HOSTS"] = "%s:%d" % (other.host, other.port)
        arn, token = rotations["otherhost"]
        with self.assertRaises(psycopg2.OperationalError):
            self.step(arn, token, "setSecret")
        self.assertEqual(other.connections, 1)
        self.assertEqual(same_host.connections, 0)

    def test_cleartext_password_request_refused(self):
        server = FakeServer("127.0.0.1", cleartext=True)
        self.addCleanup(server.close)
        arn, old = self.make_app("cleartext", port=server.port)
        token = self.start_rotation(arn)
        self.step(arn, token, "createSecret")
        os.environ["DB_ALLOWED_HOSTS"] = "127.0.0.1:%d" % server.port
        for mode in ("require", "verify-full"):
            os.environ["DB_SSLMODE"] = mode
            with self.assertRaisesRegex(psycopg2.OperationalError, "channel binding"):
                self.step(arn, token, "setSecret")
        self.assertEqual(server.connections, 2)
        self.assertFalse(server.password_sent)

    def test_masterarn_only_from_awscurrent(self):
        # an administrator secret of someone else's, on the same server
        evil_pw = new_password()
        self.sql("CREATE ROLE lambda_evil_admin LOGIN PASSWORD %s", (scram_verifier(evil_pw),))
        evil = self.sm.create_secret(Name="lambda/evil-admin", SecretString=json.dumps(
            {"host": "127.0.0.1", "port": self.port, "username": "lambda_evil_admin",
             "password": evil_pw}))["ARN"]
        del os.environ["MASTER_SECRET_ARN"]
        os.environ["ROTATION_STRATEGY"] = "single"
        arn, old = self.make_app("mfield", masterarn=self.master_arn)
        token = self.start_rotation(arn)
        # a writer of the secret puts the pending version, naming its admin
        pending = dict(old, password=new_password(), masterarn=evil)
        self.sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                 SecretString=json.dumps(pending), VersionStages=["AWSPENDING"])
        for step in ("setSecret", "testSecret"):
            with self.assertRaisesRegex(rotation.RotationError, "different masterarn"):
                self.step(arn, token, step)
        self.assertTrue(self.login("lambda_mfield", old["password"]))
        self.assertEqual(self.history("mfield"), [])


class IamPolicyTests(LambdaTestCase):
    """The Lambda's four steps under exactly secretsmgr_iam_policy('lambda'),
    the database under exactly secretsmgr_iam_policy('database'), against
    the emulator enforcing them."""

    KEY, SECRET = "AKIDLAMBDAROTATION", "LAMBDASECRETKEY/secretsmgr+EXAMPLE"

    def attach(self, akid, policy, secret=None):
        body = {"access_key": akid, "policy": policy}
        if secret:
            body["secret_key"] = secret
        req = urllib.request.Request(os.environ["SM_EMULATOR_URL"] + "/_admin/iam-policy",
                                     data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def denials(self):
        calls = json.loads(smctl("calls"))
        return [e for e in calls["recent"] if e.get("error") == "AccessDeniedException"]

    def as_lambda(self):
        saved = (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = \
            self.KEY, self.SECRET
        # boto3's default session keeps the credentials it found first
        boto3.DEFAULT_SESSION = None
        rotation._clients.clear()

        def restore():
            os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = saved
            boto3.DEFAULT_SESSION = None
            rotation._clients.clear()
            self.attach(self.KEY, None, self.SECRET)
            self.attach(ACCESS_KEY, None)
        self.addCleanup(restore)

    def test_four_steps_under_the_generated_policy(self):
        arn, old = self.make_app("iam", kms_key_id=KMS_KEY)
        alt, alt_old = self.make_app("iamalt", strategy="alternating", masterarn=self.master_arn)
        self.as_lambda()
        policy = self.sql("SELECT secretsmgr_iam_policy('lambda', %s)", (self.master_arn,))[0][0]
        db_policy = self.sql("SELECT secretsmgr_iam_policy('database')")[0][0]
        self.assertIn(KMS_KEY, json.dumps(policy))
        tokens = [self.start_rotation(arn), self.start_rotation(alt)]
        smctl("reset")
        self.attach(self.KEY, policy, self.SECRET)
        self.attach(ACCESS_KEY, db_policy)
        for secret, token in zip((arn, alt), tokens):
            for step in rotation.STEPS:
                self.step(secret, token, step)
        self.assertEqual(self.denials(), [])
        self.assertTrue(self.login("lambda_iam", self.value(arn)["password"]))
        self.assertFalse(self.login("lambda_iam", old["password"]))
        self.assertTrue(self.login("lambda_iamalt_clone", self.value(alt)["password"]))
        self.assertEqual(self.history("iam"), [("setSecret", "succeeded"),
                                               ("testSecret", "succeeded")])

        # the policy generated before (no statement for the administrator
        # secret) stops setSecret
        self.attach(self.KEY, None)
        self.attach(ACCESS_KEY, None)
        token = self.start_rotation(arn)
        before = dict(policy, Statement=[s for s in policy["Statement"]
                                         if s["Sid"] != "SecretsmgrReadTheAdminSecret"])
        self.attach(self.KEY, before, self.SECRET)
        self.step(arn, token, "createSecret")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.step(arn, token, "setSecret")
        self.assertEqual(e.exception.response["Error"]["Code"], "AccessDeniedException")
        self.assertIn(self.master_arn, e.exception.response["Error"]["Message"])
        self.attach(self.KEY, policy)
        for step in ("setSecret", "testSecret", "finishSecret"):
            self.step(arn, token, step)
        self.assertTrue(self.login("lambda_iam", self.value(arn)["password"]))

    def test_four_steps_under_the_template_policy(self):
        """What lambda/template.yaml grants is enough, and binds: only the
        secret whose rotation function is this one."""
        arn, old = self.make_app("tpl", kms_key_id=KMS_KEY)
        self.as_lambda()
        policy = template_policy(arn, self.master_arn, KMS_KEY, LAMBDA_ARN)
        self.assertIn("secretsmanager:resource/AllowRotationLambdaArn", json.dumps(policy))
        token = self.start_rotation(arn)
        smctl("reset")
        self.attach(self.KEY, policy, self.SECRET)
        for step in rotation.STEPS:
            self.step(arn, token, step)
        self.assertEqual(self.denials(), [])
        self.assertTrue(self.login("lambda_tpl", self.value(arn)["password"]))
        self.assertFalse(self.login("lambda_tpl", old["password"]))
        # the same secret, rotated by another function: nothing allowed
        self.attach(self.KEY, None)
        token = str(uuid.uuid4())
        self.sm.rotate_secret(SecretId=arn, ClientRequestToken=token,
                              RotationLambdaARN=LAMBDA_ARN + "-other",
                              RotationRules={"AutomaticallyAfterDays": 30})
        self.attach(self.KEY, policy)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.step(arn, token, "createSecret")
        self.assertEqual(e.exception.response["Error"]["Code"], "AccessDeniedException")
        self.assertIn("secretsmanager:DescribeSecret", e.exception.response["Error"]["Message"])


def template_policy(secret_arn, master_arn, kms_key_arn, function_arn):
    """The statements lambda/template.yaml grants the function's role (its
    inline policy and its AWS::IAM::Policy resources), with the parameters,
    the region and the function's ARN filled in; the AWS managed VPC policy
    (logs and network interfaces) is left out."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import check_template
    tpl = check_template.load(os.path.join(ROOT, "lambda", "template.yaml"))
    values = {"SecretArn": secret_arn, "MasterSecretArn": master_arn,
              "KmsKeyArn": kms_key_arn, "AWS::Region": "us-east-1"}

    def resolve(node):
        if isinstance(node, dict):
            if list(node) == ["Ref"]:
                return values[node["Ref"]]
            if list(node) == ["Fn::GetAtt"]:
                assert node["Fn::GetAtt"] == ["RotationFunction", "Arn"], node
                return function_arn
            if list(node) == ["Fn::Sub"]:
                return node["Fn::Sub"].replace("${AWS::Region}", "us-east-1")
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    statements = []
    for name, res in tpl["Resources"].items():
        props = res.get("Properties") or {}
        docs = [p["PolicyDocument"] for p in props.get("Policies") or []]
        if res["Type"] == "AWS::IAM::Policy":
            docs.append(props["PolicyDocument"])
        for doc in docs:
            statements.extend(resolve(doc["Statement"]))
    return {"Version": "2012-10-17", "Statement": statements}


class LeakCheck(LambdaTestCase):

    def all_values(self):
        """Every value the emulator holds or has held, with the password
        field of each JSON value: smctl secret-values, plus every version
        of every secret as smctl show gives it (secret-values misses the
        values that fill RotateSecret's placeholders), plus the passwords
        the tests made."""
        values = set(v for v in smctl("secret-values").splitlines() if v)
        names = [s["Name"] for page in self.sm.get_paginator("list_secrets").paginate()
                 for s in page["SecretList"]]
        self.assertIn("lambda/e2e", names)
        for name in names:
            for v in json.loads(smctl("show", name))["Versions"]:
                if "SecretString" in v:
                    values.add(v["SecretString"])
                    try:
                        values.add(json.loads(v["SecretString"])["password"])
                    except (ValueError, KeyError, TypeError):
                        pass
        values.update(TEST_PASSWORDS)
        return sorted(v for v in values if len(v) >= 8)

    def test_no_secret_value_in_logs(self):
        values = self.all_values()
        # the master password, every initial and every generated password
        self.assertGreater(len(values), 40)
        generated = [v for v in values if len(v) == 32 and not v.startswith("Lambda-Test-")]
        self.assertGreater(len(generated), 10)
        with open(os.environ["SM_PG_LOG"], errors="replace") as f:
            server_log = f.read()
        logs = {"server log": server_log, "the Lambda's log": LAMBDA_LOG.getvalue()}
        if os.environ.get("SM_WORK"):
            with open(os.path.join(os.environ["SM_WORK"], "lambda.log"), "w") as f:
                f.write(logs["the Lambda's log"])
        self.assertIn("secretsmgr_set_secret", logs["server log"])
        self.assertIn("finishSecret", logs["the Lambda's log"])
        for what, text in logs.items():
            leaked = [v for v in values if v in text]
            self.assertEqual(len(leaked), 0, "%d secret values in %s" % (len(leaked), what))


def load_tests(loader, tests, pattern):
    # the leak check runs last, after every rotation
    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(RotationTests))
    suite.addTests(loader.loadTestsFromTestCase(SteeringTests))
    suite.addTests(loader.loadTestsFromTestCase(IamPolicyTests))
    suite.addTests(loader.loadTestsFromTestCase(LeakCheck))
    return suite


if __name__ == "__main__":
    unittest.main()
