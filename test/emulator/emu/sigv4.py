"""SigV4 check of every API request: the Authorization header parsed, the
scope, date and key checked, and the signature recomputed with botocore's
own signer from the signed headers and the exact body.
"""

import hmac
import hashlib
import re

from botocore.auth import SigV4Auth, SIGNED_HEADERS_BLACKLIST
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .common import (
    AMZ_DATE_RE, ApiError, MAX_SKEW_SECONDS, SERVICE, amz_date_to_epoch,
    epoch_to_amz, now)
from .iam import IamPolicies


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
    emu.sts.note_signer(akid)
    return IamPolicies.TEMPORARY if temp is not None else akid
