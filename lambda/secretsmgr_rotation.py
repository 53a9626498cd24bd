"""Rotation Lambda for AWS Secrets Manager that delegates to secretsmgr.

Secrets Manager invokes ``lambda_handler`` four times per rotation, once per
step (createSecret, setSecret, testSecret, finishSecret), with the event
``{"Step", "SecretId", "ClientRequestToken"}``.  The token is the id of the
new version in all four steps.

What differs from AWS's reference PostgreSQL rotation functions: setSecret and
testSecret do not send the new password to the database.  They log in with an
administrator's credentials and call the secretsmgr extension,

    SELECT secretsmgr_set_secret(%s, %s)    -- SecretId ARN, token
    SELECT secretsmgr_test_secret(%s, %s)

which reads the AWSPENDING version from Secrets Manager itself, builds a
SCRAM-SHA-256 verifier in the server and applies it with ALTER ROLE; no SQL
text the server could log ever holds the password.  Which role a secret may
change is decided by the database's binding (secretsmgr_manage), never by the
secret's ``username``.

The function logs in with an administrator's credentials, so nothing a
secret's fields say may steer them (anyone who can write the secret can
write its fields):
  - the database is DB_NAME, fixed by the deployment (the secret's
    ``dbname`` is ignored); the connection pins search_path to pg_catalog,
    pg_temp, the calls name the extension's schema, and the extension's
    presence and version are checked first;
  - the secret's host and port must be the administrator secret's (or be in
    DB_ALLOWED_HOSTS), checked before connecting;
  - the connection insists on SCRAM-SHA-256: require_auth=scram-sha-256 with
    libpq 16 or later, and channel_binding=require whenever TLS is on (with
    an older libpq, TLS and channel binding are then required), so a server
    that asks for a cleartext or MD5 password never gets one;
  - ``masterarn`` is read from AWSCURRENT (never from the pending version),
    and MASTER_SECRET_ARN, when set, wins over it.

Environment:
  MASTER_SECRET_ARN         secret holding the administrator's username,
                            password and host (else AWSCURRENT's
                            ``masterarn`` field)
  SECRETS_MANAGER_ENDPOINT  Secrets Manager endpoint URL (else the default)
  SM_CONNECT_TIMEOUT        Secrets Manager connect timeout, seconds, default 5
  SM_READ_TIMEOUT           Secrets Manager read timeout, seconds, default 10
  SM_MAX_ATTEMPTS           attempts per call (standard retry mode), default 3
  DB_SSLMODE                libpq sslmode, default verify-full
  DB_SSL_ROOT_CERT          CA bundle for verify-ca/verify-full (else
                            PGSSLROOTCERT, else libpq's default)
  DB_NAME                   database where the extension is installed
                            (required)
  DB_ALLOWED_HOSTS          comma-separated host or host:port the secrets
                            may name (default: the administrator secret's
                            host and port only)
  DB_CONNECT_TIMEOUT        seconds, default 5
  DB_STATEMENT_TIMEOUT_MS   default 30000
  ROTATION_STRATEGY         single | alternating | auto (default: alternating
                            when the secret has ``masterarn``, else single)
  PASSWORD_LENGTH           default 32
  EXCLUDE_CHARACTERS        default :/@"'\\ and space
  TEST_LOGIN                true: testSecret also logs in as the new user
                            with the pending password (default false)
  LOG_LEVEL                 default INFO

Driver: psycopg2 (libpq).  Nothing here logs a password or a secret value.
"""

import json
import logging
import os

import boto3
import botocore.config
import psycopg2
import psycopg2.extensions
import psycopg2.sql

logger = logging.getLogger("secretsmgr_rotation")
try:
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO")
except ValueError:
    logger.setLevel(logging.INFO)

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
ENGINES = ("postgres", "aurora-postgresql")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_EXCLUDE = ":/@\"'\\ "
CLONE_SUFFIX = "_clone"
NAMEDATALEN_MAX = 63
EXTENSION = "secretsmgr"
# versions of the extension whose secretsmgr_set_secret/test_secret this
# function knows
EXTENSION_VERSIONS = ("1.0",)
# libpq learnt require_auth in 16
LIBPQ_REQUIRE_AUTH = 160000
TLS_SSLMODES = ("require", "verify-ca", "verify-full")


class RotationError(ValueError):
    """A rotation step refused to go on; the message names no secret value."""


def lambda_handler(event, context):
    """Run one rotation step.  Raises on any failure, so that Secrets
    Manager records the step as failed and retries the rotation."""
    try:
        arn = event["SecretId"]
        token = event["ClientRequestToken"]
        step = event["Step"]
    except (KeyError, TypeError):
        raise RotationError("event must have SecretId, ClientRequestToken and Step")
    if step not in STEPS:
        raise RotationError("invalid step parameter %r" % (step,))

    client = _secrets_client()

    metadata = client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        logger.error("secret %s is not enabled for rotation", arn)
        raise RotationError("secret %s is not enabled for rotation" % arn)
    versions = metadata.get("VersionIdsToStages") or {}
    if token not in versions:
        logger.error("secret version %s has no stage for rotation of secret %s", token, arn)
        raise RotationError("secret version %s has no stage for rotation of secret %s"
                            % (token, arn))
    if "AWSCURRENT" in versions[token]:
        logger.info("%s: version %s is already AWSCURRENT for secret %s; nothing to do",
                    step, token, arn)
        return
    if "AWSPENDING" not in versions[token]:
        logger.error("secret version %s is not set as AWSPENDING for rotation of secret %s",
                     token, arn)
        raise RotationError("secret version %s is not set as AWSPENDING for rotation of secret %s"
                            % (token, arn))

    logger.info("%s: secret %s, version %s", step, arn, token)
    if step == "createSecret":
        create_secret(client, arn, token)
    elif step == "setSecret":
        set_secret(client, arn, token)
    elif step == "testSecret":
        test_secret(client, arn, token)
    else:
        finish_secret(client, arn, token, versions)


# --- the four steps ----------------------------------------------------------

def create_secret(client, arn, token):
    """Write the AWSPENDING version: AWSCURRENT's JSON with a new password
    (and, alternating, the other user's name).  Nothing if it exists."""
    current = get_secret_dict(client, arn, "AWSCURRENT")
    try:
        get_secret_dict(client, arn, "AWSPENDING", token)
        logger.info("createSecret: version %s of secret %s already exists; nothing to do",
                    token, arn)
        return
    except client.exceptions.ResourceNotFoundException:
        pass

    pending = dict(current)
    if _strategy(current) == "alternating":
        pending["username"] = alternate_username(current["username"])
    pending["password"] = _random_password(client)
    client.put_secret_value(SecretId=arn, ClientRequestToken=token,
                            SecretString=json.dumps(pending),
                            VersionStages=["AWSPENDING"])
    logger.info("createSecret: put version %s of secret %s as AWSPENDING (user %s)",
                token, arn, pending["username"])


def set_secret(client, arn, token):
    """Have the database apply the AWSPENDING version to the bound role."""
    pending, current, target = _pending_and_target(client, arn, token)
    admin = _admin_credentials(client, arn, current, target)
    with _connect(target, admin["username"], admin["password"]) as conn:
        _call(conn, "setSecret", "secretsmgr_set_secret", (arn, token))
    logger.info("setSecret: the database applied version %s of secret %s", token, arn)


def test_secret(client, arn, token):
    """The database checks the pending password against the role's verifier;
    with TEST_LOGIN=true the function also logs in as the new user."""
    pending, current, target = _pending_and_target(client, arn, token)
    admin = _admin_credentials(client, arn, current, target)
    with _connect(target, admin["username"], admin["password"]) as conn:
        ok = _call(conn, "testSecret", "secretsmgr_test_secret", (arn, token))
    if ok is not True:
        logger.error("testSecret: version %s of secret %s does not log in", token, arn)
        raise RotationError("testSecret: version %s of secret %s does not log in"
                            % (token, arn))

    if _env_bool("TEST_LOGIN"):
        with _connect(target, pending["username"], pending["password"]) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user")
                who = cur.fetchone()[0]
        if who != pending["username"]:
            raise RotationError("testSecret: logged in as %s, expected %s"
                                % (who, pending["username"]))
        logger.info("testSecret: logged in as %s with version %s", who, token)
    logger.info("testSecret: version %s of secret %s logs in", token, arn)


def finish_secret(client, arn, token, versions):
    """Move AWSCURRENT to the new version (the old one becomes AWSPREVIOUS)."""
    current_version = None
    for version, stages in versions.items():
        if "AWSCURRENT" in stages:
            current_version = version
            break
    if current_version == token:
        logger.info("finishSecret: version %s already AWSCURRENT for secret %s", token, arn)
        return
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                       MoveToVersionId=token,
                                       RemoveFromVersionId=current_version)
    logger.info("finishSecret: moved AWSCURRENT to version %s of secret %s (from %s)",
                token, arn, current_version)


# --- helpers -----------------------------------------------------------------

def get_secret_dict(client, arn, stage, token=None):
    """The JSON of a version, checked for the fields a rotation needs.
    Raises client.exceptions.ResourceNotFoundException when it is absent."""
    kwargs = {"SecretId": arn, "VersionStage": stage}
    if token is not None:
        kwargs["VersionId"] = token
    value = client.get_secret_value(**kwargs)
    if "SecretString" not in value:
        raise RotationError("%s version of secret %s is not a string" % (stage, arn))
    try:
        secret = json.loads(value["SecretString"])
    except ValueError:
        raise RotationError("%s version of secret %s is not JSON" % (stage, arn)) from None
    if not isinstance(secret, dict):
        raise RotationError("%s version of secret %s is not a JSON object" % (stage, arn))
    for field in ("username", "password"):
        if not isinstance(secret.get(field), str) or not secret[field]:
            raise RotationError("%s version of secret %s has no %s field"
                                % (stage, arn, field))
    engine = secret.get("engine")
    if engine is not None and engine not in ENGINES:
        raise RotationError("%s version of secret %s: engine %r is not PostgreSQL"
                            % (stage, arn, engine))
    return secret


def alternate_username(username):
    """<user>_clone, or <user> without _clone."""
    if username.endswith(CLONE_SUFFIX) and len(username) > len(CLONE_SUFFIX):
        return username[:-len(CLONE_SUFFIX)]
    other = username + CLONE_SUFFIX
    if len(other.encode()) > NAMEDATALEN_MAX:
        raise RotationError("user name %s%s is longer than %d bytes"
                            % (username, CLONE_SUFFIX, NAMEDATALEN_MAX))
    return other


def _strategy(current):
    value = os.environ.get("ROTATION_STRATEGY", "auto").strip().lower() or "auto"
    if value == "auto":
        return "alternating" if current.get("masterarn") else "single"
    if value not in ("single", "alternating"):
        raise RotationError("ROTATION_STRATEGY must be single, alternating or auto")
    return value


def _random_password(client):
    length = os.environ.get("PASSWORD_LENGTH", "32")
    try:
        length = int(length)
    except ValueError:
        raise RotationError("PASSWORD_LENGTH must be an integer") from None
    if not 16 <= length <= 4096:
        raise RotationError("PASSWORD_LENGTH must be between 16 and 4096")
    exclude = os.environ.get("EXCLUDE_CHARACTERS", DEFAULT_EXCLUDE)
    return client.get_random_password(PasswordLength=length,
                                      ExcludeCharacters=exclude)["RandomPassword"]


def _pending_and_target(client, arn, token):
    """The pending version, AWSCURRENT, and where the database is.  The
    pending version must point at the same server as AWSCURRENT (and name the
    same administrator secret): a version cannot send the administrator's
    credentials somewhere else.  The database is DB_NAME, never the
    secret's."""
    try:
        pending = get_secret_dict(client, arn, "AWSPENDING", token)
    except client.exceptions.ResourceNotFoundException:
        logger.error("version %s of secret %s has no value: createSecret has not run",
                     token, arn)
        raise RotationError("version %s of secret %s has no value (createSecret has not run)"
                            % (token, arn)) from None
    current = get_secret_dict(client, arn, "AWSCURRENT")
    for field in ("host", "port", "dbname", "engine", "masterarn"):
        if pending.get(field) != current.get(field):
            raise RotationError("the pending version of secret %s has a different %s "
                                "than AWSCURRENT" % (arn, field))
    if not pending.get("host"):
        raise RotationError("secret %s has no host field" % arn)
    try:
        port = int(pending.get("port", 5432))
    except (TypeError, ValueError):
        raise RotationError("secret %s has an invalid port field" % arn) from None
    dbname = os.environ.get("DB_NAME", "").strip()
    if not dbname:
        raise RotationError("DB_NAME must name the database where %s is installed "
                            "(the secret's dbname is not trusted)" % EXTENSION)
    target = {"host": pending["host"], "port": port, "dbname": dbname}
    return pending, current, target


def _host_key(host, port):
    return "%s:%d" % (str(host).strip().rstrip(".").lower(), port)


def _allowed_hosts():
    """DB_ALLOWED_HOSTS as a set of "host:port" (port 5432 when absent)."""
    allowed = set()
    for item in os.environ.get("DB_ALLOWED_HOSTS", "").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit():
            host, port = item, "5432"
        allowed.add(_host_key(host, int(port)))
    return allowed


def _check_host(arn, target, master, master_arn):
    """The secret may send the administrator's credentials only to the
    administrator secret's own server (or to one DB_ALLOWED_HOSTS names):
    refused before any connection is made."""
    want = _host_key(target["host"], target["port"])
    allowed = _allowed_hosts()
    if not allowed:
        if not master.get("host"):
            raise RotationError("admin secret %s has no host field: set DB_ALLOWED_HOSTS "
                                "to the servers its credentials may be sent to" % master_arn)
        try:
            allowed = {_host_key(master["host"], int(master.get("port", 5432)))}
        except (TypeError, ValueError):
            raise RotationError("admin secret %s has an invalid port field" % master_arn) from None
    if want not in allowed:
        logger.error("secret %s names server %s, which is not the administrator's "
                     "(%s): refusing to send the administrator's credentials there",
                     arn, want, ", ".join(sorted(allowed)))
        raise RotationError("secret %s names server %s, which is not the administrator "
                            "secret's host nor in DB_ALLOWED_HOSTS" % (arn, want))


def _admin_credentials(client, arn, current, target):
    """The administrator's credentials: MASTER_SECRET_ARN, else AWSCURRENT's
    masterarn (never the pending version's), checked against target."""
    master_arn = os.environ.get("MASTER_SECRET_ARN") or None
    field = current.get("masterarn")
    if master_arn and field and field != master_arn:
        logger.warning("secret %s names another admin secret in masterarn; "
                       "using MASTER_SECRET_ARN", arn)
    master_arn = master_arn or field
    if not master_arn or not isinstance(master_arn, str):
        raise RotationError("no admin secret: set MASTER_SECRET_ARN or a masterarn field")
    value = client.get_secret_value(SecretId=master_arn, VersionStage="AWSCURRENT")
    try:
        master = json.loads(value.get("SecretString") or "")
    except ValueError:
        raise RotationError("admin secret %s is not JSON" % master_arn) from None
    if not isinstance(master, dict) or not master.get("username") or not master.get("password"):
        raise RotationError("admin secret %s has no username or password" % master_arn)
    _check_host(arn, target, master, master_arn)
    return master


def _int_env(name, default, lo, hi):
    try:
        value = int(os.environ.get(name, "").strip() or default)
    except ValueError:
        raise RotationError("%s must be an integer" % name) from None
    if not lo <= value <= hi:
        raise RotationError("%s must be between %d and %d" % (name, lo, hi))
    return value


def _auth_options(sslmode):
    """libpq options that refuse any authentication but SCRAM-SHA-256, so
    that a server asking for a cleartext or MD5 password never gets the
    administrator's: require_auth (libpq 16+), and channel binding (libpq
    11+) whenever TLS is on, which also proves the server holds the
    verifier.  An older libpq without TLS cannot insist: refused."""
    options = {}
    if psycopg2.extensions.libpq_version() >= LIBPQ_REQUIRE_AUTH:
        options["require_auth"] = "scram-sha-256"
        if sslmode != "disable":
            options["channel_binding"] = "require"
    elif sslmode in TLS_SSLMODES:
        options["channel_binding"] = "require"
    else:
        raise RotationError("DB_SSLMODE=%s: libpq %d cannot insist on SCRAM-SHA-256 without "
                            "TLS; use require, verify-ca or verify-full, or libpq 16 or later"
                            % (sslmode, psycopg2.extensions.libpq_version()))
    return options


def _connect(target, user, password):
    """A connection with TLS as DB_SSLMODE says (verify-full by default),
    SCRAM-SHA-256 only, search_path pinned, TCP keepalives on."""
    sslmode = os.environ.get("DB_SSLMODE", "verify-full").strip() or "verify-full"
    if sslmode not in SSLMODES:
        raise RotationError("DB_SSLMODE must be one of %s" % ", ".join(SSLMODES))
    auth = _auth_options(sslmode)
    if sslmode != "verify-full":
        logger.warning("connecting to %s:%s with sslmode=%s (not verify-full)",
                       target["host"], target["port"], sslmode)
    kwargs = {
        "host": target["host"],
        "port": target["port"],
        "dbname": target["dbname"],
        "user": user,
        "password": password,
        "sslmode": sslmode,
        "connect_timeout": _int_env("DB_CONNECT_TIMEOUT", 5, 1, 60),
        "application_name": "secretsmgr-rotation-lambda",
        # the database's or the role's search_path never applies: nothing an
        # owner of the database plants ahead of pg_catalog can be called
        "options": "-c search_path=pg_catalog,pg_temp -c statement_timeout=%d"
                   % _int_env("DB_STATEMENT_TIMEOUT_MS", 30000, 1000, 600000),
        # a dead peer is noticed within about a minute, not the kernel's hours
        "keepalives": 1,
        "keepalives_idle": 15,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30000,
    }
    kwargs.update(auth)
    root_cert = os.environ.get("DB_SSL_ROOT_CERT")
    if root_cert:
        kwargs["sslrootcert"] = root_cert
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.Error as e:
        logger.error("cannot connect to %s:%s as %s: %s", target["host"], target["port"],
                     user, str(e).strip())
        raise
    conn.autocommit = True
    return _Closing(conn)


class _Closing:
    """psycopg2's own context manager ends the transaction but keeps the
    connection open; this one closes it."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc):
        self.conn.close()
        return False


def _extension_schema(cur, dbname):
    """The schema secretsmgr is installed in, after checking its version."""
    cur.execute("SELECT n.nspname, e.extversion FROM pg_catalog.pg_extension e"
                " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
                " WHERE e.extname OPERATOR(pg_catalog.=) %s", (EXTENSION,))
    row = cur.fetchone()
    if row is None:
        raise RotationError("%s is not installed in database %s (DB_NAME)" % (EXTENSION, dbname))
    if row[1] not in EXTENSION_VERSIONS:
        raise RotationError("%s %s in database %s is not a version this function knows (%s)"
                            % (EXTENSION, row[1], dbname, ", ".join(EXTENSION_VERSIONS)))
    return row[0]


def _call(conn, step, function, params):
    """Run one secretsmgr function, named with the extension's schema and
    its argument types, with its arguments passed as query parameters
    (quoted by the driver, never pasted into the SQL by this code); log the
    server's notices."""
    try:
        with conn.cursor() as cur:
            schema = _extension_schema(cur, conn.info.dbname)
            sql = psycopg2.sql.SQL("SELECT {}.{}(%s::pg_catalog.text, %s::pg_catalog.text)").format(
                psycopg2.sql.Identifier(schema), psycopg2.sql.Identifier(function))
            cur.execute(sql, params)
            return cur.fetchone()[0]
    except psycopg2.Error as e:
        logger.error("%s: the database refused: %s%s", step,
                     "[%s] " % e.pgcode if e.pgcode else "", str(e).strip())
        raise
    finally:
        for notice in conn.notices:
            logger.info("%s: database: %s", step, notice.strip())
        del conn.notices[:]


def _env_bool(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


_clients = {}


def _secrets_client():
    """One client per endpoint, kept across invocations of a warm Lambda.
    Timeouts and retries well below the function's timeout: an unreachable
    endpoint fails a step in under a minute instead of using it all up."""
    endpoint = os.environ.get("SECRETS_MANAGER_ENDPOINT") or None
    config = botocore.config.Config(
        connect_timeout=_int_env("SM_CONNECT_TIMEOUT", 5, 1, 60),
        read_timeout=_int_env("SM_READ_TIMEOUT", 10, 1, 60),
        retries={"mode": "standard", "total_max_attempts": _int_env("SM_MAX_ATTEMPTS", 3, 1, 5)},
        tcp_keepalive=True)
    key = (endpoint, config.connect_timeout, config.read_timeout,
           config.retries["total_max_attempts"])
    if key not in _clients:
        _clients[key] = boto3.client("secretsmanager", endpoint_url=endpoint, config=config)
    return _clients[key]
