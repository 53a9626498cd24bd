#!/usr/bin/python3
"""Least-privilege and consistency checks of lambda/template.yaml.

npm's cfn-lint checks the template against CloudFormation's resource
specification (types, property names and types, references).  It knows
nothing of what a rotation function may do, so this file checks that:

- the resources are the seven expected ones, of types the specification knows;
- every Ref / GetAtt / ${} names something, and every parameter is used;
- IAM: only Allow, no NotAction/NotResource, no wildcard in an action, the
  resource "*" only for secretsmanager:GetRandomPassword, the rotated secret
  gets exactly DescribeSecret/GetSecretValue/PutSecretValue/
  UpdateSecretVersionStage, the admin secret exactly GetSecretValue, both
  named by parameters whose pattern accepts one full secret ARN and no
  wildcard; kms:Decrypt and kms:GenerateDataKey only on a key parameter and
  only with kms:ViaService = secretsmanager.${AWS::Region}.amazonaws.com;
  the rotated secret only while its rotation function is this one
  (secretsmanager:resource/AllowRotationLambdaArn); the only managed policy
  is AWSLambdaVPCAccessExecutionRole;
- the function: python3.12, a handler that exists in lambda/, environment
  variables the code reads (MASTER_SECRET_ARN and SECRETS_MANAGER_ENDPOINT
  among them), TLS not relaxable to disable, VPC subnets and security groups
  from parameters of the EC2 list types, DB_NAME from a required parameter,
  reserved concurrency, its log group with a retention;
- Secrets Manager may invoke it (lambda:InvokeFunction, principal
  secretsmanager.amazonaws.com, SourceAccount and SourceArn = the secret) and
  the rotation schedule points at it with rules from a parameter.

`--self-test` also breaks the template in one way at a time and requires
each break to be caught, so that a check cannot silently pass everything.
Prints PASS/FAIL lines; exits non-zero on failure.
"""

import argparse
import ast
import copy
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

EXPECTED_TYPES = {
    "AWS::IAM::Role": 1, "AWS::IAM::Policy": 2, "AWS::Lambda::Function": 1,
    "AWS::Lambda::Permission": 1, "AWS::SecretsManager::RotationSchedule": 1,
    "AWS::Logs::LogGroup": 1,
}
PSEUDO = {"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
          "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}
ROTATE_ACTIONS = {"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                  "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}
ADMIN_ACTIONS = {"secretsmanager:GetSecretValue"}
KMS_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey"}
WILDCARD_OK = {"secretsmanager:GetRandomPassword"}
VIA_SERVICE = {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
VPC_POLICY = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                         "AWSLambdaVPCAccessExecutionRole"}
GOOD_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app-AbCdEf"
BAD_SECRET_ARNS = ["*", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:*",
                   "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app-*",
                   "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/*-AbCdEf",
                   "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app",
                   "arn:aws:secretsmanager:*:123456789012:secret:prod/app-AbCdEf",
                   "arn:aws:secretsmanager:eu-west-1:*:secret:prod/app-AbCdEf"]
GOOD_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BAD_KEY_ARNS = ["*", "arn:aws:kms:eu-west-1:123456789012:key/*",
                "arn:aws:kms:eu-west-1:123456789012:alias/aws/secretsmanager",
                "arn:aws:kms:*:123456789012:key/1234abcd"]


# --- YAML with CloudFormation's short forms ----------------------------------

class CfnLoader(yaml.SafeLoader):
    pass


def _tag(tag, node_kind):
    name = "Ref" if tag == "Ref" else "Fn::" + tag

    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}
    return construct


for _t in ("Ref", "Sub", "GetAtt", "If", "Equals", "Not", "And", "Or", "Join", "Select",
           "Split", "FindInMap", "GetAZs", "ImportValue", "Base64", "Cidr", "Condition"):
    CfnLoader.add_constructor("!" + _t, _tag(_t, None))


def load(path):
    with open(path) as f:
        return yaml.load(f, Loader=CfnLoader)


# --- the checks ----------------------------------------------------------------

class Checker:
    def __init__(self, tpl, spec_types=None, code_dir=None):
        self.t = tpl
        self.spec_types = spec_types
        self.code_dir = code_dir or os.path.join(ROOT, "lambda")
        self.errors = []
        self.checks = 0

    def check(self, ok, message):
        self.checks += 1
        if not ok:
            self.errors.append(message)
        return ok

    # helpers
    def params(self):
        return self.t.get("Parameters") or {}

    def resources(self):
        return self.t.get("Resources") or {}

    def of_type(self, rtype):
        return {k: v for k, v in self.resources().items() if v.get("Type") == rtype}

    def ref_param(self, value):
        """The parameter a {"Ref": P} names, or None."""
        if isinstance(value, dict) and list(value) == ["Ref"] and value["Ref"] in self.params():
            return value["Ref"]
        return None

    @staticmethod
    def as_list(value):
        return value if isinstance(value, list) else [value]

    def run(self):
        self.check_shape()
        self.check_references()
        self.check_iam()
        self.check_function()
        self.check_permission_and_schedule()
        return self.errors

    def check_shape(self):
        t = self.t
        self.check(isinstance(t, dict), "the template is not a mapping")
        self.check(t.get("AWSTemplateFormatVersion") == "2010-09-09",
                   "AWSTemplateFormatVersion is not 2010-09-09")
        unknown = set(t) - {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters",
                            "Rules", "Mappings", "Conditions", "Transform", "Resources",
                            "Outputs"}
        self.check(not unknown, "unknown top-level sections: %s" % sorted(unknown))
        types = {}
        for v in self.resources().values():
            types[str(v.get("Type"))] = types.get(str(v.get("Type")), 0) + 1
        self.check(types == EXPECTED_TYPES, "resources are %s, expected %s"
                   % (sorted(types.items()), sorted(EXPECTED_TYPES.items())))
        if self.spec_types is not None:
            for name, res in self.resources().items():
                self.check(res.get("Type") in self.spec_types,
                           "resource %s: type %s is not in the resource specification"
                           % (name, res.get("Type")))

    def check_references(self):
        names = set(self.params()) | set(self.resources()) | PSEUDO
        used = set()
        conditions = set(self.t.get("Conditions") or {})

        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "Ref":
                        used.add(v)
                        self.check(v in names, "Ref to unknown %s" % v)
                    elif k == "Fn::GetAtt":
                        self.check(isinstance(v, list) and v[0] in self.resources(),
                                   "GetAtt of unknown %s" % (v,))
                    elif k == "Fn::Sub":
                        text = v if isinstance(v, str) else v[0]
                        for ref in re.findall(r"\$\{([^}!]+)\}", text):
                            ref = ref.split(".")[0]
                            used.add(ref)
                            self.check(ref in names, "Sub names unknown %s" % ref)
                    elif k == "Fn::If":
                        self.check(v[0] in conditions, "Fn::If on unknown condition %s" % v[0])
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(self.t.get("Conditions"))
        walk(self.t.get("Resources"))
        walk(self.t.get("Outputs"))
        for p in self.params():
            self.check(p in used, "parameter %s is never used" % p)

    def arn_param_ok(self, param, good, bad):
        spec = self.params().get(param) or {}
        pattern = spec.get("AllowedPattern")
        if not self.check(spec.get("Type") == "String" and isinstance(pattern, str)
                          and pattern.startswith("^") and pattern.endswith("$"),
                          "parameter %s needs an anchored AllowedPattern" % param):
            return False
        ok = self.check(re.match(pattern, good) is not None,
                        "parameter %s does not accept %s" % (param, good))
        for b in bad:
            ok &= self.check(re.match(pattern, b) is None,
                             "parameter %s accepts %s" % (param, b))
        return ok

    def documents(self):
        """(where, policy document) of every inline policy of the role and of
        every AWS::IAM::Policy."""
        out = []
        for rname, role in self.of_type("AWS::IAM::Role").items():
            for pol in role.get("Properties", {}).get("Policies") or []:
                out.append((rname, pol.get("PolicyDocument") or {}))
        for pname, pol in self.of_type("AWS::IAM::Policy").items():
            out.append((pname, (pol.get("Properties") or {}).get("PolicyDocument") or {}))
        return out

    def statements(self):
        """(where, statement) for every policy statement; Fn::If branches
        are both taken, AWS::NoValue dropped."""
        out = []
        for where, doc in self.documents():
            for st in self.as_list(doc.get("Statement")):
                if isinstance(st, dict) and "Fn::If" in st:
                    branches = st["Fn::If"][1:]
                else:
                    branches = [st]
                for b in branches:
                    if b != {"Ref": "AWS::NoValue"}:
                        out.append((where, b))
        return out

    def check_iam(self):
        roles = self.of_type("AWS::IAM::Role")
        for rname, role in roles.items():
            props = role.get("Properties", {})
            trust = self.as_list(props.get("AssumeRolePolicyDocument", {}).get("Statement"))
            self.check(len(trust) == 1 and trust[0].get("Principal") ==
                       {"Service": "lambda.amazonaws.com"} and
                       trust[0].get("Action") == "sts:AssumeRole" and
                       trust[0].get("Effect") == "Allow" and "Condition" not in trust[0],
                       "role %s: only lambda.amazonaws.com may assume it" % rname)
            self.check(props.get("ManagedPolicyArns") == [VPC_POLICY],
                       "role %s: the one managed policy must be "
                       "AWSLambdaVPCAccessExecutionRole" % rname)
        roles_refs = [{"Ref": r} for r in roles]
        for pname, pol in self.of_type("AWS::IAM::Policy").items():
            pp = pol.get("Properties") or {}
            self.check(pp.get("Roles") == roles_refs and not pp.get("Users") and
                       not pp.get("Groups"), "policy %s must attach to the role only" % pname)
        sts = self.statements()
        self.check(len(sts) >= 3, "fewer than three IAM statements")
        secret_grants = {}
        secret_conditions = {}
        kms_seen = False
        for rname, st in sts:
            sid = st.get("Sid", "?")
            self.check(st.get("Effect") == "Allow", "%s: Effect must be Allow" % sid)
            self.check(not {"NotAction", "NotResource", "NotPrincipal"} & set(st),
                       "%s: NotAction/NotResource are not allowed" % sid)
            actions = set(self.as_list(st.get("Action")))
            resources = self.as_list(st.get("Resource"))
            self.check(all(isinstance(a, str) and "*" not in a and "?" not in a
                           for a in actions), "%s: wildcard in an action" % sid)
            services = {a.split(":")[0] for a in actions if isinstance(a, str)}
            self.check(services <= {"secretsmanager", "kms"},
                       "%s: actions of %s" % (sid, sorted(services)))
            if "*" in resources or any(isinstance(r, str) and "*" in r for r in resources):
                self.check(actions == WILDCARD_OK and resources == ["*"],
                           "%s: resource * for %s" % (sid, sorted(actions)))
                continue
            for r in resources:
                p = self.ref_param(r)
                if not self.check(p is not None, "%s: resource %r is not a parameter" % (sid, r)):
                    continue
                if services == {"secretsmanager"}:
                    self.arn_param_ok(p, GOOD_SECRET_ARN, BAD_SECRET_ARNS)
                    secret_grants.setdefault(p, set()).update(actions)
                    secret_conditions.setdefault(p, []).append(st.get("Condition"))
                elif services == {"kms"}:
                    kms_seen = True
                    self.arn_param_ok(p, GOOD_KEY_ARN, BAD_KEY_ARNS)
                else:
                    self.check(False, "%s: mixes secretsmanager and kms actions" % sid)
            if "kms" in services:
                self.check(actions == KMS_ACTIONS, "%s: kms actions must be exactly %s"
                           % (sid, sorted(KMS_ACTIONS)))
                cond = (st.get("Condition") or {}).get("StringEquals") or {}
                self.check(cond.get("kms:ViaService") == VIA_SERVICE,
                           "%s: kms actions need StringEquals kms:ViaService = "
                           "secretsmanager.${AWS::Region}.amazonaws.com" % sid)
                self.check(set((st.get("Condition") or {})) == {"StringEquals"},
                           "%s: only StringEquals conditions expected" % sid)
        self.check(kms_seen, "no kms statement (for a customer-managed key)")
        # the rotated secret and the admin secret, by what the function uses
        rotated = self.schedule_secret_param()
        fn_env = self.function_env()
        admin = self.ref_param(fn_env.get("MASTER_SECRET_ARN"))
        self.check(rotated is not None and secret_grants.get(rotated) == ROTATE_ACTIONS,
                   "the rotated secret (%s) must get exactly %s, got %s"
                   % (rotated, sorted(ROTATE_ACTIONS), sorted(secret_grants.get(rotated, ()))))
        self.check(admin is not None and admin != rotated and
                   secret_grants.get(admin) == ADMIN_ACTIONS,
                   "the admin secret (%s) must get exactly %s, got %s"
                   % (admin, sorted(ADMIN_ACTIONS), sorted(secret_grants.get(admin, ()))))
        fname, _ = self.function()
        self.check(secret_conditions.get(rotated) and all(
            c == {"StringEquals": {"secretsmanager:resource/AllowRotationLambdaArn":
                                   {"Fn::GetAtt": [fname, "Arn"]}}}
            for c in secret_conditions[rotated]),
            "the rotated secret's statements need StringEquals "
            "secretsmanager:resource/AllowRotationLambdaArn = the function's ARN")
        self.check(set(secret_grants) <= {rotated, admin},
                   "secretsmanager grants on other parameters: %s"
                   % sorted(set(secret_grants) - {rotated, admin}))

    def function(self):
        fns = self.of_type("AWS::Lambda::Function")
        return next(iter(fns.items())) if len(fns) == 1 else (None, {})

    def function_env(self):
        _, fn = self.function()
        return ((fn.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}

    def schedule_secret_param(self):
        for s in self.of_type("AWS::SecretsManager::RotationSchedule").values():
            return self.ref_param((s.get("Properties") or {}).get("SecretId"))
        return None

    def check_function(self):
        fname, fn = self.function()
        if not self.check(fname is not None, "no single AWS::Lambda::Function"):
            return
        p = fn.get("Properties") or {}
        self.check(p.get("Runtime") == "python3.12", "Runtime must be python3.12")
        handler = p.get("Handler", "")
        module, _, func = handler.rpartition(".")
        path = os.path.join(self.code_dir, module + ".py")
        source = ""
        if self.check(os.path.isfile(path), "handler module %s not in lambda/" % path):
            with open(path) as f:
                source = f.read()
            tree = ast.parse(source)
            defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
            self.check(func in defs and [a.arg for a in defs[func].args.args] ==
                       ["event", "context"], "no %s(event, context) in %s" % (func, path))
        role = p.get("Role")
        self.check(isinstance(role, dict) and role.get("Fn::GetAtt", [None])[0] in
                   self.of_type("AWS::IAM::Role"), "Role must be the template's IAM role")
        env = self.function_env()
        for var in ("MASTER_SECRET_ARN", "SECRETS_MANAGER_ENDPOINT"):
            self.check(var in env, "environment variable %s missing" % var)
        for var in env:
            self.check('"%s"' % var in source, "the code never reads %s" % var)
        mode = self.ref_param(env.get("DB_SSLMODE"))
        if mode is not None:
            allowed = self.params()[mode].get("AllowedValues") or []
            self.check(allowed and set(allowed) <= {"require", "verify-ca", "verify-full"} and
                       self.params()[mode].get("Default") == "verify-full",
                       "DB_SSLMODE must default to verify-full and never allow weaker than require")
        vpc = p.get("VpcConfig") or {}
        for key, ptype in (("SubnetIds", "List<AWS::EC2::Subnet::Id>"),
                           ("SecurityGroupIds", "List<AWS::EC2::SecurityGroup::Id>")):
            param = self.ref_param(vpc.get(key))
            self.check(param is not None and self.params()[param].get("Type") == ptype,
                       "VpcConfig.%s must be a parameter of type %s" % (key, ptype))
        timeout = p.get("Timeout")
        self.check(isinstance(timeout, int) and 30 <= timeout <= 900,
                   "Timeout must be between 30 and 900 seconds")
        rc = p.get("ReservedConcurrentExecutions")
        self.check(isinstance(rc, int) and 1 <= rc <= 5,
                   "ReservedConcurrentExecutions must be set (1 to 5)")
        db = self.ref_param(env.get("DB_NAME"))
        self.check(db is not None and "Default" not in self.params()[db] and
                   isinstance(self.params()[db].get("AllowedPattern"), str) and
                   re.match(self.params()[db]["AllowedPattern"], "") is None,
                   "DB_NAME must come from a required, non-empty parameter")
        groups = self.of_type("AWS::Logs::LogGroup")
        gp = (next(iter(groups.values())) if len(groups) == 1 else {}).get("Properties") or {}
        self.check(gp.get("LogGroupName") == {"Fn::Sub": "/aws/lambda/${%s}" % fname},
                   "the log group must be the function's (/aws/lambda/<function>)")
        days = self.ref_param(gp.get("RetentionInDays"))
        self.check(days is not None and self.params()[days].get("Type") == "Number",
                   "the log group needs RetentionInDays from a Number parameter")

    def check_permission_and_schedule(self):
        fname, _ = self.function()
        perms = self.of_type("AWS::Lambda::Permission")
        pname, perm = next(iter(perms.items())) if len(perms) == 1 else (None, {})
        pp = perm.get("Properties") or {}
        self.check(pp.get("Action") == "lambda:InvokeFunction" and
                   pp.get("Principal") == "secretsmanager.amazonaws.com" and
                   pp.get("FunctionName") == {"Fn::GetAtt": [fname, "Arn"]},
                   "Secrets Manager must be allowed to invoke the function")
        self.check(pp.get("SourceAccount") == {"Ref": "AWS::AccountId"},
                   "the permission must be limited with SourceAccount = AWS::AccountId")
        self.check(pp.get("SourceArn") is not None and
                   pp.get("SourceArn") == {"Ref": self.schedule_secret_param()},
                   "the permission must be limited with SourceArn = the rotated secret")
        scheds = self.of_type("AWS::SecretsManager::RotationSchedule")
        _, sched = next(iter(scheds.items())) if len(scheds) == 1 else (None, {})
        sp = sched.get("Properties") or {}
        self.check(self.schedule_secret_param() is not None,
                   "RotationSchedule.SecretId must be a parameter")
        self.check(sp.get("RotationLambdaARN") == {"Fn::GetAtt": [fname, "Arn"]},
                   "RotationSchedule must invoke the function")
        rules = sp.get("RotationRules") or {}
        days = self.ref_param(rules.get("AutomaticallyAfterDays"))
        self.check(days is not None and self.params()[days].get("Type") == "Number",
                   "RotationRules.AutomaticallyAfterDays must come from a Number parameter")
        self.check(pname is not None and pname in self.as_list(sched.get("DependsOn")),
                   "RotationSchedule must depend on the invoke permission (it invokes at once)")
        for gname in self.of_type("AWS::Logs::LogGroup"):
            self.check(gname in self.as_list(sched.get("DependsOn")),
                       "RotationSchedule must wait for the log group %s" % gname)
        # and on every policy of the role: DependsOn, or a (conditional)
        # reference in its Metadata when the policy itself is conditional
        meta = json.dumps(sched.get("Metadata") or {})
        for polname in self.of_type("AWS::IAM::Policy"):
            self.check(polname in self.as_list(sched.get("DependsOn")) or
                       '{"Ref": "%s"}' % polname in meta,
                       "RotationSchedule must wait for policy %s (it invokes at once)" % polname)


# --- breaking the template on purpose ------------------------------------------

def _st(t, sid):
    docs = [p["PolicyDocument"] for p in t["Resources"]["RotationRole"]["Properties"]["Policies"]]
    docs += [r["Properties"]["PolicyDocument"] for r in t["Resources"].values()
             if r.get("Type") == "AWS::IAM::Policy"]
    for doc in docs:
        for st in doc["Statement"]:
            if isinstance(st, dict) and "Fn::If" in st:
                st = st["Fn::If"][1]
            if st.get("Sid") == sid:
                return st
    raise KeyError(sid)


def _fn(t):
    return t["Resources"]["RotationFunction"]["Properties"]


MUTATIONS = {
    "wildcard resource on the secret":
        lambda t: _st(t, "RotateTheSecret").__setitem__("Resource", "*"),
    "a second resource on the secret statement":
        lambda t: _st(t, "RotateTheSecret").__setitem__(
            "Resource", [{"Ref": "SecretArn"}, "arn:aws:secretsmanager:*:*:secret:*"]),
    "wildcard action":
        lambda t: _st(t, "RotateTheSecret").__setitem__("Action", "secretsmanager:*"),
    "an extra action on the secret":
        lambda t: _st(t, "RotateTheSecret")["Action"].append("secretsmanager:DeleteSecret"),
    "PutSecretValue on the admin secret":
        lambda t: _st(t, "ReadTheAdminSecret").__setitem__(
            "Action", ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"]),
    "GetRandomPassword plus another action on *":
        lambda t: _st(t, "GeneratePasswords").__setitem__(
            "Action", ["secretsmanager:GetRandomPassword", "secretsmanager:ListSecrets"]),
    "a secret ARN pattern that accepts wildcards":
        lambda t: t["Parameters"]["SecretArn"].__setitem__("AllowedPattern", "^arn:.*$"),
    "no ARN pattern on the admin secret":
        lambda t: t["Parameters"]["MasterSecretArn"].pop("AllowedPattern"),
    "kms without the ViaService condition":
        lambda t: _st(t, "UseTheKeyThroughSecretsManager").pop("Condition"),
    "kms:ViaService of another service":
        lambda t: _st(t, "UseTheKeyThroughSecretsManager")["Condition"]["StringEquals"]
        .__setitem__("kms:ViaService", {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}),
    "kms:* actions":
        lambda t: _st(t, "UseTheKeyThroughSecretsManager").__setitem__("Action", "kms:*"),
    "a key pattern that accepts aliases":
        lambda t: t["Parameters"]["KmsKeyArn"].__setitem__("AllowedPattern", "^(arn:aws:kms:.*)?$"),
    "an Allow with NotResource":
        lambda t: _st(t, "ReadTheAdminSecret").__setitem__("NotResource", "x"),
    "an ec2 action beside GetRandomPassword":
        lambda t: _st(t, "GeneratePasswords").__setitem__(
            "Action", ["secretsmanager:GetRandomPassword", "ec2:DescribeInstances"]),
    "no VPC managed policy":
        lambda t: t["Resources"]["RotationRole"]["Properties"].__setitem__(
            "ManagedPolicyArns", []),
    "AdministratorAccess":
        lambda t: t["Resources"]["RotationRole"]["Properties"]["ManagedPolicyArns"].append(
            "arn:aws:iam::aws:policy/AdministratorAccess"),
    "another principal may assume the role":
        lambda t: t["Resources"]["RotationRole"]["Properties"]["AssumeRolePolicyDocument"]
        ["Statement"][0].__setitem__("Principal", {"AWS": "*"}),
    "python3.9":
        lambda t: _fn(t).__setitem__("Runtime", "python3.9"),
    "a handler that does not exist":
        lambda t: _fn(t).__setitem__("Handler", "secretsmgr_rotation.handler"),
    "no VPC config":
        lambda t: _fn(t).pop("VpcConfig"),
    "subnets typed as strings":
        lambda t: t["Parameters"]["SubnetIds"].__setitem__("Type", "CommaDelimitedList"),
    "no MASTER_SECRET_ARN":
        lambda t: _fn(t)["Environment"]["Variables"].pop("MASTER_SECRET_ARN"),
    "no SECRETS_MANAGER_ENDPOINT":
        lambda t: _fn(t)["Environment"]["Variables"].pop("SECRETS_MANAGER_ENDPOINT"),
    "an environment variable the code ignores":
        lambda t: _fn(t)["Environment"]["Variables"].__setitem__("DB_PASSWORD", "x"),
    "sslmode disable allowed":
        lambda t: t["Parameters"]["DbSslMode"]["AllowedValues"].append("disable"),
    "no invoke permission":
        lambda t: t["Resources"].pop("RotationPermission"),
    "permission without SourceAccount":
        lambda t: t["Resources"]["RotationPermission"]["Properties"].pop("SourceAccount"),
    "permission without SourceArn":
        lambda t: t["Resources"]["RotationPermission"]["Properties"].pop("SourceArn"),
    "the secret without the AllowRotationLambdaArn condition":
        lambda t: _st(t, "RotateTheSecret").pop("Condition"),
    "no reserved concurrency":
        lambda t: _fn(t).pop("ReservedConcurrentExecutions"),
    "a log group without retention":
        lambda t: t["Resources"]["RotationLogGroup"]["Properties"].pop("RetentionInDays"),
    "DbName optional":
        lambda t: t["Parameters"]["DbName"].__setitem__("Default", ""),
    "no log group":
        lambda t: t["Resources"].pop("RotationLogGroup"),
    "schedule with fixed rules":
        lambda t: t["Resources"]["RotationSchedule"]["Properties"]["RotationRules"]
        .__setitem__("AutomaticallyAfterDays", 30),
    "schedule before the permission":
        lambda t: t["Resources"]["RotationSchedule"].pop("DependsOn"),
    "the key policy attached to another role":
        lambda t: t["Resources"]["RotationKmsPolicy"]["Properties"].__setitem__(
            "Roles", [{"Ref": "RotationRole"}, "some-other-role"]),
    "the schedule does not wait for the key policy":
        lambda t: t["Resources"]["RotationSchedule"].pop("Metadata"),
    "an unknown resource type":
        lambda t: t["Resources"].__setitem__("Extra", {"Type": "AWS::Lambda::Functon"}),
    "a dangling Ref":
        lambda t: _st(t, "ReadTheAdminSecret").__setitem__("Resource", {"Ref": "AdminArn"}),
}


def spec_types(path):
    if not path:
        return None
    with open(path) as f:
        return set(json.load(f)["ResourceTypes"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("template", nargs="?", default=os.path.join(ROOT, "lambda", "template.yaml"))
    ap.add_argument("--spec", help="CloudFormation resource specification JSON")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    tpl = load(a.template)
    types = spec_types(a.spec)
    failed = False

    c = Checker(tpl, types)
    errors = c.run()
    if errors:
        failed = True
        print("FAIL least-privilege checks: %d of %d failed" % (len(errors), c.checks))
        for e in errors:
            print("     - " + e)
    else:
        print("PASS least-privilege checks: %d checks" % c.checks)

    if a.self_test:
        missed = []
        for name, mutate in MUTATIONS.items():
            t = copy.deepcopy(tpl)
            mutate(t)
            # caught: an error the unbroken template does not have
            if not set(Checker(t, types).run()) - set(errors):
                missed.append(name)
        if missed:
            failed = True
            print("FAIL self-test: %d of %d deliberate breaks not caught" % (len(missed), len(MUTATIONS)))
            for m in missed:
                print("     - " + m)
        else:
            print("PASS self-test: all %d deliberate breaks caught" % len(MUTATIONS))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
