"""The unauthenticated admin API (/_admin/...): faults, denies, IAM
policies, counters, secrets, dialects (a mixin of the HTTP handler).
"""

import json
import re
import threading
import uuid
from urllib.parse import urlsplit, parse_qs

from .common import ApiError, CRED_KEYS, FAULTS, OPERATIONS, now, ts
from .dialects import DIALECTS, parse_dialects
from .iam import IamPolicies, IamPolicyError
from .params import p_value
from .store import SEEN_LOCK, SEEN_VALUES, value_fields


class AdminMixin:
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
