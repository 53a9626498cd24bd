"""Dialects: valid answers other Secrets Manager implementations give
(README.md, "Dialects").
"""

import json
import uuid


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
