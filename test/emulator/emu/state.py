"""The emulator's state: store, keys, credentials issued, faults queued,
denies, counters and the request log.
"""

import base64
import datetime
import json
import re
import secrets
import string
import threading
from collections import deque

from .common import ACCOUNT_ID, now
from .iam import IamPolicies
from .store import Store
from .sts import Sts


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
        self.sts = Sts(self)
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
