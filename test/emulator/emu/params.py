"""Request parameter validation: the API model's constraints answered with
ValidationException (values never echoed), as AWS does.
"""

import base64
import binascii

from .common import MAX_LABELS_PER_VERSION, MAX_VALUE_BYTES, client_error


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
