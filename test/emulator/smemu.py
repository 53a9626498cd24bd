#!/usr/bin/python3
"""A local AWS Secrets Manager emulator for the secretsmgr test suites.

It keeps secrets, versions and staging labels the way AWS documents them,
verifies the SigV4 signature of every API request with botocore's signer,
serves the ECS container and EC2 IMDSv2 credential endpoints, and takes fault
orders on an unauthenticated admin path (/_admin/...).  See README.md.

Run with Debian's /usr/bin/python3 (stdlib + python3-botocore).
"""

import argparse
import base64
import binascii
import datetime
import hmac
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import string
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

from botocore.auth import SigV4Auth, SIGNED_HEADERS_BLACKLIST
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import lost_answer

ACCOUNT_ID = "123456789012"
SERVICE = "secretsmanager"
ROLE_NAME = "secretsmgr-test-role"
MAX_VALUE_BYTES = 65536
MAX_SKEW_SECONDS = 300
MAX_VERSIONS = 100
MAX_LABELS_PER_VERSION = 20
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@!-]+$")
AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")

OPERATIONS = (
    "CreateSecret", "DescribeSecret", "GetSecretValue", "PutSecretValue",
    "UpdateSecretVersionStage", "ListSecretVersionIds", "GetRandomPassword",
    "DeleteSecret", "RestoreSecret", "RotateSecret", "CancelRotateSecret",
    "BatchGetSecretValue", "ListSecrets", "UpdateSecret", "TagResource",
    "UntagResource",
)

FAULTS = (
    "throttle", "error500", "error503", "delay", "hang", "drop", "malformed",
    "oversized", "access_denied", "html403", "empty403", "xml_error",
    "expired_token", "decryption_failure", "stage_mismatch",
    lost_answer.KIND,
)

# Operation keys for credential endpoints (faults and counters).
CRED_KEYS = ("ecs", "imds")


class ApiError(Exception):
    """An AWS-style error answer."""

    def __init__(self, status, etype, message, headers=None):
        super().__init__(message)
        self.status = status
        self.etype = etype
        self.message = message
        self.headers = headers or {}


def client_error(etype, message):
    return ApiError(400, etype, message)


def not_found(message="Secrets Manager can't find the specified secret."):
    return ApiError(400, "ResourceNotFoundException", message)


def now():
    return time.time()


def ts(t):
    """Epoch seconds with millisecond precision, as AWS returns them."""
    return None if t is None else round(t, 3)


def day_ts(t):
    """LastAccessedDate: AWS keeps it to the day (midnight UTC)."""
    if t is None:
        return None
    return float(int(t) - int(t) % 86400)


def iso_z(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


def amz_date_to_epoch(value):
    d = datetime.datetime.strptime(value, "%Y%m%dT%H%M%SZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def epoch_to_amz(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc) \
        .strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------------
# Parameter validation (model constraints -> ValidationException, like AWS)
# ---------------------------------------------------------------------------

def _verr(member, constraint, value=None, show_value=True):
    if value is None:
        shown = "null"
    elif show_value:
        shown = "'%s'" % value
    else:
        shown = None
    if shown is None:
        text = ("1 validation error detected: Value at '%s' failed to satisfy "
                "constraint: %s" % (member, constraint))
    else:
        text = ("1 validation error detected: Value %s at '%s' failed to "
                "satisfy constraint: %s" % (shown, member, constraint))
    return client_error("ValidationException", text)


def p_str(body, key, required=False, minlen=None, maxlen=None, secret=False):
    member = key[0].lower() + key[1:]
    v = body.get(key)
    if v is None:
        if required:
            raise _verr(member, "Member must not be null")
        return None
    if not isinstance(v, str):
        raise client_error("SerializationException",
                           "Unexpected value type for field %s" % key)
    n = len(v.encode("utf-8")) if secret else len(v)
    shown = v if len(v) <= 80 else v[:80] + "..."
    if minlen is not None and n < minlen:
        raise _verr(member, "Member must have length greater than or equal "
                    "to %d" % minlen, shown, not secret)
    if maxlen is not None and n > maxlen:
        raise _verr(member, "Member must have length less than or equal to "
                    "%d" % maxlen, shown, not secret)
    return v


def p_bool(body, key, default=None):
    v = body.get(key)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise client_error("SerializationException",
                           "Unexpected value type for field %s" % key)
    return v


def p_int(body, key, lo=None, hi=None, default=None):
    member = key[0].lower() + key[1:]
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise client_error("SerializationException",
                           "Unexpected value type for field %s" % key)
    if lo is not None and v < lo:
        raise _verr(member, "Member must have value greater than or equal "
                    "to %d" % lo, str(v))
    if hi is not None and v > hi:
        raise _verr(member, "Member must have value less than or equal to "
                    "%d" % hi, str(v))
    return v


def p_stages(body, key="VersionStages"):
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise client_error("SerializationException",
                           "Unexpected value type for field %s" % key)
    member = key[0].lower() + key[1:]
    if len(v) < 1 or len(v) > MAX_LABELS_PER_VERSION:
        raise _verr(member, "Member must have length less than or equal to "
                    "20" if len(v) > 20 else
                    "Member must have length greater than or equal to 1")
    for s in v:
        if len(s) < 1 or len(s) > 256:
            raise _verr(member, "Member must satisfy constraint: [Member must "
                        "have length less than or equal to 256, Member must "
                        "have length greater than or equal to 1]")
    return list(dict.fromkeys(v))


def p_value(body):
    """Returns (kind, value) with kind 'string'/'binary', or (None, None)."""
    s = body.get("SecretString")
    b = body.get("SecretBinary")
    if s is not None and b is not None:
        raise client_error("InvalidParameterException",
                           "You can't specify both a binary secret value and "
                           "a string secret value in the same secret.")
    if s is not None:
        p_str(body, "SecretString", minlen=0, maxlen=MAX_VALUE_BYTES,
              secret=True)
        return "string", s
    if b is not None:
        if not isinstance(b, str):
            raise client_error("SerializationException",
                               "Unexpected value type for field SecretBinary")
        try:
            raw = base64.b64decode(b, validate=True)
        except (binascii.Error, ValueError):
            raise client_error("SerializationException",
                               "Base64 encoded value expected for "
                               "SecretBinary")
        if len(raw) < 1 or len(raw) > MAX_VALUE_BYTES:
            raise _verr("secretBinary", "Member must have length less than or "
                        "equal to %d" % MAX_VALUE_BYTES if raw else
                        "Member must have length greater than or equal to 1",
                        show_value=False, value="")
        return "binary", raw
    return None, None


def p_token(body, key="ClientRequestToken", required=False):
    return p_str(body, key, required=required, minlen=32, maxlen=64)


def random_suffix():
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(6))


# ---------------------------------------------------------------------------
# Secret store
# ---------------------------------------------------------------------------

# Every value ever stored (and the "password" field of JSON values), kept
# across resets: the tests' leak checks search server logs for them.
SEEN_VALUES = set()
SEEN_LOCK = threading.Lock()


def remember_value(kind, value):
    if kind is None or value is None:
        return
    found = []
    if kind == "string":
        found.append(value)
        try:
            doc = json.loads(value)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("password"), str):
            found.append(doc["password"])
    elif isinstance(value, (bytes, bytearray)):
        found.append(base64.b64encode(bytes(value)).decode())
        found.append(bytes(value).hex())
    with SEEN_LOCK:
        SEEN_VALUES.update(v for v in found if len(v) >= 8)


class Version:
    __slots__ = ("vid", "kind", "value", "created", "stages",
                 "last_accessed")

    def __init__(self, vid, kind, value, stages):
        self.vid = vid
        self.kind = kind          # 'string', 'binary' or None (placeholder)
        self.value = value
        self.created = now()
        self.stages = list(stages)
        self.last_accessed = None


class Secret:
    def __init__(self, name, region, description=None, kms_key_id=None,
                 tags=None):
        self.name = name
        self.arn = "arn:aws:secretsmanager:%s:%s:secret:%s-%s" % (
            region, ACCOUNT_ID, name, random_suffix())
        self.description = description
        self.kms_key_id = kms_key_id
        self.tags = list(tags or [])
        self.created = now()
        self.last_changed = self.created
        self.last_accessed = None
        self.last_rotated = None
        self.rotation_enabled = False
        self.rotation_lambda_arn = None
        self.rotation_rules = None
        self.deleted_date = None
        self.versions = {}      # vid -> Version, in creation order

    # --- labels ------------------------------------------------------------
    def holder(self, stage):
        for v in self.versions.values():
            if stage in v.stages:
                return v
        return None

    def attach(self, version, stage):
        """Attach a label to a version, moving it from wherever it was.

        Moving AWSCURRENT turns the version it leaves into AWSPREVIOUS.
        """
        old = self.holder(stage)
        if old is version:
            return
        if len(version.stages) >= MAX_LABELS_PER_VERSION:
            raise client_error("LimitExceededException",
                               "A version can have at most %d staging labels."
                               % MAX_LABELS_PER_VERSION)
        if old is not None:
            old.stages.remove(stage)
        version.stages.append(stage)
        if stage == "AWSCURRENT" and old is not None:
            if "AWSPENDING" in version.stages:
                self.last_rotated = now()
            prev = self.holder("AWSPREVIOUS")
            if prev is not None and prev is not old:
                prev.stages.remove("AWSPREVIOUS")
            if "AWSPREVIOUS" not in old.stages:
                old.stages.append("AWSPREVIOUS")
            if "AWSPREVIOUS" in version.stages:
                version.stages.remove("AWSPREVIOUS")

    def add_version(self, vid, kind, value, stages):
        remember_value(kind, value)
        v = Version(vid, kind, value, [])
        self.versions[vid] = v
        for s in stages:
            self.attach(v, s)
        self.prune()
        return v

    def prune(self):
        """Keep at most MAX_VERSIONS versions, dropping the oldest
        deprecated (unlabelled) ones first, as AWS's clean-up does."""
        if len(self.versions) <= MAX_VERSIONS:
            return
        for vid in [v.vid for v in self.versions.values() if not v.stages]:
            if len(self.versions) <= MAX_VERSIONS:
                break
            del self.versions[vid]

    def version_ids_to_stages(self):
        return {v.vid: list(v.stages) for v in self.versions.values()
                if v.stages}

    def touch(self):
        self.last_changed = now()


class Store:
    def __init__(self, region):
        self.region = region
        self.secrets = {}       # name -> Secret

    def find(self, secret_id):
        s = self.secrets.get(secret_id)
        if s is not None:
            return s
        if secret_id.startswith("arn:"):
            for s in self.secrets.values():
                if s.arn == secret_id:
                    return s
            # partial ARN (no random suffix)
            prefix = "arn:aws:secretsmanager:%s:%s:secret:" % (
                self.region, ACCOUNT_ID)
            if secret_id.startswith(prefix):
                s = self.secrets.get(secret_id[len(prefix):])
                if s is not None:
                    return s
        return None

    def get(self, secret_id, allow_deleted=False):
        s = self.find(secret_id)
        if s is None:
            raise not_found()
        if s.deleted_date is not None and not allow_deleted:
            raise client_error(
                "InvalidRequestException",
                "You can't perform this operation on the secret because it "
                "was marked for deletion.")
        return s

    def create(self, name, description=None, kms_key_id=None, tags=None):
        old = self.secrets.get(name)
        if old is not None:
            if old.deleted_date is not None:
                raise client_error(
                    "InvalidRequestException",
                    "You can't create this secret because a secret with this "
                    "name is already scheduled for deletion.")
            raise client_error(
                "ResourceExistsException",
                "The operation failed because the secret %s already exists."
                % name)
        s = Secret(name, self.region, description, kms_key_id, tags)
        self.secrets[name] = s
        return s


def pick_version(s, vid, stage):
    """GetSecretValue's version selection."""
    if vid is None and stage is None:
        stage = "AWSCURRENT"
    v = None
    if vid is not None:
        v = s.versions.get(vid)
        if v is None:
            raise not_found("Secrets Manager can't find the specified secret "
                            "value for VersionId: %s" % vid)
        if stage is not None and stage not in v.stages:
            raise not_found("Secrets Manager can't find the specified secret "
                            "value for VersionId: %s and staging label: %s"
                            % (vid, stage))
    else:
        v = s.holder(stage)
        if v is None:
            raise not_found("Secrets Manager can't find the specified secret "
                            "value for staging label: %s" % stage)
    if v.kind is None:
        if stage is not None:
            raise not_found("Secrets Manager can't find the specified secret "
                            "value for staging label: %s" % stage)
        raise not_found("Secrets Manager can't find the specified secret "
                        "value for VersionId: %s" % vid)
    return v


def value_fields(v):
    if v.kind == "string":
        return {"SecretString": v.value}
    return {"SecretBinary": base64.b64encode(v.value).decode("ascii")}


def random_password(length=32, exclude="", no_numbers=False,
                    no_punct=False, no_upper=False, no_lower=False,
                    space=False, require_each=True):
    groups = []
    if not no_lower:
        groups.append(string.ascii_lowercase)
    if not no_upper:
        groups.append(string.ascii_uppercase)
    if not no_numbers:
        groups.append(string.digits)
    if not no_punct:
        groups.append(PUNCTUATION)
    if space:
        groups.append(" ")
    exclude = set(exclude or "")
    groups = ["".join(c for c in g if c not in exclude) for g in groups]
    groups = [g for g in groups if g]
    if not groups:
        raise client_error("InvalidParameterException",
                           "The password can't be generated: every character "
                           "type is excluded.")
    alphabet = "".join(groups)
    if require_each and length < len(groups):
        raise client_error("InvalidParameterException",
                           "PasswordLength is too short to include every "
                           "required character type.")
    rng = secrets.SystemRandom()
    chars = []
    if require_each:
        chars = [rng.choice(g) for g in groups]
    chars += [rng.choice(alphabet) for _ in range(length - len(chars))]
    rng.shuffle(chars)
    return "".join(chars)


# ---------------------------------------------------------------------------
# IAM identity policies, per access key
#
# A key with a policy attached is held to it the way IAM evaluates an
# identity-based policy: an explicit Deny wins, else an Allow that matches
# Action, Resource and Condition, else the implicit deny.  Keys without a
# policy may do everything (the default).  What is modelled is what the
# secretsmgr clients use: Action and Resource with * and ? wildcards (actions
# case-insensitive, resources case-sensitive), and the condition operators
# String(Not)Equals, String(Not)Like, Arn(Not)Equals, Arn(Not)Like, with
# their ...IfExists forms, on the keys kms:ViaService,
# kms:EncryptionContext:SecretARN, kms:EncryptionContext:SecretVersionId and
# secretsmanager:resource/AllowRotationLambdaArn.  A policy using anything
# else (NotAction, NotResource, Principal, another operator) is refused when
# it is attached, rather than evaluated wrongly.
# ---------------------------------------------------------------------------

IAM_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}
IAM_OPERATORS = ("StringEquals", "StringNotEquals", "StringLike",
                 "StringNotLike", "ArnEquals", "ArnNotEquals", "ArnLike",
                 "ArnNotLike")
IAM_CONDITION_KEYS = ("kms:viaservice", "kms:encryptioncontext:secretarn",
                      "kms:encryptioncontext:secretversionid",
                      "secretsmanager:resource/allowrotationlambdaarn")
# secrets under the AWS managed key need no kms statement (its key policy
# lets every principal of the account use it through Secrets Manager)
AWS_MANAGED_KEY = "alias/aws/secretsmanager"


class IamPolicyError(ValueError):
    """A policy document the emulator does not evaluate (or that IAM would
    reject)."""


def _as_list(value, what):
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and \
            all(isinstance(v, str) for v in value):
        return value
    raise IamPolicyError("%s must be a string or a non-empty list of strings"
                         % what)


def iam_wildcard(pattern, value, case_sensitive=True):
    """IAM's glob: * any run of characters, ? one character, nothing else
    special."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                 for c in pattern)
    return re.fullmatch(rx, value, 0 if case_sensitive else re.I) \
        is not None


def iam_check_policy(doc):
    """Raises IamPolicyError unless doc is a policy this emulator
    evaluates; returns the list of statements."""
    if not isinstance(doc, dict):
        raise IamPolicyError("the policy must be a JSON object")
    extra = set(doc) - {"Version", "Id", "Statement"}
    if extra:
        raise IamPolicyError("unsupported policy element(s): %s"
                             % ", ".join(sorted(extra)))
    if doc.get("Version") != "2012-10-17":
        raise IamPolicyError('Version must be "2012-10-17"')
    stmts = doc.get("Statement")
    if isinstance(stmts, dict):
        stmts = [stmts]
    if not isinstance(stmts, list):
        raise IamPolicyError("Statement must be an object or a list")
    for st in stmts:
        if not isinstance(st, dict):
            raise IamPolicyError("each statement must be an object")
        extra = set(st) - IAM_STATEMENT_KEYS
        if extra:
            raise IamPolicyError("unsupported statement element(s): %s"
                                 % ", ".join(sorted(extra)))
        if st.get("Effect") not in ("Allow", "Deny"):
            raise IamPolicyError("Effect must be Allow or Deny")
        _as_list(st.get("Action"), "Action")
        _as_list(st.get("Resource"), "Resource")
        cond = st.get("Condition", {})
        if not isinstance(cond, dict):
            raise IamPolicyError("Condition must be an object")
        for op, kv in cond.items():
            base = op[:-len("IfExists")] if op.endswith("IfExists") else op
            if base not in IAM_OPERATORS:
                raise IamPolicyError("unsupported condition operator %s" % op)
            if not isinstance(kv, dict) or not kv:
                raise IamPolicyError("condition %s must be a non-empty "
                                     "object" % op)
            for key, values in kv.items():
                if key.lower() not in IAM_CONDITION_KEYS:
                    raise IamPolicyError("unsupported condition key %s" % key)
                _as_list(values, "condition %s %s" % (op, key))
    return stmts


def _condition_holds(cond, context):
    """Every operator and every key must hold; a key's values are ORed."""
    for op, kv in cond.items():
        if_exists = op.endswith("IfExists")
        base = op[:-len("IfExists")] if if_exists else op
        negated = "Not" in base
        like = base.endswith("Like")
        case_sensitive = True
        for key, values in kv.items():
            values = _as_list(values, key)
            have = context.get(key.lower())
            if have is None:
                # a missing key: a negated operator holds, a positive one
                # does not (unless ...IfExists)
                if if_exists or negated:
                    continue
                return False
            if like:
                hit = any(iam_wildcard(v, have, case_sensitive)
                          for v in values)
            else:
                hit = have in values
            if hit == negated:
                return False
    return True


class IamPolicies:
    """The identity policies attached to access keys ("*temporary*" stands
    for every temporary credential the credential endpoints issue)."""

    TEMPORARY = "*temporary*"

    def __init__(self, account, region):
        self.account = account
        self.region = region
        self.policies = {}      # access key -> (principal name, statements)

    def attach(self, access_key, policy, principal=None):
        """Attach (policy a dict) or detach (policy None) a policy."""
        if policy is None:
            self.policies.pop(access_key, None)
            return
        stmts = iam_check_policy(policy)
        self.policies[access_key] = (principal or "secretsmgr-test", stmts)

    def clear(self):
        self.policies.clear()

    def describe(self):
        return {k: {"principal": p, "statements": s}
                for k, (p, s) in self.policies.items()}

    def key_of(self, access_key, temporary):
        return self.TEMPORARY if temporary else access_key

    def evaluate(self, access_key, action, resource, context=None):
        """None when allowed, else (reason, principal arn) of the denial.
        A key without a policy is allowed everything."""
        entry = self.policies.get(access_key)
        if entry is None:
            return None
        principal, stmts = entry
        context = {k.lower(): v for k, v in (context or {}).items()
                   if v is not None}
        allowed = False
        for st in stmts:
            if not any(iam_wildcard(a, action, case_sensitive=False)
                       for a in _as_list(st["Action"], "Action")):
                continue
            if not any(iam_wildcard(r, resource)
                       for r in _as_list(st["Resource"], "Resource")):
                continue
            if not _condition_holds(st.get("Condition", {}), context):
                continue
            if st["Effect"] == "Deny":
                return ("with an explicit deny in an identity-based policy",
                        principal)
            allowed = True
        if allowed:
            return None
        return ("because no identity-based policy allows the %s action"
                % action, principal)

    def denial(self, access_key, action, resource, context=None):
        """An AccessDeniedException for a denied call, else None."""
        verdict = self.evaluate(access_key, action, resource, context)
        if verdict is None:
            return None
        reason, principal = verdict
        if action.startswith("kms:"):
            # what Secrets Manager answers when KMS refuses it the key
            return client_error(
                "AccessDeniedException",
                "Access to KMS is not allowed. User: arn:aws:iam::%s:user/%s "
                "is not authorized to perform: %s on resource: %s %s"
                % (self.account, principal, action, resource, reason))
        return client_error(
            "AccessDeniedException",
            "User: arn:aws:iam::%s:user/%s is not authorized to perform: %s "
            "on resource: %s %s" % (self.account, principal, action,
                                    resource, reason))

    def secret_resource(self, s, secret_id):
        """The resource IAM names for a SecretId: the secret's ARN, or, for
        a secret that does not exist, the ARN its name would have (no
        random suffix)."""
        if s is not None:
            return s.arn
        if isinstance(secret_id, str) and secret_id.startswith("arn:"):
            return secret_id
        return "arn:aws:secretsmanager:%s:%s:secret:%s" % (
            self.region, self.account, secret_id)

    def key_resource(self, kms_key_id):
        """The ARN of a secret's KMS key, or None for the AWS managed key."""
        if not kms_key_id or kms_key_id.endswith(AWS_MANAGED_KEY):
            return None
        if kms_key_id.startswith("arn:"):
            return kms_key_id
        if kms_key_id.startswith("alias/"):
            return "arn:aws:kms:%s:%s:%s" % (self.region, self.account,
                                             kms_key_id)
        return "arn:aws:kms:%s:%s:key/%s" % (self.region, self.account,
                                             kms_key_id)

    def check_secret_call(self, access_key, op, s, secret_id):
        """The identity check of one call on one secret (s may be None),
        and the KMS check Secrets Manager makes on the caller's behalf when
        the secret has a customer-managed key.  Raises AccessDenied."""
        if access_key not in self.policies:
            return
        resource = self.secret_resource(s, secret_id)
        context = {}
        if s is not None:
            context["secretsmanager:resource/AllowRotationLambdaArn"] = \
                s.rotation_lambda_arn
        err = self.denial(access_key, "secretsmanager:" + op, resource,
                          context)
        if err is not None:
            raise err
        kms_action = {"GetSecretValue": "kms:Decrypt",
                      "BatchGetSecretValue": "kms:Decrypt",
                      "PutSecretValue": "kms:GenerateDataKey"}.get(op)
        key = self.key_resource(s.kms_key_id) if s is not None else None
        if kms_action and key:
            err = self.denial(access_key, kms_action, key, {
                "kms:ViaService": "secretsmanager.%s.amazonaws.com"
                                  % self.region,
                "kms:EncryptionContext:SecretARN": s.arn})
            if err is not None:
                raise err


# ---------------------------------------------------------------------------
# The emulator state: store, credentials, faults, counters
# ---------------------------------------------------------------------------

class Emulator:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.store = Store(args.region)
        self.static_keys = {args.access_key: args.secret_key}
        self.temp_keys = {}     # akid -> (secret, token, expiry)
        self.imds_tokens = {}   # token -> expiry
        self.faults = {}        # op -> deque of fault dicts
        self.denies = []        # (secret key set, op or None)
        self.iam = IamPolicies(ACCOUNT_ID, args.region)
        self.request_key = None  # the policy key of the call being served
        for pair in args.key or []:
            akid, _, secret = pair.partition(":")
            self.static_keys[akid] = secret
        for spec in args.iam_policy or []:
            akid, _, path = spec.partition("=")
            with open(path) as f:
                self.iam.attach(akid, json.load(f))
        self.dialects = set(args.dialect)    # see DIALECTS
        self.reset_counters()
        self.log_lock = threading.Lock()
        self.log_file = open(args.log, "a", buffering=1) if args.log else None

    def reset_counters(self):
        self.calls = {}
        self.cred_hits = {"ecs": 0, "imds_token": 0, "imds_creds": 0}
        self.sig_failures = 0
        self.recent = deque(maxlen=200)

    # --- logging -----------------------------------------------------------
    def record(self, op, secret_id, status, service_us, counted=True,
               error=None):
        if secret_id is not None:
            secret_id = str(secret_id)
            secret_id = re.sub(r"[\s\x00-\x1f\x7f]", "_", secret_id)[:2048]
        if counted:
            entry = {"op": op, "secret_id": secret_id, "status": status,
                     "service_us": service_us}
            if error:
                entry["error"] = error
            with self.lock:
                self.recent.append(entry)
        if self.log_file is not None:
            line = "%s\t%s\t%s\t%d\t%d\n" % (
                datetime.datetime.now(datetime.timezone.utc)
                .strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                op, secret_id if secret_id else "-", status, service_us)
            with self.log_lock:
                try:
                    self.log_file.write(line)
                except (OSError, ValueError):
                    pass

    # --- credentials -------------------------------------------------------
    def issue_temp(self):
        akid = "ASIA" + "".join(secrets.choice(string.ascii_uppercase +
                                               string.digits)
                                for _ in range(16))
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = base64.b64encode(secrets.token_bytes(120)).decode()
        expiry = float(int(now()) + self.args.temp_cred_ttl)
        with self.lock:
            # forget long-expired pairs
            cutoff = now() - 3600
            for k in [k for k, v in self.temp_keys.items() if v[2] < cutoff]:
                del self.temp_keys[k]
            self.temp_keys[akid] = (secret, token, expiry)
        return akid, secret, token, expiry

    # --- faults ------------------------------------------------------------
    def add_fault(self, op, fault, count, delay_ms, secret_id):
        with self.lock:
            q = self.faults.setdefault(op, deque())
            for _ in range(count):
                q.append({"fault": fault, "delay_ms": delay_ms,
                          "secret_id": secret_id})
            return len(q)

    def take_fault(self, op, secret_ids=()):
        """Pops the first queued fault for op (then '*') matching the
        request's secret id(s)."""
        with self.lock:
            for key in (op, "*"):
                q = self.faults.get(key)
                if not q:
                    continue
                for f in list(q):
                    want = f["secret_id"]
                    if want is not None and not any(
                            self.same_secret(want, sid) for sid in secret_ids):
                        continue
                    q.remove(f)
                    return f
        return None

    def same_secret(self, a, b):
        if a is None or b is None:
            return False
        if a == b:
            return True
        sa = self.store.find(a)
        return sa is not None and sa is self.store.find(b)

    # --- denies ------------------------------------------------------------
    def is_denied(self, op, secret_id):
        if secret_id is None:
            return False
        with self.lock:
            for did, dop in self.denies:
                if dop is not None and dop != op:
                    continue
                if self.same_secret(did, secret_id):
                    return True
        return False


# ---------------------------------------------------------------------------
# API operations.  Each takes (emu, body) and returns a dict; runs under
# emu.lock.
# ---------------------------------------------------------------------------

def op_create_secret(emu, body):
    name = p_str(body, "Name", required=True, minlen=1, maxlen=512)
    if len(name) > 256 or not NAME_RE.match(name):
        raise client_error("InvalidParameterException",
                           "Invalid name. Must be a valid name containing "
                           "alphanumeric characters, or any of the following: "
                           "-/_+=.@!")
    token = p_token(body) or str(uuid.uuid4())
    desc = p_str(body, "Description", maxlen=2048)
    kms = p_str(body, "KmsKeyId", maxlen=2048)
    tags = body.get("Tags") or []
    kind, value = p_value(body)
    s = emu.store.create(name, desc, kms, tags)
    out = {"ARN": s.arn, "Name": s.name}
    if kind is not None:
        s.add_version(token, kind, value, ["AWSCURRENT"])
        out["VersionId"] = token
    return out


def op_describe_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid, allow_deleted=True)
    out = {
        "ARN": s.arn,
        "Name": s.name,
        "RotationEnabled": s.rotation_enabled,
        "LastChangedDate": ts(s.last_changed),
        "CreatedDate": ts(s.created),
        "VersionIdsToStages": s.version_ids_to_stages(),
    }
    if s.description is not None:
        out["Description"] = s.description
    if s.kms_key_id is not None:
        out["KmsKeyId"] = s.kms_key_id
    if s.rotation_lambda_arn is not None:
        out["RotationLambdaARN"] = s.rotation_lambda_arn
    if s.rotation_rules is not None:
        out["RotationRules"] = s.rotation_rules
        days = s.rotation_rules.get("AutomaticallyAfterDays")
        if s.rotation_enabled and isinstance(days, int):
            base = s.last_rotated or s.created
            out["NextRotationDate"] = day_ts(base + days * 86400)
    if s.last_rotated is not None:
        out["LastRotatedDate"] = ts(s.last_rotated)
    if s.last_accessed is not None:
        out["LastAccessedDate"] = day_ts(s.last_accessed)
    if s.tags:
        out["Tags"] = s.tags
    if s.deleted_date is not None:
        out["DeletedDate"] = ts(s.deleted_date)
    return out


def op_get_secret_value(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    vid = p_str(body, "VersionId", minlen=32, maxlen=64)
    stage = p_str(body, "VersionStage", minlen=1, maxlen=256)
    s = emu.store.get(sid)
    v = pick_version(s, vid, stage)
    s.last_accessed = v.last_accessed = now()
    out = {"ARN": s.arn, "Name": s.name, "VersionId": v.vid,
           "VersionStages": list(v.stages), "CreatedDate": ts(v.created)}
    out.update(value_fields(v))
    return out


def op_put_secret_value(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    token = p_token(body)
    if token is None:
        raise client_error("InvalidParameterException",
                           "You must provide a ClientRequestToken.")
    kind, value = p_value(body)
    if kind is None:
        raise client_error("InvalidParameterException",
                           "You must provide either SecretString or "
                           "SecretBinary.")
    stages = p_stages(body)
    s = emu.store.get(sid)
    v = s.versions.get(token)
    if v is not None and v.kind is not None:
        if v.kind == kind and v.value == value:
            return {"ARN": s.arn, "Name": s.name, "VersionId": v.vid,
                    "VersionStages": list(v.stages)}
        raise client_error("ResourceExistsException",
                           "You can't modify an existing version, you can "
                           "only create a new version.")
    if stages is None:
        stages = ["AWSCURRENT"]
    if v is not None:
        # fill the placeholder RotateSecret created
        remember_value(kind, value)
        v.kind, v.value = kind, value
        for st in stages:
            s.attach(v, st)
    else:
        v = s.add_version(token, kind, value, stages)
    s.touch()
    return {"ARN": s.arn, "Name": s.name, "VersionId": v.vid,
            "VersionStages": list(v.stages)}


def op_update_secret_version_stage(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    stage = p_str(body, "VersionStage", required=True, minlen=1, maxlen=256)
    move_to = p_str(body, "MoveToVersionId", minlen=32, maxlen=64)
    remove_from = p_str(body, "RemoveFromVersionId", minlen=32, maxlen=64)
    s = emu.store.get(sid)
    holder = s.holder(stage)
    out = {"ARN": s.arn, "Name": s.name}
    if move_to is None and remove_from is None:
        raise client_error("InvalidParameterException",
                           "You must specify MoveToVersionId or "
                           "RemoveFromVersionId.")
    target = None
    if move_to is not None:
        target = s.versions.get(move_to)
        if target is None:
            raise not_found("Secrets Manager can't find the specified secret "
                            "value for VersionId: %s" % move_to)
    if remove_from is not None:
        if remove_from not in s.versions:
            raise not_found("Secrets Manager can't find the specified secret "
                            "value for VersionId: %s" % remove_from)
        if holder is None or holder.vid != remove_from:
            raise client_error(
                "InvalidParameterException",
                "The staging label %s is currently not attached to version "
                "%s, so you can't remove it from that version."
                % (stage, remove_from))
    if target is not None:
        if holder is target:
            return out      # already there: no-op
        if holder is not None and remove_from is None:
            raise client_error(
                "InvalidParameterException",
                "The parameter RemoveFromVersionId can't be empty. Staging "
                "label %s is currently attached to version %s, so you must "
                "explicitly reference that version in RemoveFromVersionId."
                % (stage, holder.vid))
        s.attach(target, stage)
    else:
        if stage == "AWSCURRENT":
            raise client_error(
                "InvalidParameterException",
                "You can only move staging label AWSCURRENT to a different "
                "secret version. It can't be completely removed.")
        holder.stages.remove(stage)
    s.touch()
    return out


def op_list_secret_version_ids(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    max_results = p_int(body, "MaxResults", 1, 100, default=100)
    next_token = p_str(body, "NextToken", minlen=1, maxlen=4096)
    include_dep = p_bool(body, "IncludeDeprecated", False)
    s = emu.store.get(sid)
    vs = [v for v in reversed(list(s.versions.values()))
          if include_dep or v.stages]
    start = 0
    if next_token is not None:
        try:
            start = int(base64.b64decode(next_token).decode())
            if start < 0 or start > len(vs):
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise client_error("InvalidNextTokenException",
                               "The NextToken value is invalid.")
    page = vs[start:start + max_results]
    out = {"ARN": s.arn, "Name": s.name, "Versions": []}
    for v in page:
        e = {"VersionId": v.vid, "VersionStages": list(v.stages),
             "CreatedDate": ts(v.created)}
        if v.last_accessed is not None:
            e["LastAccessedDate"] = day_ts(v.last_accessed)
        out["Versions"].append(e)
    if start + max_results < len(vs):
        out["NextToken"] = base64.b64encode(
            str(start + max_results).encode()).decode()
    return out


def op_get_random_password(emu, body):
    length = p_int(body, "PasswordLength", 1, 4096, default=32)
    exclude = p_str(body, "ExcludeCharacters", minlen=0, maxlen=4096) or ""
    pw = random_password(
        length, exclude,
        no_numbers=p_bool(body, "ExcludeNumbers", False),
        no_punct=p_bool(body, "ExcludePunctuation", False),
        no_upper=p_bool(body, "ExcludeUppercase", False),
        no_lower=p_bool(body, "ExcludeLowercase", False),
        space=p_bool(body, "IncludeSpace", False),
        require_each=p_bool(body, "RequireEachIncludedType", True))
    return {"RandomPassword": pw}


def op_delete_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    window = p_int(body, "RecoveryWindowInDays", 7, 30)
    force = p_bool(body, "ForceDeleteWithoutRecovery", False)
    if force and window is not None:
        raise client_error("InvalidParameterException",
                           "You can't use ForceDeleteWithoutRecovery in "
                           "conjunction with RecoveryWindowInDays.")
    s = emu.store.get(sid, allow_deleted=True)
    if force:
        del emu.store.secrets[s.name]
        return {"ARN": s.arn, "Name": s.name, "DeletionDate": ts(now())}
    if s.deleted_date is not None:
        raise client_error(
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was "
            "marked for deletion.")
    s.deleted_date = now()
    s.touch()
    return {"ARN": s.arn, "Name": s.name,
            "DeletionDate": ts(s.deleted_date + (window or 30) * 86400)}


def op_restore_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid, allow_deleted=True)
    s.deleted_date = None
    s.touch()
    return {"ARN": s.arn, "Name": s.name}


def op_rotate_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    token = p_token(body) or str(uuid.uuid4())
    lambda_arn = p_str(body, "RotationLambdaARN", maxlen=2048)
    rules = body.get("RotationRules")
    if rules is not None and not isinstance(rules, dict):
        raise client_error("SerializationException",
                           "Unexpected value type for field RotationRules")
    if rules is not None:
        days = rules.get("AutomaticallyAfterDays")
        if days is not None and (not isinstance(days, int) or
                                 not 1 <= days <= 1000):
            raise _verr("rotationRules.automaticallyAfterDays",
                        "Member must have value between 1 and 1000",
                        str(days))
    immediately = p_bool(body, "RotateImmediately", True)
    s = emu.store.get(sid)
    pending = s.holder("AWSPENDING")
    existing = s.versions.get(token)
    if existing is not None and existing is pending and \
            "AWSCURRENT" not in existing.stages:
        # retried call with the same token: nothing new
        return {"ARN": s.arn, "Name": s.name, "VersionId": token}
    if pending is not None and "AWSCURRENT" not in pending.stages:
        raise client_error("InvalidRequestException",
                           "A previous rotation isn't complete. That rotation "
                           "will be reattempted.")
    if existing is not None:
        raise client_error("ResourceExistsException",
                           "A version with the ClientRequestToken %s already "
                           "exists." % token)
    if lambda_arn is not None:
        s.rotation_lambda_arn = lambda_arn
    if rules is not None:
        s.rotation_rules = rules
    s.rotation_enabled = True
    s.touch()
    out = {"ARN": s.arn, "Name": s.name}
    if immediately:
        s.add_version(token, None, None, ["AWSPENDING"])
        out["VersionId"] = token
    return out


def op_cancel_rotate_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid)
    s.rotation_enabled = False
    out = {"ARN": s.arn, "Name": s.name}
    pending = s.holder("AWSPENDING")
    if pending is not None:
        out["VersionId"] = pending.vid
    s.touch()
    return out


def op_update_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    token = p_token(body) or str(uuid.uuid4())
    desc = p_str(body, "Description", maxlen=2048)
    kms = p_str(body, "KmsKeyId", maxlen=2048)
    kind, value = p_value(body)
    s = emu.store.get(sid)
    if desc is not None:
        s.description = desc
    if kms is not None:
        s.kms_key_id = kms
    out = {"ARN": s.arn, "Name": s.name}
    if kind is not None:
        v = s.versions.get(token)
        if v is not None:
            if v.kind != kind or v.value != value:
                raise client_error("ResourceExistsException",
                                   "You can't modify an existing version, "
                                   "you can only create a new version.")
        else:
            s.add_version(token, kind, value, ["AWSCURRENT"])
        out["VersionId"] = token
    s.touch()
    return out


def op_tag_resource(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid)
    tags = body.get("Tags") or []
    keep = [t for t in s.tags
            if t.get("Key") not in {n.get("Key") for n in tags}]
    s.tags = keep + list(tags)
    s.touch()
    return {}


def op_untag_resource(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid)
    keys = set(body.get("TagKeys") or [])
    s.tags = [t for t in s.tags if t.get("Key") not in keys]
    s.touch()
    return {}


def _list_filter(s, filters):
    for f in filters or []:
        key = f.get("Key")
        vals = f.get("Values") or []
        if key == "name":
            if not any(s.name.startswith(v) for v in vals):
                return False
        elif key == "description":
            if not any((s.description or "").startswith(v) for v in vals):
                return False
        elif key == "all":
            if not any(s.name.startswith(v) or
                       (s.description or "").startswith(v) for v in vals):
                return False
    return True


def op_list_secrets(emu, body):
    max_results = p_int(body, "MaxResults", 1, 100, default=100)
    next_token = p_str(body, "NextToken", minlen=1, maxlen=4096)
    filters = body.get("Filters")
    include_planned = p_bool(body, "IncludePlannedDeletion", False)
    items = [s for s in sorted(emu.store.secrets.values(),
                               key=lambda x: x.created)
             if _list_filter(s, filters) and
             (include_planned or s.deleted_date is None)]
    start = 0
    if next_token is not None:
        try:
            start = int(base64.b64decode(next_token).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise client_error("InvalidNextTokenException",
                               "The NextToken value is invalid.")
    out = {"SecretList": []}
    for s in items[start:start + max_results]:
        d = op_describe_secret(emu, {"SecretId": s.arn})
        d["SecretVersionsToStages"] = d.pop("VersionIdsToStages")
        out["SecretList"].append(d)
    if start + max_results < len(items):
        out["NextToken"] = base64.b64encode(
            str(start + max_results).encode()).decode()
    return out


def op_batch_get_secret_value(emu, body):
    ids = body.get("SecretIdList")
    filters = body.get("Filters")
    if ids is not None and filters is not None:
        raise client_error("InvalidParameterException",
                           "Either 'SecretIdList' or 'Filters' must be "
                           "provided, but not both.")
    if ids is None and filters is None:
        raise client_error("InvalidParameterException",
                           "Either 'SecretIdList' or 'Filters' must be "
                           "provided.")
    if ids is not None:
        if not isinstance(ids, list) or \
                not all(isinstance(i, str) for i in ids):
            raise client_error("SerializationException",
                               "Unexpected value type for field "
                               "SecretIdList")
        if len(ids) < 1 or len(ids) > 20:
            raise _verr("secretIdList",
                        "Member must have length less than or equal to 20"
                        if ids else
                        "Member must have length greater than or equal to 1")
        for i in ids:
            if len(i) < 1 or len(i) > 2048:
                raise _verr("secretIdList", "Member must satisfy constraint: "
                            "[Member must have length less than or equal to "
                            "2048, Member must have length greater than or "
                            "equal to 1]")
        next_page = None
    else:
        max_results = p_int(body, "MaxResults", 1, 20, default=20)
        listed = op_list_secrets(emu, {"Filters": filters,
                                       "MaxResults": max_results,
                                       "NextToken": body.get("NextToken")})
        ids = [d["ARN"] for d in listed["SecretList"]]
        next_page = listed.get("NextToken")
    out = {"SecretValues": [], "Errors": []}
    for i in ids:
        try:
            if emu.is_denied("GetSecretValue", i) or \
                    emu.is_denied("BatchGetSecretValue", i):
                raise client_error("AccessDeniedException",
                                   access_denied_message("GetSecretValue", i))
            emu.iam.check_secret_call(emu.request_key, "GetSecretValue",
                                      emu.store.find(i), i)
            out["SecretValues"].append(
                op_get_secret_value(emu, {"SecretId": i}))
        except ApiError as e:
            out["Errors"].append({"SecretId": i, "ErrorCode": e.etype,
                                  "Message": e.message})
    if next_page:
        out["NextToken"] = next_page
    return out


def access_denied_message(op, secret_id):
    return ("User: arn:aws:iam::%s:user/secretsmgr-test is not authorized to "
            "perform: secretsmanager:%s on resource: %s because no "
            "identity-based policy allows the secretsmanager:%s action"
            % (ACCOUNT_ID, op, secret_id, op))


# operations whose IAM resource is "*" (no resource-level permissions)
IAM_UNSCOPED = ("GetRandomPassword", "ListSecrets", "BatchGetSecretValue")


def iam_check_call(emu, policy_key, op, body):
    """The IAM check of one API call, before it runs (under emu.lock).
    BatchGetSecretValue's per-secret GetSecretValue checks happen inside it
    and land in its Errors."""
    if policy_key not in emu.iam.policies:
        return
    if op in IAM_UNSCOPED:
        err = emu.iam.denial(policy_key, "secretsmanager:" + op, "*")
        if err is None and op == "BatchGetSecretValue" and \
                body.get("Filters") is not None:
            err = emu.iam.denial(policy_key, "secretsmanager:ListSecrets",
                                 "*")
        if err is not None:
            raise err
        return
    sid = body.get("Name") if op == "CreateSecret" else body.get("SecretId")
    if not isinstance(sid, str):
        return      # the operation's own validation answers
    emu.iam.check_secret_call(policy_key, op, emu.store.find(sid), sid)


HANDLERS = {
    "CreateSecret": op_create_secret,
    "DescribeSecret": op_describe_secret,
    "GetSecretValue": op_get_secret_value,
    "PutSecretValue": op_put_secret_value,
    "UpdateSecretVersionStage": op_update_secret_version_stage,
    "ListSecretVersionIds": op_list_secret_version_ids,
    "GetRandomPassword": op_get_random_password,
    "DeleteSecret": op_delete_secret,
    "RestoreSecret": op_restore_secret,
    "RotateSecret": op_rotate_secret,
    "CancelRotateSecret": op_cancel_rotate_secret,
    "BatchGetSecretValue": op_batch_get_secret_value,
    "ListSecrets": op_list_secrets,
    "UpdateSecret": op_update_secret,
    "TagResource": op_tag_resource,
    "UntagResource": op_untag_resource,
}


# ---------------------------------------------------------------------------
# Dialects: valid answers other Secrets Manager implementations give
# ---------------------------------------------------------------------------
# Each switch makes the emulator answer the way some other implementation
# of the API does, within what the API reference and botocore allow, so the
# client is tested against more than this emulator's habits.  Switched on
# with --dialect NAME[,NAME...] or POST /_admin/dialect; see README.md.

DIALECTS = {
    "empty-next-token":
        "the last page of a list carries \"NextToken\": \"\", and a request "
        "with an empty NextToken reads the first page",
    "sparse":
        "optional response fields are left out: CreatedDate, "
        "VersionStages and Name of a secret value (Name kept in batches), "
        "CreatedDate, LastChangedDate, LastAccessedDate and a false "
        "RotationEnabled of DescribeSecret, the ARN and Name of a version "
        "list and its versions' CreatedDate and empty VersionStages, Name "
        "and VersionStages of every other answer",
    "integer-timestamps":
        "timestamps are whole epoch seconds (1700000000, not 1700000000.123)",
    "capital-message":
        "error bodies carry \"Message\" instead of \"message\"",
    "xml-auth-errors":
        "signature and credential failures are answered with an XML "
        "ErrorResponse (text/xml) and the same HTTP status",
    "stale-default":
        "GetSecretValue with neither VersionStage nor VersionId answers the "
        "version holding AWSPREVIOUS (a stale default), not AWSCURRENT",
    # Not a valid implementation: an endpoint that pages in a loop.
    "repeated-next-token":
        "every page of ListSecretVersionIds names the same NextToken, which "
        "reads the first page again (a broken endpoint, for the client's "
        "paging guard)",
    "endless-next-token":
        "every page of ListSecretVersionIds names a new NextToken, each "
        "reading the first page again (a broken endpoint, for the client's "
        "page cap)",
}

REPEATED_TOKEN = "c21lbXUtcmVwZWF0ZWQ="
ENDLESS_TOKEN = "c21lbXUtZW5kbGVzcw-"
TIMESTAMP_KEYS = ("CreatedDate", "LastChangedDate", "LastAccessedDate",
                  "LastRotatedDate", "DeletedDate", "NextRotationDate")
AUTH_ERROR_TYPES = ("MissingAuthenticationTokenException",
                    "IncompleteSignature", "UnrecognizedClientException",
                    "InvalidSignatureException", "ExpiredTokenException")


def parse_dialects(value):
    """'a,b' -> {'a', 'b'}; raises ValueError on an unknown name."""
    names = value if isinstance(value, list) else \
        [n for n in (value or "").split(",") if n.strip()]
    out = set()
    for n in names:
        if not isinstance(n, str) or n.strip() not in DIALECTS:
            raise ValueError("unknown dialect %r (one of %s)"
                             % (n, ", ".join(sorted(DIALECTS))))
        out.add(n.strip())
    return out


def dialect_request(emu, op, body):
    """The request as the handlers see it under emu's dialects."""
    d = emu.dialects
    if op in ("ListSecretVersionIds", "ListSecrets"):
        tok = body.get("NextToken")
        if ("empty-next-token" in d and tok == "") or \
                ("repeated-next-token" in d and tok == REPEATED_TOKEN) or \
                ("endless-next-token" in d and isinstance(tok, str) and
                 tok.startswith(ENDLESS_TOKEN)):
            body = dict(body)
            del body["NextToken"]
    if op == "GetSecretValue" and "stale-default" in d and \
            body.get("VersionStage") is None and \
            body.get("VersionId") is None:
        s = emu.store.get(body.get("SecretId") or "-")
        old = s.holder("AWSPREVIOUS")
        if old is not None and old.kind is not None:
            body = dict(body)
            body["VersionId"] = old.vid
    return body


def _drop(obj, *keys):
    for k in keys:
        obj.pop(k, None)


def _int_timestamps(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in TIMESTAMP_KEYS and isinstance(v, float):
                obj[k] = int(v)
            else:
                _int_timestamps(v)
    elif isinstance(obj, list):
        for v in obj:
            _int_timestamps(v)


def dialect_response(emu, op, result):
    """The answer of op under emu's dialects (result may be changed)."""
    d = emu.dialects
    if op in ("ListSecretVersionIds", "ListSecrets"):
        if "empty-next-token" in d and not result.get("NextToken"):
            result["NextToken"] = ""
        if "repeated-next-token" in d and op == "ListSecretVersionIds":
            result["NextToken"] = REPEATED_TOKEN
        if "endless-next-token" in d and op == "ListSecretVersionIds":
            emu.endless_pages = getattr(emu, "endless_pages", 0) + 1
            result["NextToken"] = "%s%d" % (ENDLESS_TOKEN, emu.endless_pages)
    if "sparse" in d:
        if op == "GetSecretValue":
            _drop(result, "Name", "CreatedDate", "VersionStages")
        elif op == "BatchGetSecretValue":
            for v in result.get("SecretValues", []):
                _drop(v, "CreatedDate", "VersionStages")
        elif op == "DescribeSecret":
            _drop(result, "CreatedDate", "LastChangedDate",
                  "LastAccessedDate")
            if result.get("RotationEnabled") is False:
                del result["RotationEnabled"]
        elif op == "ListSecretVersionIds":
            _drop(result, "ARN", "Name")
            for v in result.get("Versions", []):
                _drop(v, "CreatedDate", "LastAccessedDate")
                if not v.get("VersionStages"):
                    v.pop("VersionStages", None)
        else:
            _drop(result, "Name", "VersionStages")
    if "integer-timestamps" in d:
        _int_timestamps(result)
    return result


def dialect_error(emu, e):
    """(content type, body) of the error e under emu's dialects."""
    d = emu.dialects
    if "xml-auth-errors" in d and e.etype in AUTH_ERROR_TYPES:
        def esc(s):
            return (s.replace("&", "&amp;").replace("<", "&lt;")
                    .replace(">", "&gt;"))
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<ErrorResponse xmlns="https://secretsmanager.amazonaws.com/'
                'doc/2017-10-17/"><Error><Type>Sender</Type><Code>%s</Code>'
                '<Message>%s</Message></Error><RequestId>%s</RequestId>'
                '</ErrorResponse>\n' % (esc(e.etype), esc(e.message),
                                        uuid.uuid4()))
        return "text/xml", body
    key = "Message" if "capital-message" in d else "message"
    return "application/x-amz-json-1.1", json.dumps({"__type": e.etype,
                                                     key: e.message})


# ---------------------------------------------------------------------------
# Signature verification
# ---------------------------------------------------------------------------

AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)
REQUIRED_SIGNED = ("content-type", "host", "x-amz-date", "x-amz-target")


def sig_error(etype, message, status=403):
    return ApiError(status, etype, message)


def parse_authorization(value):
    if value is None or not value.strip():
        raise sig_error("MissingAuthenticationTokenException",
                        "Missing Authentication Token")
    m = AUTH_RE.match(value.strip())
    if not m:
        if value.strip().startswith("AWS4-HMAC-SHA256"):
            raise sig_error("IncompleteSignature",
                            "Authorization header requires 'Credential' "
                            "parameter. Authorization header requires "
                            "'Signature' parameter. Authorization header "
                            "requires 'SignedHeaders' parameter.")
        raise sig_error("IncompleteSignature",
                        "Authorization header must use the "
                        "AWS4-HMAC-SHA256 algorithm. Authorization=%s"
                        % value.split(" ", 1)[0][:40])
    params = {}
    for part in m.group(1).split(","):
        part = part.strip()
        if not part:
            continue
        k, eq, v = part.partition("=")
        if not eq:
            raise sig_error("IncompleteSignature",
                            "'%s' not a valid key=value pair (missing equal-"
                            "sign) in Authorization header." % part[:40])
        params[k.strip()] = v.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature")
               if not params.get(k)]
    if missing:
        raise sig_error("IncompleteSignature",
                        " ".join("Authorization header requires '%s' "
                                 "parameter." % k for k in missing))
    scope = params["Credential"].split("/")
    if len(scope) != 5:
        raise sig_error("IncompleteSignature",
                        "Credential should have 5 parts: "
                        "<akid>/<date>/<region>/<service>/aws4_request.")
    if not re.match(r"^[0-9a-f]{64}$", params["Signature"]):
        raise sig_error("IncompleteSignature",
                        "Signature must be 64 lowercase hexadecimal "
                        "characters.")
    signed = params["SignedHeaders"].split(";")
    return scope, signed, params["Signature"]


def verify_signature(emu, handler, body):
    """Raises ApiError unless the request is correctly signed; returns the
    key its IAM policy is attached under (the access key, or
    IamPolicies.TEMPORARY for an issued temporary credential)."""
    scope, signed, signature = parse_authorization(
        handler.headers.get("Authorization"))
    akid, sdate, region, service, term = scope
    amz_date = handler.headers.get("X-Amz-Date")
    if amz_date is None:
        raise sig_error("IncompleteSignature",
                        "Authorization header requires existence of either a "
                        "'X-Amz-Date' or a 'Date' header.")
    if not AMZ_DATE_RE.match(amz_date.strip()):
        raise sig_error("IncompleteSignature",
                        "Date must be in ISO-8601 'basic format'. Got '%s'."
                        % amz_date[:40])
    amz_date = amz_date.strip()
    lower_signed = [h.lower() for h in signed]
    if lower_signed != sorted(lower_signed) or \
            len(set(lower_signed)) != len(lower_signed) or \
            signed != lower_signed:
        raise sig_error("InvalidSignatureException",
                        "The SignedHeaders list must be lower-case, sorted "
                        "and without duplicates.")
    for h in REQUIRED_SIGNED:
        if h not in lower_signed:
            raise sig_error("InvalidSignatureException",
                            "'%s' must be a 'SignedHeader' in the AWS "
                            "Authorization." % "-".join(
                                p.capitalize() for p in h.split("-")))
    if service != SERVICE or term != "aws4_request":
        raise sig_error("InvalidSignatureException",
                        "Credential should be scoped to correct service: "
                        "'%s'." % SERVICE)
    if region != emu.args.region:
        raise sig_error("InvalidSignatureException",
                        "Credential should be scoped to a valid region.")
    if sdate != amz_date[:8]:
        raise sig_error("InvalidSignatureException",
                        "Date in Credential scope does not match YYYYMMDD "
                        "from ISO-8601 version of date from HTTP: '%s' != "
                        "'%s', from '%s'." % (sdate, amz_date[:8], amz_date))

    token_hdr = handler.headers.get("X-Amz-Security-Token")
    with emu.lock:
        secret_key = emu.static_keys.get(akid)
        temp = emu.temp_keys.get(akid)
    token = None
    if secret_key is None and temp is None:
        raise sig_error("UnrecognizedClientException",
                        "The security token included in the request is "
                        "invalid.")
    if temp is not None:
        secret_key, token, expiry = temp
        if token_hdr is None or not hmac.compare_digest(
                token_hdr.strip().encode(), token.encode()):
            raise sig_error("UnrecognizedClientException",
                            "The security token included in the request is "
                            "invalid.")
        if "x-amz-security-token" not in lower_signed:
            raise sig_error("InvalidSignatureException",
                            "'X-Amz-Security-Token' must be a 'SignedHeader' "
                            "in the AWS Authorization.")
        if now() >= expiry:
            raise ApiError(400, "ExpiredTokenException",
                           "The security token included in the request is "
                           "expired")
    elif token_hdr is not None:
        raise sig_error("UnrecognizedClientException",
                        "The security token included in the request is "
                        "invalid.")

    t = amz_date_to_epoch(amz_date)
    cur = now()
    if t < cur - MAX_SKEW_SECONDS:
        raise sig_error("InvalidSignatureException",
                        "Signature expired: %s is now earlier than %s (%s - "
                        "5 min.)" % (amz_date,
                                     epoch_to_amz(cur - MAX_SKEW_SECONDS),
                                     epoch_to_amz(cur)))
    if t > cur + MAX_SKEW_SECONDS:
        raise sig_error("InvalidSignatureException",
                        "Signature not yet current: %s is still later than "
                        "%s (%s + 5 min.)" % (
                            amz_date, epoch_to_amz(cur + MAX_SKEW_SECONDS),
                            epoch_to_amz(cur)))

    # Rebuild the request from the signed headers only, and let botocore's
    # SigV4 signer compute what the signature must be.
    for h in lower_signed:
        if h in SIGNED_HEADERS_BLACKLIST:
            raise sig_error("InvalidSignatureException",
                            "Header '%s' cannot be signed." % h)
        if handler.headers.get_all(h) is None:
            raise sig_error("InvalidSignatureException",
                            "The request signature we calculated does not "
                            "match the signature you provided. Signed header "
                            "'%s' is missing from the request." % h)
    sha_hdr = handler.headers.get("X-Amz-Content-SHA256")
    if sha_hdr is not None and \
            sha_hdr.strip() != hashlib.sha256(body).hexdigest():
        raise sig_error("InvalidSignatureException",
                        "The provided 'x-amz-content-sha256' header does not "
                        "match what was computed.", status=400)
    host = handler.headers.get("Host")
    req = AWSRequest(method=handler.command,
                     url="http://%s%s" % (host, handler.path),
                     data=body)
    for h in lower_signed:
        for v in handler.headers.get_all(h):
            req.headers.add_header(h, v)
    req.context["timestamp"] = amz_date
    creds = Credentials(akid, secret_key, token)
    signer = SigV4Auth(creds, SERVICE, region)
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    if signer.signed_headers(signer.headers_to_sign(req)) != \
            ";".join(lower_signed) or \
            not hmac.compare_digest(expected.encode(), signature.encode()):
        raise sig_error(
            "InvalidSignatureException",
            "The request signature we calculated does not match the "
            "signature you provided. Check your AWS Secret Access Key and "
            "signing method. Consult the service documentation for details.")
    return IamPolicies.TEMPORARY if temp is not None else akid


# ---------------------------------------------------------------------------
# HTTP handler
# ---------------------------------------------------------------------------

OVERSIZED_BYTES = 2 * 1024 * 1024 + 4096


class Handler(BaseHTTPRequestHandler):
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
            if path.startswith("/_admin/"):
                self.handle_admin(path, body, start)
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

    # --- faults ------------------------------------------------------------
    def serve_fault(self, f, op, secret_id, start, api=True):
        """Serves a fault.  Returns True if the request is answered (or
        dropped), False if it must then be answered normally (delay)."""
        emu = self.emu
        kind = f["fault"]
        delay = f["delay_ms"]
        label = "%s[%s]" % (op, kind)
        if kind == "delay":
            time.sleep((delay or 0) / 1000.0)
            return False
        if kind == "hang":
            time.sleep((delay if delay is not None else 60000) / 1000.0)
            emu.record(label, secret_id, 0, self.elapsed_us(start))
            self.drop()
            return True
        if kind == "drop":
            emu.record(label, secret_id, 0, self.elapsed_us(start))
            self.drop()
            return True
        if delay:
            time.sleep(delay / 1000.0)
        json_ct = "application/x-amz-json-1.1" if api else "application/json"
        if kind == "throttle":
            status, body, ct = 400, {"__type": "ThrottlingException",
                                     "message": "Rate exceeded"}, json_ct
        elif kind == "error500":
            status, body, ct = 500, {"__type": "InternalServiceError",
                                     "message": "An error occurred on the "
                                     "server side."}, json_ct
        elif kind == "error503":
            status, body, ct = 503, {"__type": "ServiceUnavailable",
                                     "message": "Service is unable to handle "
                                     "request."}, json_ct
        elif kind == "access_denied":
            status, body, ct = 400, {
                "__type": "AccessDeniedException",
                "Message": access_denied_message(op, secret_id)}, json_ct
        elif kind == "expired_token":
            status, body, ct = 400, {"__type": "ExpiredTokenException",
                                     "message": "The security token included "
                                     "in the request is expired"}, json_ct
        elif kind == "decryption_failure":
            status, body, ct = 400, {"__type": "DecryptionFailure",
                                     "Message": "Secrets Manager can't "
                                     "decrypt the protected secret text "
                                     "using the provided KMS key."}, json_ct
        elif kind == "stage_mismatch":
            # what several implementations answer a GetSecretValue whose
            # VersionId does not hold its VersionStage
            status, body, ct = 400, {"__type": "InvalidRequestException",
                                     "Message": "You provided a VersionStage "
                                     "that is not associated to the provided "
                                     "VersionId."}, json_ct
        elif kind == "malformed":
            status, ct = 200, json_ct
            body = b'{"ARN": "arn:aws:secretsmanager:truncated", "Name": "tr'
        elif kind == "oversized":
            status, ct = 200, json_ct
            body = json.dumps({"ARN": "arn:aws:secretsmanager:%s:%s:secret:"
                               "oversized-AAAAAA" % (emu.args.region,
                                                     ACCOUNT_ID),
                               "Name": "oversized",
                               "VersionId": str(uuid.uuid4()),
                               "SecretString": "x" * OVERSIZED_BYTES,
                               "VersionStages": ["AWSCURRENT"],
                               "CreatedDate": ts(now())})
        elif kind == "html403":
            status, ct = 403, "text/html"
            body = ("<html><head><title>403 Forbidden</title></head><body>"
                    "<h1>403 Forbidden</h1><p>Request blocked.</p>"
                    "</body></html>\n")
        elif kind == "empty403":
            status, ct, body = 403, json_ct, b""
        elif kind == "xml_error":
            status, ct = 500, "text/xml"
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse>'
                    '<Error><Type>Receiver</Type><Code>InternalFailure</Code>'
                    '<Message>An internal error occurred.</Message></Error>'
                    '<RequestId>%s</RequestId></ErrorResponse>\n'
                    % uuid.uuid4())
        else:
            status, body, ct = 500, {"__type": "InternalServiceError",
                                     "message": "unknown fault"}, json_ct
        if isinstance(body, dict):
            body = json.dumps(body)
        self.send(status, body, ct)
        emu.record(label, secret_id, status, self.elapsed_us(start))
        return True

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

    # --- ECS container credentials -----------------------------------------
    def handle_ecs(self, path, start):
        emu = self.emu
        with emu.lock:
            emu.cred_hits["ecs"] += 1
        if self.command != "GET" or path != "/ecs/credentials":
            self.send_json(404, {"message": "not found"}, "application/json")
            emu.record("ecs", None, 404, self.elapsed_us(start))
            return
        want = emu.args.ecs_token
        if want is not None:
            got = self.headers.get("Authorization")
            if got is None or not hmac.compare_digest(got.encode(),
                                                      want.encode()):
                self.send_json(401, {"message": "Unauthorized"},
                               "application/json")
                emu.record("ecs", None, 401, self.elapsed_us(start))
                return
        f = emu.take_fault("ecs")
        if f is not None and self.serve_fault(f, "ecs", None, start,
                                              api=False):
            return
        akid, secret, token, expiry = emu.issue_temp()
        self.send_json(200, {
            "RoleArn": "arn:aws:iam::%s:role/%s" % (ACCOUNT_ID, ROLE_NAME),
            "AccessKeyId": akid, "SecretAccessKey": secret, "Token": token,
            "Expiration": iso_z(expiry)}, "application/json")
        emu.record("ecs", None, 200, self.elapsed_us(start))

    # --- EC2 IMDSv2 --------------------------------------------------------
    def handle_imds(self, path, start):
        emu = self.emu
        creds_prefix = "/latest/meta-data/iam/security-credentials/"
        if path == "/latest/api/token":
            key = "imds_token"
        elif path.startswith(creds_prefix) and path != creds_prefix:
            key = "imds_creds"
        else:
            key = "imds_list"
        with emu.lock:
            emu.cred_hits[key] = emu.cred_hits.get(key, 0) + 1

        def answer(status, text, ctype="text/plain"):
            self.send(status, text, ctype)
            emu.record(key, None, status, self.elapsed_us(start))

        f = emu.take_fault("imds")
        if f is not None and self.serve_fault(f, key, None, start, api=False):
            return
        if path == "/latest/api/token":
            if self.command != "PUT":
                return answer(405, "")
            if self.headers.get("X-Forwarded-For") is not None:
                return answer(403, "")
            ttl = self.headers.get("x-aws-ec2-metadata-token-ttl-seconds")
            try:
                ttl = int(ttl)
                if not 1 <= ttl <= 21600:
                    raise ValueError
            except (TypeError, ValueError):
                return answer(400, "")
            tok = base64.urlsafe_b64encode(secrets.token_bytes(40)).decode()
            with emu.lock:
                emu.imds_tokens[tok] = now() + ttl
            self.send(200, tok, "text/plain",
                      {"x-aws-ec2-metadata-token-ttl-seconds": str(ttl)})
            emu.record(key, None, 200, self.elapsed_us(start))
            return
        if self.command != "GET":
            return answer(405, "")
        tok = self.headers.get("x-aws-ec2-metadata-token")
        with emu.lock:
            exp = emu.imds_tokens.get(tok) if tok else None
        if exp is None or exp <= now():
            return answer(401, "")
        if path == creds_prefix:
            return answer(200, ROLE_NAME)
        if path == creds_prefix + ROLE_NAME:
            akid, secret, token, expiry = emu.issue_temp()
            return answer(200, json.dumps({
                "Code": "Success", "LastUpdated": iso_z(now()),
                "Type": "AWS-HMAC", "AccessKeyId": akid,
                "SecretAccessKey": secret, "Token": token,
                "Expiration": iso_z(expiry)}), "text/plain")
        return answer(404, "")

    # --- admin -------------------------------------------------------------
    def handle_admin(self, path, body, start):
        emu = self.emu
        try:
            try:
                req = json.loads(body.decode("utf-8")) if body else {}
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "BadRequest", "body is not JSON")
            if not isinstance(req, dict):
                raise ApiError(400, "BadRequest", "body must be an object")
            name = path[len("/_admin/"):]
            fn = getattr(self, "admin_%s_%s" % (
                self.command.lower(), name.replace("-", "_")), None)
            if fn is None:
                raise ApiError(404, "NotFound", "no such admin call: %s %s"
                               % (self.command, path))
            out = fn(req)
            self.send_json(200, out if out is not None else {"ok": True},
                           "application/json")
            emu.record("admin:" + name, None, 200, self.elapsed_us(start),
                       counted=False)
        except ApiError as e:
            self.send_json(e.status, {"error": e.etype,
                                      "message": e.message},
                           "application/json")
            emu.record("admin", None, e.status, self.elapsed_us(start),
                       counted=False)

    def query(self):
        return {k: v[-1] for k, v in
                parse_qs(urlsplit(self.path).query).items()}

    def admin_get_health(self, req):
        return {"ok": True, "region": self.emu.args.region}

    def admin_post_fault(self, req):
        op = req.get("operation")
        fault = req.get("fault")
        count = req.get("count", 1)
        delay = req.get("delay_ms")
        sid = req.get("secret_id")
        if not isinstance(op, str) or not (op in OPERATIONS or op == "*" or
                                           op in CRED_KEYS):
            raise ApiError(400, "BadRequest", "unknown operation %r" % (op,))
        if fault not in FAULTS:
            raise ApiError(400, "BadRequest", "unknown fault %r (one of %s)"
                           % (fault, ", ".join(FAULTS)))
        if isinstance(count, bool) or not isinstance(count, int) or \
                count < 1 or count > 100000:
            raise ApiError(400, "BadRequest", "count must be 1..100000")
        if delay is not None and (isinstance(delay, bool) or
                                  not isinstance(delay, (int, float)) or
                                  delay < 0):
            raise ApiError(400, "BadRequest", "delay_ms must be >= 0")
        if fault == "delay" and delay is None:
            raise ApiError(400, "BadRequest", "delay needs delay_ms")
        if sid is not None and not isinstance(sid, str):
            raise ApiError(400, "BadRequest", "secret_id must be a string")
        queued = self.emu.add_fault(op, fault, count, delay, sid)
        return {"ok": True, "queued": queued}

    def admin_get_faults(self, req):
        with self.emu.lock:
            return {"faults": {k: list(v) for k, v in self.emu.faults.items()
                               if v}}

    def _deny_args(self, req):
        sid = req.get("secret_id")
        op = req.get("operation")
        if not isinstance(sid, str) or not sid:
            raise ApiError(400, "BadRequest", "secret_id is required")
        if op is not None and op not in OPERATIONS:
            raise ApiError(400, "BadRequest", "unknown operation %r" % (op,))
        return sid, op

    def admin_post_deny(self, req):
        sid, op = self._deny_args(req)
        with self.emu.lock:
            s = self.emu.store.find(sid)
            self.emu.denies.append((s.name if s else sid, op))

    def admin_post_allow(self, req):
        sid, op = self._deny_args(req)
        emu = self.emu
        with emu.lock:
            emu.denies = [(d, o) for d, o in emu.denies
                          if not (emu.same_secret(d, sid) and
                                  (op is None or o == op))]

    def admin_post_iam_policy(self, req):
        """Attach an IAM identity policy to an access key (policy null:
        detach); secret_key also registers the key pair."""
        emu = self.emu
        akid = req.get("access_key")
        secret = req.get("secret_key")
        principal = req.get("principal")
        if not isinstance(akid, str) or not akid:
            raise ApiError(400, "BadRequest", "access_key is required")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise ApiError(400, "BadRequest", "secret_key must be a string")
        if principal is not None and (not isinstance(principal, str) or
                                      not re.match(r"^[\w+=,.@-]{1,64}$",
                                                   principal)):
            raise ApiError(400, "BadRequest", "principal must be a user name")
        if "policy" not in req:
            raise ApiError(400, "BadRequest",
                           "policy is required (null detaches)")
        with emu.lock:
            if secret is not None:
                emu.static_keys[akid] = secret
            elif akid not in emu.static_keys and \
                    akid != IamPolicies.TEMPORARY:
                raise ApiError(400, "BadRequest", "unknown access key %s "
                               "(give secret_key to add it)" % akid)
            try:
                emu.iam.attach(akid, req["policy"], principal)
            except IamPolicyError as e:
                raise ApiError(400, "BadRequest", "policy: %s" % e)

    def admin_get_iam_policies(self, req):
        with self.emu.lock:
            return {"policies": self.emu.iam.describe()}

    def admin_post_reset(self, req):
        emu = self.emu
        with emu.lock:
            emu.faults.clear()
            emu.iam.clear()
            emu.denies = []
            emu.reset_counters()
            if req.get("state"):
                emu.store.secrets.clear()

    def admin_get_calls(self, req):
        emu = self.emu
        with emu.lock:
            return {"calls": dict(emu.calls),
                    "credential_hits": dict(emu.cred_hits),
                    "signature_failures": emu.sig_failures,
                    "recent": list(emu.recent)}

    def admin_post_expire_credentials(self, req):
        """Makes every temporary credential issued so far expire now."""
        emu = self.emu
        with emu.lock:
            for k, (s, t, _e) in list(emu.temp_keys.items()):
                emu.temp_keys[k] = (s, t, now() - 1)
            return {"expired": len(emu.temp_keys)}

    def admin_post_secret(self, req):
        emu = self.emu
        name = req.get("Name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "BadRequest", "Name is required")
        vid = req.get("VersionId") or str(uuid.uuid4())
        stages = req.get("VersionStages") or ["AWSCURRENT"]
        try:
            kind, value = p_value(req)
        except ApiError as e:
            raise ApiError(400, "BadRequest", e.message)
        if kind is None:
            raise ApiError(400, "BadRequest",
                           "SecretString or SecretBinary is required")
        with emu.lock:
            s = emu.store.find(name)
            if s is None:
                s = emu.store.create(name, req.get("Description"))
            elif req.get("Description") is not None:
                s.description = req["Description"]
            if req.get("KmsKeyId"):
                s.kms_key_id = req["KmsKeyId"]
            if vid in s.versions:
                raise ApiError(400, "BadRequest",
                               "version %s already exists" % vid)
            s.add_version(vid, kind, value, stages)
            s.touch()
            return {"ARN": s.arn, "Name": s.name, "VersionId": vid}

    def admin_get_secret(self, req):
        emu = self.emu
        sid = self.query().get("id")
        if not sid:
            raise ApiError(400, "BadRequest", "id= is required")
        with emu.lock:
            s = emu.store.find(sid)
            if s is None:
                raise ApiError(404, "NotFound", "no secret %s" % sid)
            out = {"ARN": s.arn, "Name": s.name,
                   "Description": s.description,
                   "RotationEnabled": s.rotation_enabled,
                   "RotationLambdaARN": s.rotation_lambda_arn,
                   "RotationRules": s.rotation_rules,
                   "LastRotatedDate": ts(s.last_rotated),
                   "DeletedDate": ts(s.deleted_date),
                   "Versions": []}
            for v in s.versions.values():
                e = {"VersionId": v.vid, "VersionStages": list(v.stages),
                     "CreatedDate": ts(v.created)}
                if v.kind is not None:
                    e.update(value_fields(v))
                else:
                    e["Placeholder"] = True
                out["Versions"].append(e)
            return out

    def admin_get_values(self, req):
        with SEEN_LOCK:
            return {"values": sorted(SEEN_VALUES)}

    def admin_get_secrets(self, req):
        with self.emu.lock:
            return {"secrets": sorted(self.emu.store.secrets)}

    # --- dialects (see DIALECTS) --------------------------------------------
    def admin_get_dialect(self, req):
        with self.emu.lock:
            return {"dialects": sorted(self.emu.dialects),
                    "known": DIALECTS}

    def admin_post_dialect(self, req):
        """{"set": [...]} replaces the switches; {"add": [...]},
        {"remove": [...]} change them.  Answers the switches now on."""
        try:
            new = {k: parse_dialects(req.get(k) or [])
                   for k in ("set", "add", "remove")}
        except ValueError as e:
            raise ApiError(400, "BadRequest", str(e))
        with self.emu.lock:
            if "set" in req:
                self.emu.dialects = new["set"]
            self.emu.dialects |= new["add"]
            self.emu.dialects -= new["remove"]
            return {"dialects": sorted(self.emu.dialects)}

    def admin_post_shutdown(self, req):
        threading.Thread(target=self.server.shutdown, daemon=True).start()


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


if __name__ == "__main__":
    sys.exit(main())
