"""AWS STS for the Secrets Manager emulator (smemu.py).

Serves the Query protocol (form-encoded POST, XML answers in STS's
namespace) for two actions:

- AssumeRole: SigV4-signed (service "sts"), checked with botocore's signer
  like every Secrets Manager call; the signer may be a static key or a
  temporary one the emulator issued (with its session token).  A role may
  require an ExternalId.
- AssumeRoleWithWebIdentity: unsigned; the WebIdentityToken must equal the
  token the test configured (the content it wrote to the token file).

Both issue temporary keys of a configurable lifetime into the emulator's
temporary key table, so Secrets Manager calls signed with them are
accepted until they expire, and refused after.

Admin calls (JSON): POST /_admin/sts-config {"lifetime": s, "web_token": t,
"roles": {arn: {"external_id": x}}, "deny": [arn], "clear_faults": true}, POST /_admin/sts-fault
{"action": a, "code": c, "status": n, "count": k}, GET /_admin/sts (counters,
the tokens and session names seen, which issued keys signed Secrets Manager
calls), POST /_admin/sts-reset.
"""

import base64
import calendar
import hmac
import json
import re
import secrets
import string
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ACCOUNT_ID = "123456789012"
SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/"
    r"aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$")
MAX_SKEW_SECONDS = 300


class StsError(Exception):
    def __init__(self, status, code, message, etype="Sender"):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.etype = etype


def is_sts_request(handler, path, body):
    """An STS call: a form-encoded POST with an Action (the Secrets Manager
    API is JSON with X-Amz-Target)."""
    if handler.command != "POST" or handler.headers.get("X-Amz-Target"):
        return False
    ctype = handler.headers.get("Content-Type", "")
    return ctype.startswith("application/x-www-form-urlencoded")


def iso_z(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Sts:
    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.lifetime = 3600
            self.web_token = None
            self.roles = {}
            self.deny = set()
            self.faults = []
            self.calls = {"AssumeRole": 0, "AssumeRoleWithWebIdentity": 0}
            self.tokens_seen = []
            self.sessions_seen = []
            self.signers = []       # access keys that signed AssumeRole
            self.external_ids = []
            self.issued = {}        # access key -> role ARN
            self.sm_calls_by_role = {}

    # --- the hook from smemu.verify_signature ------------------------------
    def note_signer(self, akid):
        """A Secrets Manager call was signed by akid: count it per role when
        it is a key this module issued."""
        with self.lock:
            role = self.issued.get(akid)
            if role is not None:
                self.sm_calls_by_role[role] = \
                    self.sm_calls_by_role.get(role, 0) + 1

    # --- requests ------------------------------------------------------------
    def handle(self, handler, body, start):
        action = None
        try:
            try:
                params = {k: v[-1] for k, v in parse_qs(
                    body.decode("utf-8"), keep_blank_values=True,
                    strict_parsing=False).items()}
            except UnicodeDecodeError:
                raise StsError(400, "MalformedInput", "Body is not UTF-8.")
            action = params.get("Action")
            if params.get("Version") != "2011-06-15":
                raise StsError(400, "InvalidAction",
                               "Could not find operation %s for version %s."
                               % (action, params.get("Version")))
            if action == "AssumeRoleWithWebIdentity":
                out = self.assume_role_with_web_identity(handler, params)
            elif action == "AssumeRole":
                out = self.assume_role(handler, body, params)
            else:
                raise StsError(400, "InvalidAction",
                               "Could not find operation %s." % action)
            handler.send(200, out, "text/xml")
            self.emu.record("sts:" + action, None, 200,
                            handler.elapsed_us(start))
        except StsError as e:
            doc = ('<ErrorResponse xmlns="%s"><Error><Type>%s</Type>'
                   '<Code>%s</Code><Message>%s</Message></Error>'
                   '<RequestId>%s</RequestId></ErrorResponse>' % (
                       NS, e.etype, escape(e.code), escape(e.message),
                       uuid.uuid4()))
            handler.send(e.status, doc, "text/xml")
            self.emu.record("sts:%s" % (action or "-"), None, e.status,
                            handler.elapsed_us(start), error=e.code)

    def take_fault(self, action):
        with self.lock:
            for f in self.faults:
                if f["action"] in (action, None) and f["count"] > 0:
                    f["count"] -= 1
                    return f
        return None

    def check_common(self, action, params):
        with self.lock:
            self.calls[action] += 1
        f = self.take_fault(action)
        if f is not None:
            raise StsError(f["status"], f["code"],
                           f.get("message") or "Injected fault.")
        role = params.get("RoleArn", "")
        session = params.get("RoleSessionName", "")
        if not (20 <= len(role) <= 2048) or not role.startswith("arn:"):
            raise StsError(400, "ValidationError",
                           "1 validation error detected: Value at 'roleArn' "
                           "failed to satisfy constraint.")
        if not SESSION_NAME_RE.match(session):
            raise StsError(400, "ValidationError",
                           "1 validation error detected: Value at "
                           "'roleSessionName' failed to satisfy constraint: "
                           "Member must satisfy regular expression pattern: "
                           "[\\w+=,.@-]*")
        with self.lock:
            self.sessions_seen.append(session)
            denied = role in self.deny
        if denied:
            raise StsError(403, "AccessDenied",
                           "Not authorized to perform %s on %s." % (
                               "sts:" + action, role))
        return role, session

    def assume_role_with_web_identity(self, handler, params):
        role, session = self.check_common("AssumeRoleWithWebIdentity", params)
        token = params.get("WebIdentityToken", "")
        with self.lock:
            self.tokens_seen.append(token)
            want = self.web_token
        if not (4 <= len(token) <= 20000) or want is None or \
                not hmac.compare_digest(token.encode(), want.encode()):
            raise StsError(400, "InvalidIdentityToken",
                           "Couldn't verify the web identity token.")
        return self.answer("AssumeRoleWithWebIdentity", role, session,
                           "<SubjectFromWebIdentityToken>system:"
                           "serviceaccount:db:secretsmgr"
                           "</SubjectFromWebIdentityToken>"
                           "<Audience>sts.amazonaws.com</Audience>"
                           "<Provider>oidc.eks.example</Provider>")

    def assume_role(self, handler, body, params):
        signer = self.verify_signature(handler, body)
        role, session = self.check_common("AssumeRole", params)
        ext = params.get("ExternalId")
        with self.lock:
            self.signers.append(signer)
            self.external_ids.append(ext)
            want = self.roles.get(role, {}).get("external_id")
        if want is not None and ext != want:
            raise StsError(403, "AccessDenied",
                           "Not authorized to perform sts:AssumeRole on %s."
                           % role)
        return self.answer("AssumeRole", role, session, "")

    def answer(self, action, role, session, extra):
        emu = self.emu
        akid = "ASIA" + "".join(secrets.choice(string.ascii_uppercase +
                                               string.digits)
                                for _ in range(16))
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = base64.b64encode(secrets.token_bytes(200)).decode()
        with self.lock:
            lifetime = self.lifetime
        expiry = float(int(time.time()) + lifetime)
        with emu.lock:
            emu.temp_keys[akid] = (secret, token, expiry)
        with self.lock:
            self.issued[akid] = role
        name = role.rsplit("/", 1)[-1]
        return (
            '<%sResponse xmlns="%s"><%sResult>%s'
            '<AssumedRoleUser><AssumedRoleId>AROA%s:%s</AssumedRoleId>'
            '<Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn></AssumedRoleUser>'
            '<Credentials><AccessKeyId>%s</AccessKeyId>'
            '<SecretAccessKey>%s</SecretAccessKey>'
            '<SessionToken>%s</SessionToken>'
            '<Expiration>%s</Expiration></Credentials>'
            '</%sResult><ResponseMetadata><RequestId>%s</RequestId>'
            '</ResponseMetadata></%sResponse>' % (
                action, NS, action, extra, akid[4:], escape(session),
                ACCOUNT_ID, escape(name), escape(session), akid, secret,
                token, iso_z(expiry), action, uuid.uuid4(), action))

    def verify_signature(self, handler, body):
        """Raise unless the request is signed for sts by a key the emulator
        knows (static, or issued with its session token); returns the key."""
        emu = self.emu
        m = AUTH_RE.match(handler.headers.get("Authorization", ""))
        if m is None:
            raise StsError(400, "MissingAuthenticationToken",
                           "Request is missing Authentication Token")
        akid, sdate, region, service, signed, signature = m.groups()
        signed = signed.split(";")
        amz_date = handler.headers.get("X-Amz-Date", "")
        if service != "sts" or region != emu.args.region or \
                sdate != amz_date[:8] or "host" not in signed or \
                "x-amz-date" not in signed or signed != sorted(signed):
            raise StsError(400, "IncompleteSignature",
                           "Credential should be scoped to a valid region "
                           "and service, with host and x-amz-date signed.")
        try:
            t = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise StsError(400, "IncompleteSignature", "Bad X-Amz-Date.")
        if abs(t - time.time()) > MAX_SKEW_SECONDS:
            raise StsError(403, "SignatureDoesNotMatch", "Signature expired.")
        with emu.lock:
            secret_key = emu.static_keys.get(akid)
            temp = emu.temp_keys.get(akid)
        token = None
        token_hdr = handler.headers.get("X-Amz-Security-Token")
        if temp is not None:
            secret_key, token, expiry = temp
            if token_hdr is None or "x-amz-security-token" not in signed or \
                    not hmac.compare_digest(token_hdr.encode(),
                                            token.encode()):
                raise StsError(403, "InvalidClientTokenId",
                               "The security token included in the request "
                               "is invalid.")
            if time.time() >= expiry:
                raise StsError(400, "ExpiredToken",
                               "The security token included in the request "
                               "is expired")
        elif secret_key is None or token_hdr is not None:
            raise StsError(403, "InvalidClientTokenId",
                           "The security token included in the request is "
                           "invalid.")
        req = AWSRequest(method="POST", url="http://%s%s" % (
            handler.headers.get("Host"), handler.path), data=body)
        for h in signed:
            values = handler.headers.get_all(h)
            if values is None:
                raise StsError(403, "SignatureDoesNotMatch",
                               "Signed header %s is missing." % h)
            for v in values:
                req.headers.add_header(h, v)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(akid, secret_key, token), "sts",
                           region)
        canonical = signer.canonical_request(req)
        expected = signer.signature(signer.string_to_sign(req, canonical),
                                    req)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise StsError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not "
                           "match the signature you provided.")
        return akid

    # --- admin -------------------------------------------------------------
    def handle_admin(self, handler, path, body):
        try:
            req = json.loads(body.decode("utf-8")) if body else {}
        except (ValueError, UnicodeDecodeError):
            handler.send_json(400, {"error": "body is not JSON"},
                              "application/json")
            return
        name = path[len("/_admin/"):]
        if name == "sts" and handler.command == "GET":
            with self.lock:
                out = {"calls": dict(self.calls),
                       "tokens_seen": list(self.tokens_seen),
                       "sessions_seen": list(self.sessions_seen),
                       "signers": list(self.signers),
                       "external_ids": list(self.external_ids),
                       "sm_calls_by_role": dict(self.sm_calls_by_role)}
        elif name == "sts-config" and handler.command == "POST":
            with self.lock:
                if "lifetime" in req:
                    self.lifetime = int(req["lifetime"])
                if "web_token" in req:
                    self.web_token = req["web_token"]
                if "roles" in req:
                    self.roles = dict(req["roles"])
                if "deny" in req:
                    self.deny = set(req["deny"])
                if req.get("clear_faults"):
                    self.faults = []
            out = {"ok": True}
        elif name == "sts-fault" and handler.command == "POST":
            with self.lock:
                self.faults.append({"action": req.get("action"),
                                    "code": req.get("code", "Throttling"),
                                    "status": int(req.get("status", 400)),
                                    "message": req.get("message"),
                                    "count": int(req.get("count", 1))})
            out = {"ok": True}
        elif name == "sts-reset" and handler.command == "POST":
            self.reset()
            out = {"ok": True}
        else:
            handler.send_json(404, {"error": "no such admin call"},
                              "application/json")
            return
        handler.send_json(200, out, "application/json")
