"""The secret store: secrets, versions and staging labels with AWS's
documented semantics, and the list of every value ever stored (for the
tests' leak checks).
"""

import base64
import json
import secrets
import string
import threading

from .common import (
    ACCOUNT_ID, MAX_LABELS_PER_VERSION, MAX_VERSIONS, client_error, not_found,
    now)


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
