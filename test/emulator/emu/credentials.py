"""The credential endpoints: ECS container credentials and EC2 IMDSv2,
issuing temporary keys the API then accepts (a mixin of the HTTP handler).
"""

import base64
import hmac
import json
import secrets

from .common import ACCOUNT_ID, ROLE_NAME, iso_z, now


class CredentialsMixin:
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
