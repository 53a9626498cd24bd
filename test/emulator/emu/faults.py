"""Fault answers (throttle, 5xx, hang, drop, malformed and oversized bodies,
...) served after a request's signature is verified, as a mixin of the
HTTP handler.
"""

import json
import time
import uuid

from .common import ACCOUNT_ID, now, ts
from .iam import access_denied_message


OVERSIZED_BYTES = 2 * 1024 * 1024 + 4096


class FaultsMixin:
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
