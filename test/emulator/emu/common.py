"""Constants, the AWS error type and time helpers shared by every module.
"""

import datetime
import re
import time


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
    "lost_answer",      # performed, answer dropped: emu/lost_answer.py
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
