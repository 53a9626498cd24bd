#!/usr/bin/python3
"""Self-test of the Secrets Manager emulator.

Run: /usr/bin/python3 test/emulator/test_emulator.py [-v]

Starts smemu.py on port 0 and checks that botocore-signed requests pass,
that tampered ones fail the way AWS fails them, the version/staging-label
semantics, the credential endpoints, the fault orders and smctl.
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid
import warnings

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
SMEMU = os.path.join(HERE, "smemu.py")
SMCTL = os.path.join(HERE, "smctl")
PY = "/usr/bin/python3"
AKID = "AKIDSECRETSMGRTEST"
SECRET = "TESTSECRETKEY/secretsmgr+EXAMPLE"
REGION = "us-east-1"
ECS_TOKEN = "test-ecs-token-123"


# --- an independent SigV4 signer (hand-written, checked against FACTS.md) ----

def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4(method, host, path, headers, body, akid, secret, amz_date,
          region=REGION, service="secretsmanager", signed=None):
    """Returns the Authorization header value.  headers: dict name->value,
    must contain every header to sign except Host."""
    hdrs = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    hdrs["host"] = host
    names = sorted(signed if signed is not None else hdrs)
    canon = "".join("%s:%s\n" % (n, hdrs[n]) for n in names)
    creq = "\n".join([method, path, "", canon, ";".join(names),
                      hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    k = _hmac(_hmac(_hmac(k, region), service), "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
            "Signature=%s" % (akid, scope, ";".join(names), sig))


def amz_now(offset=0):
    return datetime.datetime.fromtimestamp(
        time.time() + offset, datetime.timezone.utc).strftime(
            "%Y%m%dT%H%M%SZ")


class Emu:
    """One emulator subprocess."""

    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="smemu-test.")
        self.port_file = os.path.join(self.dir, "port")
        self.log = os.path.join(self.dir, "log")
        self.proc = subprocess.Popen(
            [PY, SMEMU, "--port", "0", "--port-file", self.port_file,
             "--log", self.log, "--parent-pid", str(os.getpid())] +
            list(extra))
        deadline = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("emulator did not start")
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.url = "http://127.0.0.1:%d" % self.port
        self.host = "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, akid=AKID, secret=SECRET, token=None, region=REGION,
               **cfg):
        return boto3.client(
            "secretsmanager", endpoint_url=self.url, region_name=region,
            aws_access_key_id=akid, aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(retries={"total_max_attempts": 1,
                                   "mode": "standard"}, **cfg))

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/_admin/" + path, data=data,
                                     method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def raw(self, op, payload, akid=AKID, secret=SECRET, amz_date=None,
            body_override=None, token=None, signed=None, extra=None,
            auth=None, conn=None, target=None, region=REGION):
        """A request signed by the hand-written signer; returns
        (status, headers, parsed-or-raw body)."""
        body = json.dumps(payload).encode()
        amz_date = amz_date or amz_now()
        headers = {"Content-Type": "application/x-amz-json-1.1",
                   "X-Amz-Target": target or "secretsmanager." + op,
                   "X-Amz-Date": amz_date}
        if token is not None:
            headers["X-Amz-Security-Token"] = token
        if auth is None:
            auth = sigv4("POST", self.host, "/", headers, body, akid, secret,
                         amz_date, signed=signed, region=region)
        if auth is not False:
            headers["Authorization"] = auth
        headers.update(extra or {})
        send = body_override if body_override is not None else body
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port,
                                                  timeout=10)
        try:
            conn.request("POST", "/", body=send, headers=headers)
            r = conn.getresponse()
            data = r.read()
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = data
            return r.status, dict(r.getheaders()), parsed
        finally:
            if own:
                conn.close()


EMU = None


def setUpModule():
    global EMU
    # boto3 clients keep pooled sockets open until collected
    warnings.filterwarnings("ignore", category=ResourceWarning)
    EMU = Emu("--ecs-token", ECS_TOKEN)


def tearDownModule():
    EMU.stop()


def code(exc):
    return exc.exception.response["Error"]["Code"]


class Base(unittest.TestCase):
    def setUp(self):
        EMU.admin("POST", "reset", {"state": True})
        self.c = EMU.client()

    def token(self):
        return str(uuid.uuid4())


class TestSigner(unittest.TestCase):
    def test_known_answer(self):
        """The test's own signer reproduces FACTS.md's Secrets Manager case,
        so agreeing with it is an independent check of botocore's."""
        auth = sigv4(
            "POST", "secretsmanager.us-east-1.amazonaws.com", "/",
            {"Content-Type": "application/x-amz-json-1.1",
             "X-Amz-Target": "secretsmanager.GetSecretValue",
             "X-Amz-Date": "20150830T123600Z"},
            b'{"SecretId":"MyTestSecret"}', "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z")
        self.assertTrue(auth.endswith(
            "Signature=850e2e7bf5d9a27ceed85ab70fabb682bb6868d1dffca441f17dd"
            "9728b0f9786"), auth)


class TestSignature(Base):
    def test_boto3_signed_passes(self):
        self.c.create_secret(Name="sig/ok", SecretString="v1")
        r = self.c.get_secret_value(SecretId="sig/ok")
        self.assertEqual(r["SecretString"], "v1")
        self.assertTrue(r["ResponseMetadata"]["HTTPHeaders"]
                        .get("x-amzn-requestid"))

    def test_hand_signed_passes(self):
        EMU.admin("POST", "secret", {"Name": "sig/raw", "SecretString": "v"})
        st, _h, body = EMU.raw("GetSecretValue", {"SecretId": "sig/raw"})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["SecretString"], "v")

    def test_wrong_secret_key(self):
        with self.assertRaises(ClientError) as e:
            EMU.client(secret="not-the-secret").list_secrets()
        self.assertEqual(code(e), "InvalidSignatureException")
        self.assertEqual(e.exception.response["ResponseMetadata"]
                         ["HTTPStatusCode"], 403)
        self.assertIn("signature we calculated does not match",
                      e.exception.response["Error"]["Message"])

    def test_unknown_access_key(self):
        st, _h, body = EMU.raw("ListSecrets", {}, akid="AKIDUNKNOWN000000")
        self.assertEqual((st, body["__type"]),
                         (403, "UnrecognizedClientException"))

    def test_stale_date(self):
        st, _h, body = EMU.raw("ListSecrets", {}, amz_date=amz_now(-600))
        self.assertEqual((st, body["__type"]),
                         (403, "InvalidSignatureException"))
        self.assertTrue(body["message"].startswith("Signature expired"))
        st, _h, body = EMU.raw("ListSecrets", {}, amz_date=amz_now(600))
        self.assertEqual((st, body["__type"]),
                         (403, "InvalidSignatureException"))
        st, _h, body = EMU.raw("ListSecrets", {}, amz_date=amz_now(-200))
        self.assertEqual(st, 200, body)

    def test_date_header_changed_after_signing(self):
        auth = sigv4("POST", EMU.host, "/",
                     {"Content-Type": "application/x-amz-json-1.1",
                      "X-Amz-Target": "secretsmanager.ListSecrets",
                      "X-Amz-Date": amz_now(-5)}, b"{}", AKID, SECRET,
                     amz_now(-5))
        st, _h, body = EMU.raw("ListSecrets", {}, auth=auth,
                               amz_date=amz_now())
        self.assertEqual((st, body["__type"]),
                         (403, "InvalidSignatureException"))

    def test_body_changed_after_signing(self):
        EMU.admin("POST", "secret", {"Name": "a", "SecretString": "x"})
        EMU.admin("POST", "secret", {"Name": "b", "SecretString": "y"})
        st, _h, body = EMU.raw("GetSecretValue", {"SecretId": "a"},
                               body_override=b'{"SecretId": "b"}')
        self.assertEqual((st, body["__type"]),
                         (403, "InvalidSignatureException"))
        self.assertEqual(EMU.admin("GET", "calls")["calls"], {})

    def test_unsigned_target(self):
        st, _h, body = EMU.raw(
            "ListSecrets", {},
            signed=["content-type", "host", "x-amz-date"])
        self.assertEqual((st, body["__type"]),
                         (403, "InvalidSignatureException"))

    def test_target_changed_after_signing(self):
        EMU.admin("POST", "secret", {"Name": "t", "SecretString": "x"})
        amz = amz_now()
        auth = sigv4("POST", EMU.host, "/",
                     {"Content-Type": "application/x-amz-json-1.1",
                      "X-Amz-Target": "secretsmanager.DescribeSecret",
                      "X-Amz-Date": amz}, b'{"SecretId": "t"}', AKID, SECRET,
                     amz)
        st, _h, body = EMU.raw("GetSecretValue", {"SecretId": "t"}, auth=auth,
                               amz_date=amz)
        self.assertEqual((st, body["__type"]),
                         (403, "InvalidSignatureException"))

    def test_wrong_region_scope(self):
        st, _h, body = EMU.raw("ListSecrets", {}, region="eu-west-1")
        self.assertEqual((st, body["__type"]),
                         (403, "InvalidSignatureException"))

    def test_missing_and_garbled_authorization(self):
        st, _h, body = EMU.raw("ListSecrets", {}, auth=False)
        self.assertEqual((st, body["__type"]),
                         (403, "MissingAuthenticationTokenException"))
        st, _h, body = EMU.raw("ListSecrets", {},
                               auth="AWS4-HMAC-SHA256 garbage")
        self.assertEqual((st, body["__type"]), (403, "IncompleteSignature"))
        st, _h, body = EMU.raw("ListSecrets", {}, auth="Bearer abc")
        self.assertEqual((st, body["__type"]), (403, "IncompleteSignature"))
        self.assertGreaterEqual(
            EMU.admin("GET", "calls")["signature_failures"], 3)

    def test_unknown_operation(self):
        st, _h, body = EMU.raw("Nope", {})
        self.assertEqual((st, body["__type"]),
                         (400, "UnknownOperationException"))
        st, _h, body = EMU.raw("", {}, target="kms.Decrypt")
        self.assertEqual((st, body["__type"]),
                         (400, "UnknownOperationException"))

    def test_header_value_trimming(self):
        """Inner runs of spaces fold to one on both sides (hand signer vs
        botocore in the emulator)."""
        amz = amz_now()
        hdrs = {"Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "secretsmanager.ListSecrets",
                "X-Amz-Date": amz, "X-Custom": "  a   b    c  "}
        auth = sigv4("POST", EMU.host, "/", hdrs, b"{}", AKID, SECRET, amz)
        st, _h, b = EMU.raw("ListSecrets", {}, auth=auth, amz_date=amz,
                            extra={"X-Custom": "  a   b    c  "})
        self.assertEqual(st, 200, b)

    def test_static_key_with_session_token(self):
        st, _h, b = EMU.raw("ListSecrets", {}, token="bogus")
        self.assertEqual((st, b["__type"]),
                         (403, "UnrecognizedClientException"))

    @unittest.skipUnless(shutil.which("curl"), "no curl")
    def test_curl_aws_sigv4(self):
        """libcurl's own SigV4 (--aws-sigv4, curl >= 7.75) is accepted."""
        EMU.admin("POST", "secret", {"Name": "curl", "SecretString": "cv"})
        r = subprocess.run(
            ["curl", "-sS", "--aws-sigv4", "aws:amz:%s:secretsmanager"
             % REGION, "--user", "%s:%s" % (AKID, SECRET),
             "-H", "Content-Type: application/x-amz-json-1.1",
             "-H", "X-Amz-Target: secretsmanager.GetSecretValue",
             "-d", '{"SecretId": "curl"}', EMU.url + "/"],
            capture_output=True, text=True, timeout=30)
        if "aws-sigv4" in r.stderr:
            self.skipTest("curl without --aws-sigv4")
        self.assertEqual(json.loads(r.stdout).get("SecretString"), "cv",
                         r.stdout + r.stderr)

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", EMU.port, timeout=10)
        try:
            for _ in range(3):
                st, h, _b = EMU.raw("ListSecrets", {}, conn=conn)
                self.assertEqual(st, 200)
                self.assertIn("Content-Length", h)
            sock = conn.sock
            st, _h, _b = EMU.raw("ListSecrets", {}, conn=conn)
            self.assertIs(conn.sock, sock)     # same TCP connection
        finally:
            conn.close()


class TestVersions(Base):
    def test_create_get_by_name_and_arn(self):
        r = self.c.create_secret(Name="app/db", SecretString='{"p":"1"}',
                                 Description="d")
        arn = r["ARN"]
        self.assertRegex(arn, r"^arn:aws:secretsmanager:us-east-1:"
                         r"123456789012:secret:app/db-[A-Za-z0-9]{6}$")
        for sid in ("app/db", arn):
            g = self.c.get_secret_value(SecretId=sid)
            self.assertEqual(g["SecretString"], '{"p":"1"}')
            self.assertEqual(g["VersionStages"], ["AWSCURRENT"])
            self.assertEqual(g["VersionId"], r["VersionId"])
        with self.assertRaises(ClientError) as e:
            self.c.create_secret(Name="app/db", SecretString="x")
        self.assertEqual(code(e), "ResourceExistsException")
        with self.assertRaises(ClientError) as e:
            self.c.get_secret_value(SecretId="missing")
        self.assertEqual(code(e), "ResourceNotFoundException")

    def test_binary(self):
        self.c.create_secret(Name="bin", SecretBinary=b"\x00\xffabc")
        g = self.c.get_secret_value(SecretId="bin")
        self.assertEqual(g["SecretBinary"], b"\x00\xffabc")
        self.assertNotIn("SecretString", g)

    def test_put_and_stage_moves(self):
        v1 = self.c.create_secret(Name="s", SecretString="one")["VersionId"]
        t2 = self.token()
        r = self.c.put_secret_value(SecretId="s", ClientRequestToken=t2,
                                    SecretString="two",
                                    VersionStages=["AWSPENDING"])
        self.assertEqual(r["VersionStages"], ["AWSPENDING"])
        self.assertEqual(self.c.get_secret_value(SecretId="s")
                         ["SecretString"], "one")
        g = self.c.get_secret_value(SecretId="s", VersionStage="AWSPENDING")
        self.assertEqual((g["SecretString"], g["VersionId"]), ("two", t2))
        # both VersionId and VersionStage must agree
        with self.assertRaises(ClientError) as e:
            self.c.get_secret_value(SecretId="s", VersionId=t2,
                                    VersionStage="AWSCURRENT")
        self.assertEqual(code(e), "ResourceNotFoundException")
        self.assertEqual(self.c.get_secret_value(
            SecretId="s", VersionId=t2, VersionStage="AWSPENDING")
            ["SecretString"], "two")
        # idempotent retry, then conflicting retry
        r2 = self.c.put_secret_value(SecretId="s", ClientRequestToken=t2,
                                     SecretString="two",
                                     VersionStages=["AWSPENDING"])
        self.assertEqual(r2["VersionId"], t2)
        with self.assertRaises(ClientError) as e:
            self.c.put_secret_value(SecretId="s", ClientRequestToken=t2,
                                    SecretString="other")
        self.assertEqual(code(e), "ResourceExistsException")
        # moving AWSCURRENT needs RemoveFromVersionId
        with self.assertRaises(ClientError) as e:
            self.c.update_secret_version_stage(
                SecretId="s", VersionStage="AWSCURRENT", MoveToVersionId=t2)
        self.assertEqual(code(e), "InvalidParameterException")
        self.c.update_secret_version_stage(
            SecretId="s", VersionStage="AWSCURRENT", MoveToVersionId=t2,
            RemoveFromVersionId=v1)
        d = self.c.describe_secret(SecretId="s")["VersionIdsToStages"]
        self.assertEqual(sorted(d[t2]), ["AWSCURRENT", "AWSPENDING"])
        self.assertEqual(d[v1], ["AWSPREVIOUS"])
        # moving to where it already is: no-op
        self.c.update_secret_version_stage(
            SecretId="s", VersionStage="AWSCURRENT", MoveToVersionId=t2)
        self.assertEqual(self.c.describe_secret(SecretId="s")
                         ["VersionIdsToStages"], d)
        # a plain put makes the new version current, previous follows
        t3 = self.token()
        self.c.put_secret_value(SecretId="s", ClientRequestToken=t3,
                                SecretString="three")
        d = self.c.describe_secret(SecretId="s")["VersionIdsToStages"]
        self.assertEqual(d[t3], ["AWSCURRENT"])
        self.assertEqual(d[t2], ["AWSPENDING", "AWSPREVIOUS"])
        self.assertNotIn(v1, d)     # deprecated
        ids = [v["VersionId"] for v in
               self.c.list_secret_version_ids(SecretId="s")["Versions"]]
        self.assertNotIn(v1, ids)
        ids = [v["VersionId"] for v in self.c.list_secret_version_ids(
            SecretId="s", IncludeDeprecated=True)["Versions"]]
        self.assertIn(v1, ids)
        # a custom label moves between versions with RemoveFromVersionId
        self.c.update_secret_version_stage(SecretId="s", VersionStage="MINE",
                                           MoveToVersionId=t3)
        self.c.update_secret_version_stage(
            SecretId="s", VersionStage="MINE", MoveToVersionId=v1,
            RemoveFromVersionId=t3)
        d = self.c.describe_secret(SecretId="s")["VersionIdsToStages"]
        self.assertEqual(d[v1], ["MINE"])
        self.assertEqual(d[t3], ["AWSCURRENT"])
        self.c.update_secret_version_stage(SecretId="s", VersionStage="MINE",
                                           RemoveFromVersionId=v1)
        self.assertNotIn(v1, self.c.describe_secret(SecretId="s")
                         ["VersionIdsToStages"])

    def test_put_raw_requires_token(self):
        EMU.admin("POST", "secret", {"Name": "tok", "SecretString": "x"})
        st, _h, b = EMU.raw("PutSecretValue", {"SecretId": "tok",
                                               "SecretString": "y"})
        self.assertEqual((st, b["__type"]), (400, "InvalidParameterException"))
        st, _h, b = EMU.raw("PutSecretValue", {"SecretId": "tok",
                                               "ClientRequestToken": "short",
                                               "SecretString": "y"})
        self.assertEqual((st, b["__type"]), (400, "ValidationException"))
        st, _h, b = EMU.raw("PutSecretValue", {
            "SecretId": "tok", "ClientRequestToken": self.token(),
            "SecretString": "y", "SecretBinary": "eQ=="})
        self.assertEqual((st, b["__type"]), (400, "InvalidParameterException"))
        st, _h, b = EMU.raw("PutSecretValue", {
            "SecretId": "tok", "ClientRequestToken": self.token(),
            "SecretString": "y" * 65537})
        self.assertEqual((st, b["__type"]), (400, "ValidationException"))
        self.assertNotIn("yyyy", b["message"])
        st, _h, b = EMU.raw("GetSecretValue", {"SecretId": "x" * 2049})
        self.assertEqual((st, b["__type"]), (400, "ValidationException"))

    def test_rotate_secret_placeholder(self):
        v1 = self.c.create_secret(Name="r", SecretString="old")["VersionId"]
        tok = self.token()
        r = self.c.rotate_secret(
            SecretId="r", ClientRequestToken=tok,
            RotationLambdaARN="arn:aws:lambda:us-east-1:123456789012:"
            "function:rot", RotationRules={"AutomaticallyAfterDays": 30})
        self.assertEqual(r["VersionId"], tok)
        d = self.c.describe_secret(SecretId="r")
        self.assertTrue(d["RotationEnabled"])
        self.assertEqual(d["RotationRules"]["AutomaticallyAfterDays"], 30)
        self.assertEqual(d["VersionIdsToStages"][tok], ["AWSPENDING"])
        self.assertNotIn("SecretString", d)
        with self.assertRaises(ClientError) as e:
            self.c.get_secret_value(SecretId="r", VersionStage="AWSPENDING")
        self.assertEqual(code(e), "ResourceNotFoundException")
        with self.assertRaises(ClientError) as e:
            self.c.rotate_secret(SecretId="r")
        self.assertEqual(code(e), "InvalidRequestException")
        self.assertIn("previous rotation isn't complete",
                      e.exception.response["Error"]["Message"])
        self.c.put_secret_value(SecretId="r", ClientRequestToken=tok,
                                SecretString="new",
                                VersionStages=["AWSPENDING"])
        self.assertEqual(self.c.get_secret_value(
            SecretId="r", VersionStage="AWSPENDING")["SecretString"], "new")
        self.c.update_secret_version_stage(
            SecretId="r", VersionStage="AWSCURRENT", MoveToVersionId=tok,
            RemoveFromVersionId=v1)
        d = self.c.describe_secret(SecretId="r")
        self.assertIn("LastRotatedDate", d)
        self.assertEqual(d["VersionIdsToStages"][v1], ["AWSPREVIOUS"])
        # AWSPENDING on the current version is a finished rotation
        tok2 = self.token()
        self.c.rotate_secret(SecretId="r", ClientRequestToken=tok2)
        d = self.c.describe_secret(SecretId="r")["VersionIdsToStages"]
        self.assertEqual(d[tok], ["AWSCURRENT"])
        self.assertEqual(d[tok2], ["AWSPENDING"])

    def test_batch_get(self):
        EMU.admin("POST", "secret", {"Name": "b1", "SecretString": "one"})
        EMU.admin("POST", "secret", {"Name": "b2", "SecretString": "two"})
        st, _h, b = EMU.raw("BatchGetSecretValue",
                            {"SecretIdList": ["b1", "b2", "nope"]})
        self.assertEqual(st, 200, b)
        self.assertEqual(sorted(v["SecretString"] for v in b["SecretValues"]),
                         ["one", "two"])
        self.assertEqual(b["Errors"][0]["SecretId"], "nope")
        self.assertEqual(b["Errors"][0]["ErrorCode"],
                         "ResourceNotFoundException")
        st, _h, b = EMU.raw("BatchGetSecretValue",
                            {"SecretIdList": ["x%d" % i for i in range(21)]})
        self.assertEqual((st, b["__type"]), (400, "ValidationException"))

    def test_delete(self):
        self.c.create_secret(Name="d1", SecretString="x")
        self.c.create_secret(Name="d2", SecretString="x")
        self.c.delete_secret(SecretId="d1", RecoveryWindowInDays=7)
        with self.assertRaises(ClientError) as e:
            self.c.get_secret_value(SecretId="d1")
        self.assertEqual(code(e), "InvalidRequestException")
        self.assertIn("DeletedDate", self.c.describe_secret(SecretId="d1"))
        self.c.delete_secret(SecretId="d2", ForceDeleteWithoutRecovery=True)
        with self.assertRaises(ClientError) as e:
            self.c.describe_secret(SecretId="d2")
        self.assertEqual(code(e), "ResourceNotFoundException")

    def test_random_password(self):
        pw = self.c.get_random_password()["RandomPassword"]
        self.assertEqual(len(pw), 32)
        for _ in range(20):
            pw = self.c.get_random_password(
                PasswordLength=40, ExcludeCharacters=":/@\"'\\")[
                    "RandomPassword"]
            self.assertEqual(len(pw), 40)
            self.assertFalse(set(pw) & set(":/@\"'\\"))
            self.assertTrue(any(c.isdigit() for c in pw))
            self.assertTrue(any(c.isupper() for c in pw))
            self.assertTrue(any(c.islower() for c in pw))
        pw = self.c.get_random_password(
            PasswordLength=50, ExcludePunctuation=True, ExcludeNumbers=True,
            ExcludeUppercase=True)["RandomPassword"]
        self.assertTrue(pw.isalpha() and pw.islower())
        with self.assertRaises(ClientError) as e:
            self.c.get_random_password(PasswordLength=4097)
        self.assertEqual(code(e), "ValidationException")


class TestCredentials(Base):
    def get_json(self, path, headers=None, method="GET"):
        conn = http.client.HTTPConnection("127.0.0.1", EMU.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def test_ecs(self):
        st, _ = self.get_json("/ecs/credentials")
        self.assertEqual(st, 401)
        st, body = self.get_json("/ecs/credentials",
                                 {"Authorization": ECS_TOKEN})
        self.assertEqual(st, 200)
        cr = json.loads(body)
        self.assertRegex(cr["Expiration"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        c = EMU.client(cr["AccessKeyId"], cr["SecretAccessKey"], cr["Token"])
        c.create_secret(Name="ecs/s", SecretString="v")
        self.assertEqual(c.get_secret_value(SecretId="ecs/s")
                         ["SecretString"], "v")
        # the token is required
        st, _h, b = EMU.raw("ListSecrets", {}, akid=cr["AccessKeyId"],
                            secret=cr["SecretAccessKey"])
        self.assertEqual((st, b["__type"]),
                         (403, "UnrecognizedClientException"))
        # and must be signed
        st, _h, b = EMU.raw("ListSecrets", {}, akid=cr["AccessKeyId"],
                            secret=cr["SecretAccessKey"],
                            extra={"X-Amz-Security-Token": cr["Token"]})
        self.assertEqual((st, b["__type"]),
                         (403, "InvalidSignatureException"))
        hits = EMU.admin("GET", "calls")["credential_hits"]
        self.assertEqual(hits["ecs"], 2)
        EMU.admin("POST", "expire-credentials")
        with self.assertRaises(ClientError) as e:
            c.list_secrets()
        self.assertEqual(code(e), "ExpiredTokenException")
        self.assertEqual(e.exception.response["ResponseMetadata"]
                         ["HTTPStatusCode"], 400)

    def test_imds(self):
        st, _ = self.get_json("/latest/api/token", method="PUT")
        self.assertEqual(st, 400)
        st, tok = self.get_json(
            "/latest/api/token",
            {"x-aws-ec2-metadata-token-ttl-seconds": "21600"}, "PUT")
        self.assertEqual(st, 200)
        base = "/latest/meta-data/iam/security-credentials/"
        st, _ = self.get_json(base)
        self.assertEqual(st, 401)
        st, _ = self.get_json(base, {"x-aws-ec2-metadata-token": "bad"})
        self.assertEqual(st, 401)
        hdr = {"x-aws-ec2-metadata-token": tok.decode()}
        st, role = self.get_json(base, hdr)
        self.assertEqual((st, role), (200, b"secretsmgr-test-role"))
        st, body = self.get_json(base + role.decode(), hdr)
        self.assertEqual(st, 200)
        cr = json.loads(body)
        self.assertEqual((cr["Code"], cr["Type"]), ("Success", "AWS-HMAC"))
        c = EMU.client(cr["AccessKeyId"], cr["SecretAccessKey"], cr["Token"])
        c.list_secrets()
        hits = EMU.admin("GET", "calls")["credential_hits"]
        self.assertEqual((hits["imds_token"], hits["imds_creds"]), (2, 1))


class TestFaults(Base):
    def setUp(self):
        super().setUp()
        EMU.admin("POST", "secret", {"Name": "f", "SecretString": "val"})

    def fault(self, **kw):
        kw.setdefault("operation", "GetSecretValue")
        EMU.admin("POST", "fault", kw)

    def test_throttle_then_ok(self):
        self.fault(fault="throttle", count=2)
        for _ in range(2):
            with self.assertRaises(ClientError) as e:
                self.c.get_secret_value(SecretId="f")
            self.assertEqual(code(e), "ThrottlingException")
        self.assertEqual(self.c.get_secret_value(SecretId="f")
                         ["SecretString"], "val")
        self.assertEqual(EMU.admin("GET", "calls")["calls"]
                         ["GetSecretValue"], 3)

    def test_fault_needs_valid_signature(self):
        self.fault(fault="error500")
        st, _h, b = EMU.raw("GetSecretValue", {"SecretId": "f"},
                            secret="wrong")
        self.assertEqual(st, 403)
        st, _h, b = EMU.raw("GetSecretValue", {"SecretId": "f"})
        self.assertEqual((st, b["__type"]), (500, "InternalServiceError"))

    def test_fault_skips_real_operation(self):
        self.fault(operation="PutSecretValue", fault="error503")
        st, _h, b = EMU.raw("PutSecretValue", {
            "SecretId": "f", "ClientRequestToken": self.token(),
            "SecretString": "new"})
        self.assertEqual((st, b["__type"]), (503, "ServiceUnavailable"))
        self.assertEqual(self.c.get_secret_value(SecretId="f")
                         ["SecretString"], "val")

    def test_secret_filter_and_star(self):
        EMU.admin("POST", "secret", {"Name": "g", "SecretString": "gv"})
        self.fault(operation="*", fault="access_denied", secret_id="g")
        self.c.get_secret_value(SecretId="f")
        with self.assertRaises(ClientError) as e:
            self.c.describe_secret(SecretId="g")
        self.assertEqual(code(e), "AccessDeniedException")
        self.c.describe_secret(SecretId="g")

    def test_body_faults(self):
        for f, status, check in (
                ("malformed", 200, lambda b: self.assertRaises(
                    ValueError, json.loads, b)),
                ("oversized", 200, lambda b: self.assertGreater(
                    len(json.loads(b)["SecretString"]), 2 * 1024 * 1024)),
                ("html403", 403, lambda b: self.assertIn(b"<html>", b)),
                ("empty403", 403, lambda b: self.assertEqual(b, b"")),
                ("xml_error", 500, lambda b: self.assertIn(b"<Error>", b)),
                ("expired_token", 400, lambda b: self.assertEqual(
                    json.loads(b)["__type"], "ExpiredTokenException")),
                ("decryption_failure", 400, lambda b: self.assertEqual(
                    json.loads(b)["__type"], "DecryptionFailure"))):
            self.fault(fault=f)
            st, _h, b = EMU.raw("GetSecretValue", {"SecretId": "f"})
            if not isinstance(b, bytes):
                b = json.dumps(b).encode()
            self.assertEqual(st, status, f)
            check(b)

    def test_drop(self):
        self.fault(fault="drop")
        with self.assertRaises((http.client.RemoteDisconnected,
                                ConnectionResetError)):
            EMU.raw("GetSecretValue", {"SecretId": "f"})
        st, _h, _b = EMU.raw("GetSecretValue", {"SecretId": "f"})
        self.assertEqual(st, 200)

    def test_lost_answer(self):
        """The put is performed, its answer dropped; the same token and
        value again is a success that makes no second version (and moves
        AWSPREVIOUS as the first did); another value under it is refused."""
        before = self.c.get_secret_value(SecretId="f")["VersionId"]
        token = self.token()
        put = {"SecretId": "f", "ClientRequestToken": token,
               "SecretString": "lost", "VersionStages": ["AWSCURRENT"]}
        self.fault(operation="PutSecretValue", fault="lost_answer")
        with self.assertRaises((http.client.RemoteDisconnected,
                                ConnectionResetError)):
            EMU.raw("PutSecretValue", put)
        nversions = len(EMU.admin("GET", "secret?id=f")["Versions"])
        st, _h, b = EMU.raw("PutSecretValue", put)
        self.assertEqual((st, b["VersionId"]), (200, token))
        self.assertEqual(len(EMU.admin("GET", "secret?id=f")["Versions"]),
                         nversions)
        cur = self.c.get_secret_value(SecretId="f")
        self.assertEqual((cur["VersionId"], cur["SecretString"]),
                         (token, "lost"))
        prev = self.c.get_secret_value(SecretId="f",
                                       VersionStage="AWSPREVIOUS")
        self.assertEqual(prev["VersionId"], before)
        st, _h, b = EMU.raw("PutSecretValue", dict(put, SecretString="other"))
        self.assertEqual((st, b["__type"]), (400, "ResourceExistsException"))

    def test_hang(self):
        self.fault(fault="hang", delay_ms=300)
        t = time.monotonic()
        with self.assertRaises((http.client.RemoteDisconnected,
                                ConnectionResetError)):
            EMU.raw("GetSecretValue", {"SecretId": "f"})
        self.assertGreaterEqual(time.monotonic() - t, 0.29)

    def test_delay_does_not_block_others(self):
        self.fault(fault="delay", delay_ms=1500)
        out = {}

        def slow():
            t = time.monotonic()
            out["st"] = EMU.raw("GetSecretValue", {"SecretId": "f"})[0]
            out["t"] = time.monotonic() - t
        th = threading.Thread(target=slow)
        th.start()
        time.sleep(0.2)
        t = time.monotonic()
        self.assertEqual(EMU.raw("GetSecretValue", {"SecretId": "f"})[0], 200)
        self.assertLess(time.monotonic() - t, 1.0)
        th.join()
        self.assertEqual(out["st"], 200)
        self.assertGreaterEqual(out["t"], 1.4)

    def test_credential_endpoint_faults(self):
        EMU.admin("POST", "fault", {"operation": "ecs", "fault": "error500"})
        conn = http.client.HTTPConnection("127.0.0.1", EMU.port, timeout=10)
        conn.request("GET", "/ecs/credentials",
                     headers={"Authorization": ECS_TOKEN})
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 500)
        conn.close()

    def test_deny_allow(self):
        arn = EMU.admin("GET", "secret?id=f")["ARN"]
        EMU.admin("POST", "deny", {"secret_id": arn,
                                   "operation": "GetSecretValue"})
        with self.assertRaises(ClientError) as e:
            self.c.get_secret_value(SecretId="f")
        self.assertEqual(code(e), "AccessDeniedException")
        self.c.describe_secret(SecretId="f")
        st, _h, b = EMU.raw("BatchGetSecretValue", {"SecretIdList": ["f"]})
        self.assertEqual(b["Errors"][0]["ErrorCode"], "AccessDeniedException")
        EMU.admin("POST", "allow", {"secret_id": "f"})
        self.c.get_secret_value(SecretId="f")

    def test_bad_fault_order(self):
        with self.assertRaises(urllib.error.HTTPError) as e:
            EMU.admin("POST", "fault", {"operation": "GetSecretValue",
                                        "fault": "nonsense"})
        self.assertEqual(e.exception.code, 400)


class TestLogAndLifecycle(Base):
    def test_log_has_no_values(self):
        self.c.create_secret(Name="logged", SecretString="TOPSECRETVALUE")
        self.c.get_secret_value(SecretId="logged")
        time.sleep(0.1)
        with open(EMU.log) as f:
            text = f.read()
        self.assertNotIn("TOPSECRETVALUE", text)
        self.assertNotIn("AWS4-HMAC", text)
        line = [x for x in text.splitlines() if "\tGetSecretValue\t" in x][-1]
        parts = line.split("\t")
        self.assertEqual(parts[1:4], ["GetSecretValue", "logged", "200"])
        self.assertTrue(parts[4].isdigit())
        recent = EMU.admin("GET", "calls")["recent"]
        self.assertEqual(recent[-1]["op"], "GetSecretValue")

    def test_exits_with_parent(self):
        d = tempfile.mkdtemp(prefix="smemu-parent.")
        try:
            pf = os.path.join(d, "port")
            parent = subprocess.Popen(["sleep", "30"])
            child = subprocess.Popen([PY, SMEMU, "--port", "0",
                                      "--port-file", pf,
                                      "--parent-pid", str(parent.pid)])
            deadline = time.monotonic() + 10
            while not os.path.exists(pf) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(os.path.exists(pf))
            parent.kill()
            parent.wait()
            child.wait(5)
            self.assertFalse(os.path.exists(pf))
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_seed(self):
        d = tempfile.mkdtemp(prefix="smemu-seed.")
        try:
            seed = os.path.join(d, "seed.json")
            with open(seed, "w") as f:
                json.dump({"secrets": [{"Name": "seeded",
                                        "SecretString": "{\"a\": 1}",
                                        "Description": "seeded one"}]}, f)
            e = Emu("--seed", seed)
            try:
                c = e.client()
                self.assertEqual(c.get_secret_value(SecretId="seeded")
                                 ["SecretString"], '{"a": 1}')
            finally:
                e.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)


class TestIamPolicy(Base):
    """IAM identity policies attached to access keys."""

    KEY2, SECRET2 = "AKIDIAMPOLICYTEST", "IAMTESTSECRET/secretsmgr+EXAMPLE"

    def attach(self, policy, akid=None, **extra):
        body = {"access_key": akid or self.KEY2, "policy": policy}
        if akid is None:
            body["secret_key"] = self.SECRET2
        body.update(extra)
        return EMU.admin("POST", "iam-policy", body)

    def policy(self, *statements):
        return {"Version": "2012-10-17", "Statement": list(statements)}

    def denied(self, fn, **kw):
        with self.assertRaises(ClientError) as e:
            fn(**kw)
        self.assertEqual(code(e), "AccessDeniedException")
        self.assertEqual(e.exception.response["ResponseMetadata"]
                         ["HTTPStatusCode"], 400)
        return e.exception.response["Error"]["Message"]

    def test_allow_deny_wildcards(self):
        a = self.c.create_secret(Name="app/one", SecretString="v1")["ARN"]
        b = self.c.create_secret(Name="app/two", SecretString="v2")["ARN"]
        o = self.c.create_secret(Name="other", SecretString="v3")["ARN"]
        self.attach(self.policy(
            {"Effect": "Allow", "Action": "secretsmanager:Get*",
             "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:"
                         "secret:app/*-??????"},
            {"Effect": "Allow", "Action": ["SecretsManager:describeSecret"],
             "Resource": a},
            {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue",
             "Resource": b}))
        c = EMU.client(self.KEY2, self.SECRET2)
        self.assertEqual(c.get_secret_value(SecretId="app/one")
                         ["SecretString"], "v1")
        self.assertEqual(c.get_secret_value(SecretId=a)["SecretString"], "v1")
        c.describe_secret(SecretId=a)          # action case-insensitive
        msg = self.denied(c.get_secret_value, SecretId="app/two")
        self.assertIn("with an explicit deny", msg)
        self.assertIn(b, msg)
        msg = self.denied(c.get_secret_value, SecretId=o)
        self.assertIn("secretsmanager:GetSecretValue on resource: %s" % o, msg)
        self.assertIn("no identity-based policy allows", msg)
        self.denied(c.describe_secret, SecretId="app/two")
        self.denied(c.put_secret_value, SecretId=a, SecretString="x",
                    ClientRequestToken=self.token())
        # "?" is one character: a six-character suffix, not a longer name
        self.denied(c.get_secret_value, SecretId="nothere")
        # GetRandomPassword's resource is "*": Get* on secrets does not cover
        self.denied(c.get_random_password)
        # the default key, without a policy, may still do everything
        self.c.put_secret_value(SecretId=a, SecretString="x",
                                ClientRequestToken=self.token())
        # detached: everything again
        self.attach(None, akid=self.KEY2)
        c.get_secret_value(SecretId=o)
        c.get_random_password()

    def test_batch_and_unscoped(self):
        a = self.c.create_secret(Name="b1", SecretString="v1")["ARN"]
        self.c.create_secret(Name="b2", SecretString="v2")
        self.attach(self.policy(
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": a}))
        c = EMU.client(self.KEY2, self.SECRET2)

        def batch(payload):     # Debian's botocore predates the operation
            return EMU.raw("BatchGetSecretValue", payload, akid=self.KEY2,
                           secret=self.SECRET2)
        st, _h, b = batch({"SecretIdList": ["b1", "b2"]})
        self.assertEqual((st, b["__type"]), (400, "AccessDeniedException"))
        self.attach(self.policy(
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": a},
            {"Effect": "Allow", "Action": ["secretsmanager:BatchGetSecretValue",
                                           "secretsmanager:GetRandomPassword"],
             "Resource": "*"}))
        st, _h, out = batch({"SecretIdList": ["b1", "b2"]})
        self.assertEqual(st, 200)
        self.assertEqual([v["Name"] for v in out["SecretValues"]], ["b1"])
        self.assertEqual([(e["SecretId"], e["ErrorCode"]) for e in out["Errors"]],
                         [("b2", "AccessDeniedException")])
        c.get_random_password()
        # Filters also need ListSecrets
        st, _h, b = batch({"Filters": [{"Key": "name", "Values": ["b"]}]})
        self.assertEqual((st, b["__type"]), (400, "AccessDeniedException"))

    def test_kms_encryption_context(self):
        key = "arn:aws:kms:us-east-1:123456789012:key/1111aaaa-2222-bbbb"
        a = self.c.create_secret(Name="k1", SecretString="v1",
                                 KmsKeyId=key)["ARN"]
        m = self.c.create_secret(Name="k2", SecretString="v2",
                                 KmsKeyId="alias/aws/secretsmanager")["ARN"]
        read = {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue",
                                              "secretsmanager:PutSecretValue"],
                "Resource": [a, m]}
        self.attach(self.policy(read))
        c = EMU.client(self.KEY2, self.SECRET2)
        msg = self.denied(c.get_secret_value, SecretId=a)
        self.assertIn("Access to KMS is not allowed", msg)
        self.assertIn("kms:Decrypt", msg)
        c.get_secret_value(SecretId=m)     # the AWS managed key: no statement
        kms = {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": key,
               "Condition": {"StringEquals": {
                   "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                   "kms:EncryptionContext:SecretARN": [a]}}}
        self.attach(self.policy(read, kms))
        c.get_secret_value(SecretId=a)
        msg = self.denied(c.put_secret_value, SecretId=a, SecretString="x",
                          ClientRequestToken=self.token())
        self.assertIn("kms:GenerateDataKey", msg)
        # the condition binds: another secret's ARN does not match
        kms["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"] = [m]
        kms["Action"] = ["kms:Decrypt", "kms:GenerateDataKey"]
        self.attach(self.policy(read, kms))
        self.denied(c.get_secret_value, SecretId=a)
        kms["Condition"] = {"StringEquals": {"kms:ViaService":
                                             "secretsmanager.eu-west-1.amazonaws.com"}}
        self.attach(self.policy(read, kms))
        self.denied(c.get_secret_value, SecretId=a)
        kms["Condition"] = {"StringLike": {"kms:ViaService": "secretsmanager.*",
                                           "kms:EncryptionContext:SecretARN":
                                           "arn:aws:secretsmanager:*:secret:k?-*"}}
        self.attach(self.policy(read, kms))
        c.get_secret_value(SecretId=a)
        c.put_secret_value(SecretId=a, SecretString="x",
                           ClientRequestToken=self.token())

    def test_rotation_lambda_condition(self):
        a = self.c.create_secret(Name="r1", SecretString="v1")["ARN"]
        fn = "arn:aws:lambda:us-east-1:123456789012:function:rot"
        self.attach(self.policy(
            {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret",
             "Resource": "*", "Condition": {"StringEquals": {
                 "secretsmanager:resource/AllowRotationLambdaArn": fn}}}))
        c = EMU.client(self.KEY2, self.SECRET2)
        self.denied(c.describe_secret, SecretId=a)
        self.c.rotate_secret(SecretId=a, RotationLambdaARN=fn,
                             RotationRules={"AutomaticallyAfterDays": 1})
        c.describe_secret(SecretId=a)

    def test_bad_policies_refused(self):
        for bad in ({"Version": "2008-10-17", "Statement": []},
                    {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "NotAction": "x", "Resource": "*"}]},
                    {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "x", "Resource": "*",
                         "Condition": {"NumericEquals": {"kms:ViaService": "1"}}}]},
                    {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "x", "Resource": "*",
                         "Condition": {"StringEquals": {"aws:SourceIp": "1"}}}]},
                    {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Maybe", "Action": "x", "Resource": "*"}]}):
            with self.assertRaises(urllib.error.HTTPError) as e:
                self.attach(bad)
            self.assertEqual(e.exception.code, 400)
        with self.assertRaises(urllib.error.HTTPError) as e:
            self.attach(self.policy(), akid="AKIDNOSUCHKEY")
        self.assertEqual(e.exception.code, 400)

    def test_command_line_key_and_policy(self):
        d = tempfile.mkdtemp(prefix="smemu-iam.")
        try:
            path = os.path.join(d, "policy.json")
            with open(path, "w") as f:
                json.dump(self.policy({"Effect": "Allow",
                                       "Action": "secretsmanager:DescribeSecret",
                                       "Resource": "*"}), f)
            e = Emu("--key", "%s:%s" % (self.KEY2, self.SECRET2),
                    "--iam-policy", "%s=%s" % (self.KEY2, path))
            try:
                e.client().create_secret(Name="cl", SecretString="v")
                c = e.client(self.KEY2, self.SECRET2)
                c.describe_secret(SecretId="cl")
                with self.assertRaises(ClientError) as err:
                    c.get_secret_value(SecretId="cl")
                self.assertEqual(code(err), "AccessDeniedException")
            finally:
                e.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_reset_and_temporary(self):
        self.c.create_secret(Name="t1", SecretString="v1")
        self.attach(self.policy({"Effect": "Allow", "Action": "secretsmanager:X",
                                 "Resource": "*"}), akid=AKID)
        self.denied(self.c.get_secret_value, SecretId="t1")
        self.assertIn(AKID, EMU.admin("GET", "iam-policies")["policies"])
        EMU.admin("POST", "reset", {})
        self.c.get_secret_value(SecretId="t1")
        # issued temporary credentials share the policy of "*temporary*"
        self.attach(self.policy({"Effect": "Allow", "Action": "secretsmanager:X",
                                 "Resource": "*"}), akid="*temporary*",
                    principal="secretsmgr-test-role")
        conn = http.client.HTTPConnection("127.0.0.1", EMU.port, timeout=10)
        conn.request("GET", "/ecs/credentials",
                     headers={"Authorization": ECS_TOKEN})
        cred = json.loads(conn.getresponse().read())
        conn.close()
        t = EMU.client(cred["AccessKeyId"], cred["SecretAccessKey"],
                       cred["Token"])
        msg = self.denied(t.get_secret_value, SecretId="t1")
        self.assertIn("user/secretsmgr-test-role", msg)
        self.c.get_secret_value(SecretId="t1")
class TestDialects(Base):
    """Each dialect's answers, and that botocore (the reference client)
    accepts them."""

    def setUp(self):
        super().setUp()
        EMU.admin("POST", "secret", {"Name": "d", "SecretString": "v1"})
        EMU.admin("POST", "secret", {"Name": "d", "SecretString": "v2"})

    def tearDown(self):
        EMU.admin("POST", "dialect", {"set": []})

    def dialect(self, *names):
        return EMU.admin("POST", "dialect", {"set": list(names)})

    def versions_paginator(self):
        """botocore's paginator over ListSecretVersionIds (the packaged
        botocore ships no paginator model for it)."""
        from botocore.paginate import Paginator
        return Paginator(
            self.c.list_secret_version_ids,
            {"input_token": "NextToken", "output_token": "NextToken",
             "limit_key": "MaxResults", "result_key": "Versions"},
            self.c.meta.service_model.operation_model(
                "ListSecretVersionIds"))

    def test_switches(self):
        self.assertEqual(self.dialect("sparse", "capital-message"),
                         {"dialects": ["capital-message", "sparse"]})
        self.assertEqual(EMU.admin("POST", "dialect", {"remove": ["sparse"]}),
                         {"dialects": ["capital-message"]})
        self.assertIn("stale-default", EMU.admin("GET", "dialect")["known"])
        with self.assertRaises(urllib.error.HTTPError) as e:
            self.dialect("bogus")
        self.assertEqual(e.exception.code, 400)
        EMU.admin("POST", "reset", {})      # reset keeps the switches
        self.assertEqual(EMU.admin("GET", "dialect")["dialects"],
                         ["capital-message"])

    def test_empty_next_token(self):
        self.dialect("empty-next-token")
        st, _h, b = EMU.raw("ListSecretVersionIds", {"SecretId": "d"})
        self.assertEqual((st, b["NextToken"]), (200, ""))
        st, _h, b2 = EMU.raw("ListSecretVersionIds",
                             {"SecretId": "d", "NextToken": ""})
        self.assertEqual(b2["Versions"], b["Versions"])
        pages = list(self.versions_paginator().paginate(SecretId="d"))
        self.assertEqual(len(pages), 1)

    def test_looping_tokens(self):
        from botocore.exceptions import PaginationError
        self.dialect("repeated-next-token")
        with self.assertRaises(PaginationError) as e:
            list(self.versions_paginator().paginate(SecretId="d"))
        self.assertIn("same next token", str(e.exception))
        self.dialect("endless-next-token")
        _st, _h, a = EMU.raw("ListSecretVersionIds", {"SecretId": "d"})
        _st, _h, b = EMU.raw("ListSecretVersionIds",
                             {"SecretId": "d", "NextToken": a["NextToken"]})
        self.assertNotEqual(a["NextToken"], b["NextToken"])
        self.assertEqual(a["Versions"], b["Versions"])

    def test_sparse(self):
        self.dialect("sparse")
        v = self.c.get_secret_value(SecretId="d", VersionStage="AWSCURRENT")
        self.assertEqual(v["SecretString"], "v2")
        for k in ("Name", "CreatedDate", "VersionStages"):
            self.assertNotIn(k, v)
        d = self.c.describe_secret(SecretId="d")
        self.assertNotIn("CreatedDate", d)
        self.assertNotIn("RotationEnabled", d)
        self.assertIn("VersionIdsToStages", d)
        lv = self.c.list_secret_version_ids(SecretId="d")
        self.assertNotIn("ARN", lv)
        self.assertNotIn("CreatedDate", lv["Versions"][0])

    def test_integer_timestamps(self):
        self.dialect("integer-timestamps")
        _st, _h, b = EMU.raw("DescribeSecret", {"SecretId": "d"})
        self.assertIsInstance(b["CreatedDate"], int)
        _st, _h, b = EMU.raw("ListSecretVersionIds", {"SecretId": "d"})
        self.assertIsInstance(b["Versions"][0]["CreatedDate"], int)
        self.assertIsInstance(self.c.describe_secret(SecretId="d")
                              ["CreatedDate"], datetime.datetime)

    def test_capital_message(self):
        self.dialect("capital-message")
        st, _h, b = EMU.raw("GetSecretValue", {"SecretId": "absent"})
        self.assertEqual((st, b["__type"]), (400, "ResourceNotFoundException"))
        self.assertIn("Message", b)
        self.assertNotIn("message", b)
        with self.assertRaises(ClientError) as e:
            self.c.get_secret_value(SecretId="absent")
        self.assertIn("can't find", e.exception.response["Error"]["Message"])

    def test_xml_auth_errors(self):
        self.dialect("xml-auth-errors")
        st, h, b = EMU.raw("GetSecretValue", {"SecretId": "d"},
                           secret="wrong")
        self.assertEqual(st, 403)
        self.assertEqual(h["Content-Type"], "text/xml")
        self.assertIn(b"<Code>InvalidSignatureException</Code>", b)
        # other errors stay JSON
        st, _h, b = EMU.raw("GetSecretValue", {"SecretId": "absent"})
        self.assertEqual(b["__type"], "ResourceNotFoundException")

    def test_stale_default(self):
        self.dialect("stale-default")
        self.assertEqual(self.c.get_secret_value(SecretId="d")
                         ["SecretString"], "v1")
        self.assertEqual(self.c.get_secret_value(
            SecretId="d", VersionStage="AWSCURRENT")["SecretString"], "v2")


class TestSmctl(Base):
    def smctl(self, *args, ok=True):
        env = dict(os.environ, SM_EMULATOR_URL=EMU.url)
        r = subprocess.run([SMCTL] + list(args), env=env,
                           capture_output=True, text=True, timeout=30)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_smctl(self):
        self.assertEqual(self.smctl("create", "c1", '{"p": "x"}').stdout, "")
        self.smctl("create-binary", "c2", base64.b64encode(b"\x01").decode())
        tok = self.token()
        self.smctl("put", "c1", '{"p": "y"}', "--stages", "AWSPENDING",
                   "--token", tok)
        lines = self.smctl("stage", "c1").stdout.splitlines()
        self.assertEqual(len(lines), 2)
        self.assertIn("%s AWSPENDING" % tok, lines)
        shown = json.loads(self.smctl("show", "c1").stdout)
        self.assertEqual(len(shown["Versions"]), 2)
        self.smctl("fault", "GetSecretValue", "throttle", "2",
                   "--secret", "c1")
        with self.assertRaises(ClientError):
            self.c.get_secret_value(SecretId="c1")
        self.assertEqual(self.smctl("calls", "GetSecretValue").stdout, "1\n")
        self.smctl("deny", "c1")
        self.smctl("allow", "c1")
        self.smctl("reset")
        self.assertEqual(self.smctl("calls", "GetSecretValue").stdout, "0\n")
        r = self.smctl("fault", "GetSecretValue", "bogus", ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("smctl:", r.stderr)
        r = self.smctl("wait-port", EMU.port_file)
        self.assertEqual(r.stdout.strip(), EMU.url)
        self.smctl("reset", "--state")
        self.assertNotEqual(self.smctl("show", "c1", ok=False).returncode, 0)

    def test_smctl_iam_policy(self):
        self.c.create_secret(Name="p1", SecretString="v1")
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret",
             "Resource": "*"}]})
        r = subprocess.run([SMCTL, "iam-policy", AKID, "-"], input=policy,
                           env=dict(os.environ, SM_EMULATOR_URL=EMU.url),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.c.describe_secret(SecretId="p1")
        with self.assertRaises(ClientError) as e:
            self.c.get_secret_value(SecretId="p1")
        self.assertEqual(code(e), "AccessDeniedException")
        shown = json.loads(self.smctl("iam-policies").stdout)
        self.assertEqual(list(shown), [AKID])
        r = self.smctl("iam-policy", AKID, "not json", ok=False)
        self.assertIn("not JSON", r.stderr)
        self.smctl("iam-policy", AKID, "--detach")
        self.c.get_secret_value(SecretId="p1")


class TestLayout(unittest.TestCase):
    """The package emu/ is layered one way: each module imports only the
    modules listed before it in emu/__init__.py, and smemu.py only the
    package."""

    def test_one_way_imports(self):
        pkg = os.path.join(HERE, "emu")
        with open(os.path.join(pkg, "__init__.py")) as f:
            doc = f.read()
        order = re.findall(r"^  (\w+) ", doc, re.M)
        on_disk = sorted(n[:-3] for n in os.listdir(pkg)
                         if n.endswith(".py") and n != "__init__.py")
        self.assertEqual(sorted(order), on_disk,
                         "emu/__init__.py lists every module once")
        for i, mod in enumerate(order):
            with open(os.path.join(pkg, mod + ".py")) as f:
                used = re.findall(r"^from \.(\w+) import", f.read(), re.M)
            for dep in used:
                self.assertIn(dep, order[:i],
                              "emu/%s.py imports emu/%s.py, listed after it"
                              % (mod, dep))

    def test_entry_point_is_thin(self):
        with open(SMEMU) as f:
            src = f.read()
        self.assertIn("from emu.server import main", src)
        self.assertNotIn("class ", src)


if __name__ == "__main__":
    unittest.main()
