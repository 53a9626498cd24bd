"""IAM identity policies per access key, evaluated as IAM evaluates an
identity-based policy, and the IAM check of one API call.
"""

import re

from .common import ACCOUNT_ID, client_error


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
