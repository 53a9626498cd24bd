"""The Secrets Manager API operations.  Each takes (emu, body), runs under
emu.lock and returns the answer as a dict; HANDLERS maps X-Amz-Target
names to them.
"""

import base64
import binascii
import secrets
import string
import uuid

from .common import (
    ApiError, NAME_RE, PUNCTUATION, client_error, day_ts, not_found, now, ts)
from .iam import access_denied_message
from .params import _verr, p_bool, p_int, p_stages, p_str, p_token, p_value
from .store import pick_version, remember_value, value_fields


# ---------------------------------------------------------------------------
# API operations.  Each takes (emu, body) and returns a dict; runs under
# emu.lock.
# ---------------------------------------------------------------------------

def op_create_secret(emu, body):
    name = p_str(body, "Name", required=True, minlen=1, maxlen=512)
    if len(name) > 256 or not NAME_RE.match(name):
        raise client_error("InvalidParameterException",
                           "Invalid name. Must be a valid name containing "
                           "alphanumeric characters, or any of the following: "
                           "-/_+=.@!")
    token = p_token(body) or str(uuid.uuid4())
    desc = p_str(body, "Description", maxlen=2048)
    kms = p_str(body, "KmsKeyId", maxlen=2048)
    tags = body.get("Tags") or []
    kind, value = p_value(body)
    s = emu.store.create(name, desc, kms, tags)
    out = {"ARN": s.arn, "Name": s.name}
    if kind is not None:
        s.add_version(token, kind, value, ["AWSCURRENT"])
        out["VersionId"] = token
    return out


def op_describe_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid, allow_deleted=True)
    out = {
        "ARN": s.arn,
        "Name": s.name,
        "RotationEnabled": s.rotation_enabled,
        "LastChangedDate": ts(s.last_changed),
        "CreatedDate": ts(s.created),
        "VersionIdsToStages": s.version_ids_to_stages(),
    }
    if s.description is not None:
        out["Description"] = s.description
    if s.kms_key_id is not None:
        out["KmsKeyId"] = s.kms_key_id
    if s.rotation_lambda_arn is not None:
        out["RotationLambdaARN"] = s.rotation_lambda_arn
    if s.rotation_rules is not None:
        out["RotationRules"] = s.rotation_rules
        days = s.rotation_rules.get("AutomaticallyAfterDays")
        if s.rotation_enabled and isinstance(days, int):
            base = s.last_rotated or s.created
            out["NextRotationDate"] = day_ts(base + days * 86400)
    if s.last_rotated is not None:
        out["LastRotatedDate"] = ts(s.last_rotated)
    if s.last_accessed is not None:
        out["LastAccessedDate"] = day_ts(s.last_accessed)
    if s.tags:
        out["Tags"] = s.tags
    if s.deleted_date is not None:
        out["DeletedDate"] = ts(s.deleted_date)
    return out


def op_get_secret_value(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    vid = p_str(body, "VersionId", minlen=32, maxlen=64)
    stage = p_str(body, "VersionStage", minlen=1, maxlen=256)
    s = emu.store.get(sid)
    v = pick_version(s, vid, stage)
    s.last_accessed = v.last_accessed = now()
    out = {"ARN": s.arn, "Name": s.name, "VersionId": v.vid,
           "VersionStages": list(v.stages), "CreatedDate": ts(v.created)}
    out.update(value_fields(v))
    return out


def op_put_secret_value(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    token = p_token(body)
    if token is None:
        raise client_error("InvalidParameterException",
                           "You must provide a ClientRequestToken.")
    kind, value = p_value(body)
    if kind is None:
        raise client_error("InvalidParameterException",
                           "You must provide either SecretString or "
                           "SecretBinary.")
    stages = p_stages(body)
    s = emu.store.get(sid)
    v = s.versions.get(token)
    if v is not None and v.kind is not None:
        if v.kind == kind and v.value == value:
            return {"ARN": s.arn, "Name": s.name, "VersionId": v.vid,
                    "VersionStages": list(v.stages)}
        raise client_error("ResourceExistsException",
                           "You can't modify an existing version, you can "
                           "only create a new version.")
    if stages is None:
        stages = ["AWSCURRENT"]
    if v is not None:
        # fill the placeholder RotateSecret created
        remember_value(kind, value)
        v.kind, v.value = kind, value
        for st in stages:
            s.attach(v, st)
    else:
        v = s.add_version(token, kind, value, stages)
    s.touch()
    return {"ARN": s.arn, "Name": s.name, "VersionId": v.vid,
            "VersionStages": list(v.stages)}


def op_update_secret_version_stage(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    stage = p_str(body, "VersionStage", required=True, minlen=1, maxlen=256)
    move_to = p_str(body, "MoveToVersionId", minlen=32, maxlen=64)
    remove_from = p_str(body, "RemoveFromVersionId", minlen=32, maxlen=64)
    s = emu.store.get(sid)
    holder = s.holder(stage)
    out = {"ARN": s.arn, "Name": s.name}
    if move_to is None and remove_from is None:
        raise client_error("InvalidParameterException",
                           "You must specify MoveToVersionId or "
                           "RemoveFromVersionId.")
    target = None
    if move_to is not None:
        target = s.versions.get(move_to)
        if target is None:
            raise not_found("Secrets Manager can't find the specified secret "
                            "value for VersionId: %s" % move_to)
    if remove_from is not None:
        if remove_from not in s.versions:
            raise not_found("Secrets Manager can't find the specified secret "
                            "value for VersionId: %s" % remove_from)
        if holder is None or holder.vid != remove_from:
            raise client_error(
                "InvalidParameterException",
                "The staging label %s is currently not attached to version "
                "%s, so you can't remove it from that version."
                % (stage, remove_from))
    if target is not None:
        if holder is target:
            return out      # already there: no-op
        if holder is not None and remove_from is None:
            raise client_error(
                "InvalidParameterException",
                "The parameter RemoveFromVersionId can't be empty. Staging "
                "label %s is currently attached to version %s, so you must "
                "explicitly reference that version in RemoveFromVersionId."
                % (stage, holder.vid))
        s.attach(target, stage)
    else:
        if stage == "AWSCURRENT":
            raise client_error(
                "InvalidParameterException",
                "You can only move staging label AWSCURRENT to a different "
                "secret version. It can't be completely removed.")
        holder.stages.remove(stage)
    s.touch()
    return out


def op_list_secret_version_ids(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    max_results = p_int(body, "MaxResults", 1, 100, default=100)
    next_token = p_str(body, "NextToken", minlen=1, maxlen=4096)
    include_dep = p_bool(body, "IncludeDeprecated", False)
    s = emu.store.get(sid)
    vs = [v for v in reversed(list(s.versions.values()))
          if include_dep or v.stages]
    start = 0
    if next_token is not None:
        try:
            start = int(base64.b64decode(next_token).decode())
            if start < 0 or start > len(vs):
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise client_error("InvalidNextTokenException",
                               "The NextToken value is invalid.")
    page = vs[start:start + max_results]
    out = {"ARN": s.arn, "Name": s.name, "Versions": []}
    for v in page:
        e = {"VersionId": v.vid, "VersionStages": list(v.stages),
             "CreatedDate": ts(v.created)}
        if v.last_accessed is not None:
            e["LastAccessedDate"] = day_ts(v.last_accessed)
        out["Versions"].append(e)
    if start + max_results < len(vs):
        out["NextToken"] = base64.b64encode(
            str(start + max_results).encode()).decode()
    return out


def op_get_random_password(emu, body):
    length = p_int(body, "PasswordLength", 1, 4096, default=32)
    exclude = p_str(body, "ExcludeCharacters", minlen=0, maxlen=4096) or ""
    pw = random_password(
        length, exclude,
        no_numbers=p_bool(body, "ExcludeNumbers", False),
        no_punct=p_bool(body, "ExcludePunctuation", False),
        no_upper=p_bool(body, "ExcludeUppercase", False),
        no_lower=p_bool(body, "ExcludeLowercase", False),
        space=p_bool(body, "IncludeSpace", False),
        require_each=p_bool(body, "RequireEachIncludedType", True))
    return {"RandomPassword": pw}


def op_delete_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    window = p_int(body, "RecoveryWindowInDays", 7, 30)
    force = p_bool(body, "ForceDeleteWithoutRecovery", False)
    if force and window is not None:
        raise client_error("InvalidParameterException",
                           "You can't use ForceDeleteWithoutRecovery in "
                           "conjunction with RecoveryWindowInDays.")
    s = emu.store.get(sid, allow_deleted=True)
    if force:
        del emu.store.secrets[s.name]
        return {"ARN": s.arn, "Name": s.name, "DeletionDate": ts(now())}
    if s.deleted_date is not None:
        raise client_error(
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was "
            "marked for deletion.")
    s.deleted_date = now()
    s.touch()
    return {"ARN": s.arn, "Name": s.name,
            "DeletionDate": ts(s.deleted_date + (window or 30) * 86400)}


def op_restore_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid, allow_deleted=True)
    s.deleted_date = None
    s.touch()
    return {"ARN": s.arn, "Name": s.name}


def op_rotate_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    token = p_token(body) or str(uuid.uuid4())
    lambda_arn = p_str(body, "RotationLambdaARN", maxlen=2048)
    rules = body.get("RotationRules")
    if rules is not None and not isinstance(rules, dict):
        raise client_error("SerializationException",
                           "Unexpected value type for field RotationRules")
    if rules is not None:
        days = rules.get("AutomaticallyAfterDays")
        if days is not None and (not isinstance(days, int) or
                                 not 1 <= days <= 1000):
            raise _verr("rotationRules.automaticallyAfterDays",
                        "Member must have value between 1 and 1000",
                        str(days))
    immediately = p_bool(body, "RotateImmediately", True)
    s = emu.store.get(sid)
    pending = s.holder("AWSPENDING")
    existing = s.versions.get(token)
    if existing is not None and existing is pending and \
            "AWSCURRENT" not in existing.stages:
        # retried call with the same token: nothing new
        return {"ARN": s.arn, "Name": s.name, "VersionId": token}
    if pending is not None and "AWSCURRENT" not in pending.stages:
        raise client_error("InvalidRequestException",
                           "A previous rotation isn't complete. That rotation "
                           "will be reattempted.")
    if existing is not None:
        raise client_error("ResourceExistsException",
                           "A version with the ClientRequestToken %s already "
                           "exists." % token)
    if lambda_arn is not None:
        s.rotation_lambda_arn = lambda_arn
    if rules is not None:
        s.rotation_rules = rules
    s.rotation_enabled = True
    s.touch()
    out = {"ARN": s.arn, "Name": s.name}
    if immediately:
        s.add_version(token, None, None, ["AWSPENDING"])
        out["VersionId"] = token
    return out


def op_cancel_rotate_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid)
    s.rotation_enabled = False
    out = {"ARN": s.arn, "Name": s.name}
    pending = s.holder("AWSPENDING")
    if pending is not None:
        out["VersionId"] = pending.vid
    s.touch()
    return out


def op_update_secret(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    token = p_token(body) or str(uuid.uuid4())
    desc = p_str(body, "Description", maxlen=2048)
    kms = p_str(body, "KmsKeyId", maxlen=2048)
    kind, value = p_value(body)
    s = emu.store.get(sid)
    if desc is not None:
        s.description = desc
    if kms is not None:
        s.kms_key_id = kms
    out = {"ARN": s.arn, "Name": s.name}
    if kind is not None:
        v = s.versions.get(token)
        if v is not None:
            if v.kind != kind or v.value != value:
                raise client_error("ResourceExistsException",
                                   "You can't modify an existing version, "
                                   "you can only create a new version.")
        else:
            s.add_version(token, kind, value, ["AWSCURRENT"])
        out["VersionId"] = token
    s.touch()
    return out


def op_tag_resource(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid)
    tags = body.get("Tags") or []
    keep = [t for t in s.tags
            if t.get("Key") not in {n.get("Key") for n in tags}]
    s.tags = keep + list(tags)
    s.touch()
    return {}


def op_untag_resource(emu, body):
    sid = p_str(body, "SecretId", required=True, minlen=1, maxlen=2048)
    s = emu.store.get(sid)
    keys = set(body.get("TagKeys") or [])
    s.tags = [t for t in s.tags if t.get("Key") not in keys]
    s.touch()
    return {}


def _list_filter(s, filters):
    for f in filters or []:
        key = f.get("Key")
        vals = f.get("Values") or []
        if key == "name":
            if not any(s.name.startswith(v) for v in vals):
                return False
        elif key == "description":
            if not any((s.description or "").startswith(v) for v in vals):
                return False
        elif key == "all":
            if not any(s.name.startswith(v) or
                       (s.description or "").startswith(v) for v in vals):
                return False
    return True


def op_list_secrets(emu, body):
    max_results = p_int(body, "MaxResults", 1, 100, default=100)
    next_token = p_str(body, "NextToken", minlen=1, maxlen=4096)
    filters = body.get("Filters")
    include_planned = p_bool(body, "IncludePlannedDeletion", False)
    items = [s for s in sorted(emu.store.secrets.values(),
                               key=lambda x: x.created)
             if _list_filter(s, filters) and
             (include_planned or s.deleted_date is None)]
    start = 0
    if next_token is not None:
        try:
            start = int(base64.b64decode(next_token).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise client_error("InvalidNextTokenException",
                               "The NextToken value is invalid.")
    out = {"SecretList": []}
    for s in items[start:start + max_results]:
        d = op_describe_secret(emu, {"SecretId": s.arn})
        d["SecretVersionsToStages"] = d.pop("VersionIdsToStages")
        out["SecretList"].append(d)
    if start + max_results < len(items):
        out["NextToken"] = base64.b64encode(
            str(start + max_results).encode()).decode()
    return out


def op_batch_get_secret_value(emu, body):
    ids = body.get("SecretIdList")
    filters = body.get("Filters")
    if ids is not None and filters is not None:
        raise client_error("InvalidParameterException",
                           "Either 'SecretIdList' or 'Filters' must be "
                           "provided, but not both.")
    if ids is None and filters is None:
        raise client_error("InvalidParameterException",
                           "Either 'SecretIdList' or 'Filters' must be "
                           "provided.")
    if ids is not None:
        if not isinstance(ids, list) or \
                not all(isinstance(i, str) for i in ids):
            raise client_error("SerializationException",
                               "Unexpected value type for field "
                               "SecretIdList")
        if len(ids) < 1 or len(ids) > 20:
            raise _verr("secretIdList",
                        "Member must have length less than or equal to 20"
                        if ids else
                        "Member must have length greater than or equal to 1")
        for i in ids:
            if len(i) < 1 or len(i) > 2048:
                raise _verr("secretIdList", "Member must satisfy constraint: "
                            "[Member must have length less than or equal to "
                            "2048, Member must have length greater than or "
                            "equal to 1]")
        next_page = None
    else:
        max_results = p_int(body, "MaxResults", 1, 20, default=20)
        listed = op_list_secrets(emu, {"Filters": filters,
                                       "MaxResults": max_results,
                                       "NextToken": body.get("NextToken")})
        ids = [d["ARN"] for d in listed["SecretList"]]
        next_page = listed.get("NextToken")
    out = {"SecretValues": [], "Errors": []}
    for i in ids:
        try:
            if emu.is_denied("GetSecretValue", i) or \
                    emu.is_denied("BatchGetSecretValue", i):
                raise client_error("AccessDeniedException",
                                   access_denied_message("GetSecretValue", i))
            emu.iam.check_secret_call(emu.request_key, "GetSecretValue",
                                      emu.store.find(i), i)
            out["SecretValues"].append(
                op_get_secret_value(emu, {"SecretId": i}))
        except ApiError as e:
            out["Errors"].append({"SecretId": i, "ErrorCode": e.etype,
                                  "Message": e.message})
    if next_page:
        out["NextToken"] = next_page
    return out


def random_password(length=32, exclude="", no_numbers=False,
                    no_punct=False, no_upper=False, no_lower=False,
                    space=False, require_each=True):
    groups = []
    if not no_lower:
        groups.append(string.ascii_lowercase)
    if not no_upper:
        groups.append(string.ascii_uppercase)
    if not no_numbers:
        groups.append(string.digits)
    if not no_punct:
        groups.append(PUNCTUATION)
    if space:
        groups.append(" ")
    exclude = set(exclude or "")
    groups = ["".join(c for c in g if c not in exclude) for g in groups]
    groups = [g for g in groups if g]
    if not groups:
        raise client_error("InvalidParameterException",
                           "The password can't be generated: every character "
                           "type is excluded.")
    alphabet = "".join(groups)
    if require_each and length < len(groups):
        raise client_error("InvalidParameterException",
                           "PasswordLength is too short to include every "
                           "required character type.")
    rng = secrets.SystemRandom()
    chars = []
    if require_each:
        chars = [rng.choice(g) for g in groups]
    chars += [rng.choice(alphabet) for _ in range(length - len(chars))]
    rng.shuffle(chars)
    return "".join(chars)


HANDLERS = {
    "CreateSecret": op_create_secret,
    "DescribeSecret": op_describe_secret,
    "GetSecretValue": op_get_secret_value,
    "PutSecretValue": op_put_secret_value,
    "UpdateSecretVersionStage": op_update_secret_version_stage,
    "ListSecretVersionIds": op_list_secret_version_ids,
    "GetRandomPassword": op_get_random_password,
    "DeleteSecret": op_delete_secret,
    "RestoreSecret": op_restore_secret,
    "RotateSecret": op_rotate_secret,
    "CancelRotateSecret": op_cancel_rotate_secret,
    "BatchGetSecretValue": op_batch_get_secret_value,
    "ListSecrets": op_list_secrets,
    "UpdateSecret": op_update_secret,
    "TagResource": op_tag_resource,
    "UntagResource": op_untag_resource,
}
