/*
 * ops.c
 *		Operating secretsmgr: the least-privilege IAM policy of the managed
 *		secrets, and the health report.
 *
 * secretsmgr_iam_policy() derives the policy from secretsmgr_managed and
 * DescribeSecret (exact ARNs, and the customer-managed KMS keys), so it
 * never drifts from the secrets it must reach, and its actions from the
 * client's table of operations (sm_operations), so it never drifts from
 * what the code calls.
 *
 * secretsmgr_health() runs every check in a subtransaction of its own and
 * turns any error into a FAIL row with the error's message and hint: it
 * never raises for a failing check (a cancel, a statement timeout or a
 * lost client still ends it: sm_subxact_run re-raises those).  It reads secrets' metadata and verifies
 * AWSCURRENT against the role, but never returns or logs a value.
 */
#include "postgres.h"

#include "smjson.h"

#include <sys/stat.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "credentials.h"
#include "registry.h"
#include "rotation.h"
#include "runas.h"
#include "secretsmgr.h"
#include "smclient.h"
#include "stats_shmem.h"
#include "stale.h"

/* One managed secret, as the registry holds it. */
typedef struct ManagedRow
{
	char	   *secret_id;
	char	   *secret_arn;		/* may be NULL */
	char	   *role_name;
	char	   *clone_role;		/* may be NULL */
	char	   *strategy;
	bool		has_interval;
	Interval	rotation_interval;
	bool		has_last;		/* a successful rotation is recorded */
	TimestampTz last_rotated;
	/* what the health check learnt from DescribeSecret */
	bool		described;
	char	   *current;		/* version holding AWSCURRENT */
	char	   *pending;		/* version holding AWSPENDING */
} ManagedRow;

/* What managed_rows_owner reads: its SQL text in, the rows out. */
typedef struct ManagedRowsCall
{
	const char *sql;
	MemoryContext cxt;
	List	   *rows;
} ManagedRowsCall;

/* As the extension owner: run the registry query, copy the rows out. */
static void
managed_rows_owner(void *arg)
{
	ManagedRowsCall *call = arg;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(call->sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read secretsmgr_managed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(call->cxt);
		ManagedRow *r = palloc0(sizeof(ManagedRow));
		bool		isnull;
		Datum		d;

		r->secret_id = SPI_getvalue(tup, desc, 1);
		r->secret_arn = SPI_getvalue(tup, desc, 2);
		r->role_name = SPI_getvalue(tup, desc, 3);
		r->clone_role = SPI_getvalue(tup, desc, 4);
		r->strategy = SPI_getvalue(tup, desc, 5);
		d = SPI_getbinval(tup, desc, 6, &isnull);
		if (!isnull)
		{
			r->has_interval = true;
			r->rotation_interval = *DatumGetIntervalP(d);
		}
		d = SPI_getbinval(tup, desc, 7, &isnull);
		if (!isnull)
		{
			r->has_last = true;
			r->last_rotated = DatumGetTimestampTz(d);
		}
		call->rows = lappend(call->rows, r);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
}

/*
 * Every row of secretsmgr_managed, with its last successful rotation.  Read
 * as the extension owner (the table is revoked from PUBLIC), so every name
 * in the text is schema-qualified.
 */
static List *
managed_rows(void)
{
	char	   *schema = sm_registry_schema_quoted();
	ManagedRowsCall call;

	call.sql = psprintf("SELECT m.secret_id, m.secret_arn,"
						"       m.role_name::pg_catalog.text, m.clone_role::pg_catalog.text,"
						"       m.strategy, m.rotation_interval,"
						"       (SELECT pg_catalog.max(h.finished_at)"
						"          FROM %s.secretsmgr_rotation_history h"
						"         WHERE h.secret_id OPERATOR(pg_catalog.=) m.secret_id"
						"           AND h.status OPERATOR(pg_catalog.=) 'succeeded'"
						"           AND h.step OPERATOR(pg_catalog.=) ANY"
						"               (ARRAY['finishSecret', 'setSecret', 'reconcile']::pg_catalog.text[]))"
						"  FROM %s.secretsmgr_managed m"
						" ORDER BY m.secret_id USING OPERATOR(pg_catalog.<)",
						schema, schema);
	call.cxt = CurrentMemoryContext;
	call.rows = NIL;
	sm_runas_owner(managed_rows_owner, &call);
	return call.rows;
}

/* Is key (a KmsKeyId of DescribeSecret) a customer-managed key? */
static bool
customer_managed_key(const char *key)
{
	return key != NULL && key[0] != '\0' &&
		strstr(key, "alias/aws/secretsmanager") == NULL;
}

/* The actions of sm_operations[] that need (secret-scoped or not). */
static json_t *
operation_actions(int need, bool secret_scoped)
{
	json_t	   *arr = json_array();

	for (int i = 0; i < sm_noperations; i++)
		if ((sm_operations[i].needed_by & need) != 0 &&
			sm_operations[i].secret_scoped == secret_scoped)
			json_array_append_new(arr, json_string(psprintf("secretsmanager:%s",
															sm_operations[i].name)));
	return arr;
}

/* The KMS actions Secrets Manager asks for on behalf of need's operations. */
static json_t *
operation_kms_actions(int need)
{
	json_t	   *arr = json_array();

	for (int i = 0; i < sm_noperations; i++)
	{
		const char *a = sm_operations[i].kms_action;
		bool		seen = false;
		size_t		j;
		json_t	   *v;

		if ((sm_operations[i].needed_by & need) == 0 || a == NULL)
			continue;
		json_array_foreach(arr, j, v)
			seen = seen || strcmp(json_string_value(v), a) == 0;
		if (!seen)
			json_array_append_new(arr, json_string(a));
	}
	return arr;
}

/* A statement of actions (stolen) on resources (stolen). */
static json_t *
statement_of(const char *sid, json_t *actions, json_t *resources)
{
	json_t	   *st = json_object();

	json_object_set_new(st, "Sid", json_string(sid));
	json_object_set_new(st, "Effect", json_string("Allow"));
	json_object_set_new(st, "Action", actions);
	json_object_set_new(st, "Resource", resources);
	return st;
}

/*
 * Is arn the full ARN of one secret, suffix included, without wildcards?
 * (arn:<partition>:secretsmanager:<region>:<12 digits>:secret:<name>-XXXXXX)
 */
static bool
full_secret_arn(const char *arn)
{
	const char *p = arn;
	const char *name;
	size_t		len;
	int			digits = 0;

	if (strncmp(p, "arn:aws", 7) != 0 || strpbrk(arn, "*? \t\n") != NULL)
		return false;
	p = strchr(p + 4, ':');
	if (p == NULL || strncmp(p, ":secretsmanager:", 16) != 0)
		return false;
	name = p + 16;				/* the region */
	p = strchr(name, ':');
	if (p == NULL || p == name)
		return false;
	for (p++; *p >= '0' && *p <= '9'; p++)
		digits++;
	if (digits != 12 || strncmp(p, ":secret:", 8) != 0)
		return false;
	name = p + 8;
	len = strlen(name);
	if (len < 8 || name[len - 7] != '-')
		return false;
	for (size_t i = len - 6; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
			  (name[i] >= '0' && name[i] <= '9')))
			return false;
	return true;
}

/*
 * Is arn the ARN of one secret, either full or with "-??????" for its
 * suffix, the pattern AWS documents for naming a secret by its name?
 * (*pattern says which.)
 */
static bool
secret_arn_or_pattern(const char *arn, bool *pattern)
{
	size_t		len = strlen(arn);
	char	   *copy;
	bool		ok;

	*pattern = len > 7 && strcmp(arn + len - 7, "-??????") == 0;
	if (!*pattern)
		return full_secret_arn(arn);
	copy = pstrdup(arn);
	memset(copy + len - 6, 'a', 6);
	ok = full_secret_arn(copy);
	pfree(copy);
	return ok;
}

/*
 * Does the ARN or "-??????" pattern given name the secret whose full ARN is
 * arn?
 */
static bool
names_secret(const char *given, const char *arn)
{
	size_t		len = strlen(given);
	bool		pattern;

	if (!secret_arn_or_pattern(given, &pattern) || !pattern)
		return strcmp(given, arn) == 0;
	return strlen(arn) == len && strncmp(given, arn, len - 6) == 0;
}

/* Add s to the array of strings arr unless it is there. */
static void
append_unique(json_t *arr, const char *s)
{
	size_t		i;
	json_t	   *v;

	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return;
	json_array_append_new(arr, json_string(s));
}

/*
 * Build the IAM policy document for purpose ("database" or "lambda") from
 * sm_operations[]: the secret-scoped actions on the exact ARNs of the
 * managed secrets, the others on "*", the KMS actions on their
 * customer-managed keys (through Secrets Manager, for these secrets only),
 * and for the Lambda GetSecretValue on the administrator secret.
 */
static json_t *
build_policy(const char *purpose, const char *admin_arn, List *rows, List *reads)
{
	bool		lambda = strcmp(purpose, "lambda") == 0;
	int			need = lambda ? SM_NEED_LAMBDA : SM_NEED_DATABASE;
	json_t	   *doc = json_object();
	json_t	   *stmts = json_array();
	json_t	   *arns = json_array();
	json_t	   *keys = json_array();
	json_t	   *unscoped = operation_actions(need, false);
	json_t	   *read_arns = json_array();
	ListCell   *lc;

	foreach(lc, rows)
	{
		ManagedRow *r = lfirst(lc);
		SmSecretDescription desc;
		const char *arn;
		const char *key;
		size_t		i;
		json_t	   *k;
		bool		seen = false;

		sm_client_describe(r->secret_arn ? r->secret_arn : r->secret_id, &desc);
		arn = desc.arn;
		key = desc.kms_key_id;
		json_array_append_new(arns, json_string(arn ? arn : r->secret_id));
		if (customer_managed_key(key))
		{
			json_array_foreach(keys, i, k)
				seen = seen || strcmp(json_string_value(k), key) == 0;
			if (!seen)
				json_array_append_new(keys, json_string(key));
		}
	}
	foreach(lc, reads)
	{
		const char *given = lfirst(lc);
		size_t		i;
		json_t	   *v;
		bool		managed = false;

		json_array_foreach(arns, i, v)
			managed = managed || names_secret(given, json_string_value(v));
		if (!managed)
			append_unique(read_arns, given);
	}

	json_object_set_new(doc, "Version", json_string("2012-10-17"));
	if (json_array_size(arns) > 0)
		json_array_append_new(stmts, statement_of(lambda ? "SecretsmgrRotateManagedSecrets" :
												  "SecretsmgrManagedSecrets",
												  operation_actions(need, true),
												  json_deep_copy(arns)));
	if (json_array_size(read_arns) > 0)
		json_array_append_new(stmts, statement_of("SecretsmgrReadSecrets",
												  operation_actions(SM_NEED_READ, true),
												  json_deep_copy(read_arns)));
	if (json_array_size(unscoped) > 0)
		json_array_append_new(stmts, statement_of(lambda ? "SecretsmgrGeneratePasswords" :
												  "SecretsmgrNotResourceScoped",
												  json_incref(unscoped),
												  json_string("*")));
	if (admin_arn != NULL)
	{
		json_array_append_new(stmts, statement_of("SecretsmgrReadTheAdminSecret",
												  json_pack("[s]", "secretsmanager:GetSecretValue"),
												  json_string(admin_arn)));
		json_array_append_new(arns, json_string(admin_arn));
	}
	if (json_array_size(keys) > 0)
	{
		json_t	   *st = statement_of("SecretsmgrUseSecretKeys", operation_kms_actions(need),
									  json_deep_copy(keys));
		json_t	   *cond = json_object();
		json_t	   *eq = json_object();
		char	   *via = psprintf("secretsmanager.%s.amazonaws.com", sm_region_get());

		json_object_set_new(eq, "kms:ViaService", json_string(via));
		json_object_set_new(eq, "kms:EncryptionContext:SecretARN", json_deep_copy(arns));
		json_object_set_new(cond, "StringEquals", eq);
		json_object_set_new(st, "Condition", cond);
		json_array_append_new(stmts, st);
	}
	if (json_array_size(read_arns) > 0)
	{
		/*
		 * Which key encrypts a secret not yet described is not known: allow
		 * its decryption through Secrets Manager for these secrets only.
		 */
		json_t	   *st = statement_of("SecretsmgrDecryptReadSecrets",
									  operation_kms_actions(SM_NEED_READ),
									  json_string("*"));

		json_object_set_new(st, "Condition",
							json_pack("{s:{s:s}, s:{s:O}}",
									  "StringEquals", "kms:ViaService",
									  psprintf("secretsmanager.%s.amazonaws.com", sm_region_get()),
									  "StringLike", "kms:EncryptionContext:SecretARN",
									  read_arns));
		json_array_append_new(stmts, st);
	}
	json_object_set_new(doc, "Statement", stmts);
	json_decref(arns);
	json_decref(keys);
	json_decref(unscoped);
	json_decref(read_arns);
	return doc;
}

/*
 * The secrets argument of secretsmgr_iam_policy: ARNs (full, or with
 * "-??????" for the suffix) of secrets the database reads without managing
 * them, or is about to bind.  Refused for the Lambda, whose secrets are the
 * managed ones.
 */
static List *
policy_read_secrets(ArrayType *arr, const char *purpose)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	if (strcmp(purpose, "database") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("only the \"database\" policy takes secrets to read"),
				 errdetail("The rotation Lambda reads and writes only managed secrets and its administrator secret."),
				 errhint("Call secretsmgr_iam_policy('lambda', admin_secret) without a third argument.")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *given;
		bool		pattern;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the secrets to read must not contain NULL"),
					 errdetail("Element %d of the array is NULL.", i + 1),
					 errhint("Name each secret by its ARN.")));
		given = TextDatumGetCString(elems[i]);
		if (!secret_arn_or_pattern(given, &pattern))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a secret to read must be named by its ARN"),
					 errdetail("Element %d is not arn:aws:secretsmanager:<region>:<account>:secret:<name>-XXXXXX, nor that ARN with \"-??????\" for its six-character suffix.", i + 1),
					 errhint("Copy the ARN from the console or DescribeSecret, or write arn:aws:secretsmanager:<region>:<account>:secret:<name>-?????? for a secret known by its name.")));
		result = lappend(result, given);
	}
	return result;
}

PG_FUNCTION_INFO_V1(secretsmgr_iam_policy);

/*
 * secretsmgr_iam_policy(purpose DEFAULT 'database', admin_secret DEFAULT
 * NULL, secrets DEFAULT NULL) -> jsonb: the least-privilege policy the
 * database host ("database") or the rotation Lambda ("lambda", which also
 * reads admin_secret) needs for the managed secrets, with exact ARNs; for
 * the database, also reading (and binding) the secrets named.
 */
Datum
secretsmgr_iam_policy(PG_FUNCTION_ARGS)
{
	char	   *purpose = PG_ARGISNULL(0) ? "database" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *admin_arn = PG_NARGS() > 1 && !PG_ARGISNULL(1) ?
		text_to_cstring(PG_GETARG_TEXT_PP(1)) : NULL;
	List	   *reads = NIL;
	json_t	   *doc;
	char	   *dump;
	char	   *text;

	if (strcmp(purpose, "database") != 0 && strcmp(purpose, "lambda") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown policy purpose \"%s\"", purpose),
				 errhint("Use \"database\" (the database host's role) or \"lambda\" (the rotation Lambda's execution role).")));
	if (strcmp(purpose, "lambda") == 0 && admin_arn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the rotation Lambda's policy needs the administrator secret's ARN"),
				 errdetail("The Lambda reads the administrator's credentials from that secret in setSecret and testSecret."),
				 errhint("Pass the full ARN its MASTER_SECRET_ARN names: secretsmgr_iam_policy('lambda', 'arn:aws:secretsmanager:<region>:<account>:secret:<name>-XXXXXX').")));
	if (admin_arn != NULL && strcmp(purpose, "lambda") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("only the \"lambda\" policy takes an administrator secret"),
				 errdetail("The database host never reads the rotation Lambda's administrator secret."),
				 errhint("Call secretsmgr_iam_policy('database') without a second argument.")));
	if (admin_arn != NULL && !full_secret_arn(admin_arn))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the administrator secret must be named by its full ARN"),
				 errdetail("The policy grants exactly one secret: an ARN with its six-character suffix and no wildcards."),
				 errhint("Copy the ARN from DescribeSecret or the console: arn:aws:secretsmanager:<region>:<account>:secret:<name>-XXXXXX.")));

	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
		reads = policy_read_secrets(PG_GETARG_ARRAYTYPE_P(2), purpose);

	doc = build_policy(purpose, admin_arn, managed_rows(), reads);
	dump = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (dump == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	text = pstrdup(dump);
	sm_json_free_string(dump);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/* The health report being built. */
typedef struct Health
{
	ReturnSetInfo *rsinfo;
} Health;

/* Add one row. */
static void
report(Health *h, const char *check, const char *status, const char *detail)
{
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = CStringGetTextDatum(check);
	values[1] = CStringGetTextDatum(status);
	values[2] = CStringGetTextDatum(detail);
	tuplestore_putvalues(h->rsinfo->setResult, h->rsinfo->setDesc, values, nulls);
}

typedef void (*CheckFn) (Health *h, const char *check, void *arg);

/*
 * The IAM statement whose absence an AWS access denial shows: our error
 * messages name the operation ("AWS denied <Operation> on secret ...").
 */
static char *
missing_statement(const ErrorData *ed, const char *arn)
{
	char		op[64];
	json_t	   *st;
	char	   *dump;
	char	   *result;

	if (ed->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE || arn == NULL ||
		sscanf(ed->message, "AWS denied %63s on secret", op) != 1)
		return NULL;
	st = json_pack("{s:s, s:s, s:s}", "Effect", "Allow",
				   "Action", psprintf("secretsmanager:%s", op), "Resource", arn);
	dump = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(st);
	result = dump ? pstrdup(dump) : NULL;
	if (dump)
		sm_json_free_string(dump);
	return result;
}

/*
 * Run one check in a subtransaction; an error becomes a FAIL row with the
 * error's message, detail and hint (and, for an AWS access denial on the
 * secret arn, the policy statement that is missing).  NOTICEs of the check
 * are not sent.
 */
typedef struct CheckCall
{
	Health	   *h;
	const char *check;
	CheckFn		fn;
	void	   *arg;
} CheckCall;

/* Inside the subtransaction: the check, with its NOTICEs kept back. */
static void
check_call(void *arg)
{
	CheckCall  *c = arg;
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("client_min_messages", "warning", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	c->fn(c->h, c->check, c->arg);
	AtEOXact_GUC(true, nestlevel);
}

static void
run_check(Health *h, const char *check, CheckFn fn, void *arg, const char *arn)
{
	CheckCall	call = {h, check, fn, arg};
	ErrorData  *ed = sm_subxact_run(check_call, &call);
	StringInfoData buf;
	char	   *missing;

	if (ed == NULL)
		return;
	initStringInfo(&buf);
	appendStringInfoString(&buf, ed->message);
	if (ed->detail)
		appendStringInfo(&buf, " %s", ed->detail);
	if ((missing = missing_statement(ed, arn)) != NULL)
		appendStringInfo(&buf, " Missing IAM statement: %s", missing);
	if (ed->hint)
		appendStringInfo(&buf, " Hint: %s", ed->hint);
	report(h, check, "FAIL", buf.data);
	FreeErrorData(ed);
}

/* configuration: region, endpoint, TLS, proxy. */
static void
check_configuration(Health *h, const char *check, void *arg)
{
	const char *region = sm_region_get();
	const char *endpoint = sm_client_endpoint();
	bool		plain = strncmp(endpoint, "http://", 7) == 0;
	struct stat st;
	char	   *proxy;
	const char *proxy_var;
	const char *proxy_invalid;

	if (sm_guc_ca_file && sm_guc_ca_file[0] && stat(sm_guc_ca_file, &st) != 0)
	{
		report(h, check, "FAIL",
			   psprintf("\"secretsmgr.ca_file\" (%s) cannot be read: TLS verification will fail. Hint: fix the path or empty the setting to use the system's trust store.",
						sm_guc_ca_file));
		return;
	}
	proxy = sm_http_proxy_for(endpoint, &proxy_var, &proxy_invalid);
	if (proxy_invalid != NULL)
	{
		report(h, check, "FAIL",
			   psprintf("%s: requests to the endpoint will fail. Hint: set it to http://host:port (or https://) or unset it.",
						proxy_invalid));
		return;
	}
	report(h, check, plain ? "WARN" : "OK",
		   psprintf("region %s, endpoint %s%s%s", region, endpoint,
					plain ? " (plain HTTP, accepted on loopback only: a test set-up, not AWS)" :
					", TLS peer and host verified",
					proxy ? psprintf(", through the proxy %s of %s",
									 sm_http_url_redacted(proxy), proxy_var) : ""));
}

/* credentials: where they come from and when they expire. */
static void
check_credentials(Health *h, const char *check, void *arg)
{
	SmCredentials c;
	char	   *detail;

	sm_credentials_get(&c);
	if (c.expiration > 0)
		detail = psprintf("source %s, temporary credentials expiring in %ld min",
						  c.source, (long) (c.expiration - time(NULL)) / 60);
	else
		detail = psprintf("source %s, long-term keys", c.source);
	sm_credentials_free(&c);
	report(h, check, "OK", detail);
}

/* endpoint: one signed call; any AWS answer proves reachability. */
static void
check_endpoint(Health *h, const char *check, void *arg)
{
	json_t	   *req = json_pack("{s:i}", "PasswordLength", 16);
	SmAwsError	err;
	json_t	   *res = sm_client_try_call("GetRandomPassword", req, &err);

	json_decref(req);
	if (res != NULL)
	{
		json_decref(res);
		report(h, check, "OK", "reachable, request signature accepted");
		return;
	}
	if (err.transport == SM_HTTP_OK && err.type &&
		(strcmp(err.type, "AccessDeniedException") == 0))
	{
		report(h, check, "WARN", "reachable, request signature accepted, but GetRandomPassword is denied: the IAM policy is not the one secretsmgr_iam_policy('database') generates. Hint: attach that policy to the database host's principal.");
		return;
	}
	sm_client_raise("GetRandomPassword", &err, NULL);
}

/* secret <id>: exists (and note which versions hold AWSCURRENT / AWSPENDING). */
static void
check_secret_exists(Health *h, const char *check, void *arg)
{
	ManagedRow *r = arg;
	SmSecretDescription desc;
	const char *current;
	const char *pending;

	sm_client_describe(r->secret_arn ? r->secret_arn : r->secret_id, &desc);
	current = sm_description_holder(&desc, "AWSCURRENT");
	pending = sm_description_holder(&desc, "AWSPENDING");
	r->current = current ? pstrdup(current) : NULL;
	r->pending = pending ? pstrdup(pending) : NULL;
	r->described = true;
	if (desc.deleted)
		report(h, check, "FAIL", "the secret is scheduled for deletion. Hint: restore it (RestoreSecret) or unbind it with secretsmgr_unmanage().");
	else
		report(h, check, "OK", psprintf("exists, AWSCURRENT is version %s", r->current ? r->current : "(none)"));
}

/* secret <id>: AWSCURRENT logs in as the bound role. */
static void
check_secret_verifies(Health *h, const char *check, void *arg)
{
	ManagedRow *r = arg;

	if (sm_rotation_verify(r->secret_arn ? r->secret_arn : r->secret_id, "AWSCURRENT"))
		report(h, check, "OK", psprintf("logs in as role %s", r->role_name));
	else
		report(h, check, "FAIL", "the AWSCURRENT password does not log in as the bound role. Hint: SELECT secretsmgr_reconcile(...) repairs drift after a crash; see docs/rotation.md.");
}

/* secret <id>: no AWSPENDING left on a version that is not AWSCURRENT. */
static void
check_secret_pending(Health *h, const char *check, void *arg)
{
	ManagedRow *r = arg;

	if (r->pending && (r->current == NULL || strcmp(r->pending, r->current) != 0))
		report(h, check, "WARN", psprintf("version %s holds AWSPENDING but not AWSCURRENT: a rotation Lambda started and did not finish. Hint: let Secrets Manager retry the rotation, or remove the label with UpdateSecretVersionStage (RemoveFromVersionId).", r->pending));
	else
		report(h, check, "OK", "no unfinished rotation");
}

/* secret <id>: last successful rotation against rotation_interval. */
static void
check_secret_age(Health *h, const char *check, void *arg)
{
	ManagedRow *r = arg;
	char	   *interval;
	TimestampTz due;

	if (!r->has_interval)
	{
		report(h, check, "OK", r->has_last ?
			   psprintf("last rotated %s, no rotation interval", timestamptz_to_str(r->last_rotated)) :
			   "never rotated, no rotation interval");
		return;
	}
	interval = DatumGetCString(DirectFunctionCall1(interval_out,
												   IntervalPGetDatum(&r->rotation_interval)));
	if (!r->has_last)
	{
		report(h, check, "WARN", psprintf("never rotated, interval %s. Hint: SELECT secretsmgr_rotate(...) or schedule secretsmgr_rotate_due().", interval));
		return;
	}
	due = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												  TimestampTzGetDatum(r->last_rotated),
												  IntervalPGetDatum(&r->rotation_interval)));
	if (due < GetCurrentTransactionStartTimestamp())
		report(h, check, "WARN", psprintf("last rotated %s, interval %s: overdue. Hint: schedule secretsmgr_rotate_due().",
										 timestamptz_to_str(r->last_rotated), interval));
	else
		report(h, check, "OK", psprintf("last rotated %s, interval %s",
									   timestamptz_to_str(r->last_rotated), interval));
}

/*
 * secret <id>: version churn.  Secrets Manager keeps the 100 newest versions
 * plus every version of the last 24 hours; more than one new version per
 * ten minutes, sustained, runs into its version quota.
 */
static void
check_secret_versions(Health *h, const char *check, void *arg)
{
	ManagedRow *r = arg;
	int			total;
	int			recent;

	sm_client_count_versions(r->secret_arn ? r->secret_arn : r->secret_id,
							 (double) time(NULL) - 86400.0, &total, &recent);
	if (recent > 72)
		report(h, check, "WARN",
			   psprintf("%d versions, %d of them created in the last 24 hours: more than one every 20 minutes. Hint: rotate less often; Secrets Manager's version quota counts every version of the last 24 hours.",
						total, recent));
	else
		report(h, check, "OK", psprintf("%d versions, %d of them created in the last 24 hours", total, recent));
}

/* secret <id>: the clone role of an alternating binding exists and logs in. */
static void
check_secret_clone(Health *h, const char *check, void *arg)
{
	ManagedRow *r = arg;
	HeapTuple	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(r->clone_role));
	bool		canlogin;

	if (!HeapTupleIsValid(tup))
	{
		report(h, check, "FAIL", psprintf("role %s does not exist. Hint: run secretsmgr_manage(..., 'alternating') again to create it.", r->clone_role));
		return;
	}
	canlogin = ((Form_pg_authid) GETSTRUCT(tup))->rolcanlogin;
	ReleaseSysCache(tup);
	if (canlogin)
		report(h, check, "OK", psprintf("role %s exists and can log in", r->clone_role));
	else
		report(h, check, "FAIL", psprintf("role %s cannot log in. Hint: ALTER ROLE ... LOGIN.", r->clone_role));
}

PG_FUNCTION_INFO_V1(secretsmgr_health);

/* The drift guard, and stale clients of every managed secret (stale.c). */
static void
check_watch(Health *h, const char *check, void *arg)
{
	sm_stale_health(h->rsinfo);
}

/* secretsmgr_health() -> TABLE(check_name, status, detail); never raises for a check. */
Datum
secretsmgr_health(PG_FUNCTION_ARGS)
{
	Health		h;
	List	   *rows = NIL;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	h.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	run_check(&h, "configuration", check_configuration, NULL, NULL);
	run_check(&h, "credentials", check_credentials, NULL, NULL);
	run_check(&h, "endpoint", check_endpoint, NULL, NULL);
	{
		const char *status;
		char	   *detail;

		sm_cstats_health(&status, &detail);
		report(&h, "cluster statistics", status, detail);
	}

	rows = managed_rows();
	if (rows == NIL)
		report(&h, "managed secrets", "OK", "none: secretsmgr_manage() binds a secret to a role");
	foreach(lc, rows)
	{
		ManagedRow *r = lfirst(lc);

		run_check(&h, psprintf("secret %s: exists", r->secret_id), check_secret_exists, r,
				  r->secret_arn);
		if (!r->described)
			continue;
		run_check(&h, psprintf("secret %s: AWSCURRENT verifies", r->secret_id),
				  check_secret_verifies, r, r->secret_arn);
		run_check(&h, psprintf("secret %s: no stale AWSPENDING", r->secret_id),
				  check_secret_pending, r, NULL);
		run_check(&h, psprintf("secret %s: rotation age", r->secret_id),
				  check_secret_age, r, NULL);
		run_check(&h, psprintf("secret %s: version churn", r->secret_id),
				  check_secret_versions, r, r->secret_arn);
		if (r->clone_role)
			run_check(&h, psprintf("secret %s: clone role", r->secret_id),
					  check_secret_clone, r, NULL);
	}
	run_check(&h, "drift guard", check_watch, NULL, NULL);
	return (Datum) 0;
}

/* list_sort order: never rotated first, then the longest since rotated. */
static int
most_overdue_first(const ListCell *a, const ListCell *b)
{
	const ManagedRow *ra = lfirst(a);
	const ManagedRow *rb = lfirst(b);

	if (ra->has_last != rb->has_last)
		return ra->has_last ? 1 : -1;
	if (!ra->has_last || ra->last_rotated == rb->last_rotated)
		return strcmp(ra->secret_id, rb->secret_id);
	return ra->last_rotated < rb->last_rotated ? -1 : 1;
}

typedef struct DueCall
{
	const char *secret_id;
	char	   *version_id;
	const SmBatchItem *current;	/* AWSCURRENT read by the batch */
	const SmAwsError *error;	/* how its batch call failed */
} DueCall;

/* Inside the subtransaction: one scheduled rotation. */
static void
due_call(void *arg)
{
	DueCall    *c = arg;

	sm_sqlapi_check_can_rotate(c->secret_id, "secretsmgr_rotate_due");
	c->version_id = sm_rotation_rotate_prefetched(c->secret_id, "scheduler",
												  c->current, c->error);
}

/* Rotate one due secret in a subtransaction; add its row. */
static void
rotate_one(ReturnSetInfo *rsinfo, ManagedRow *r, const SmBatchItem *current,
		   const SmAwsError *error)
{
	DueCall		call = {r->secret_id, NULL, current, error};
	ErrorData  *ed = sm_subxact_run(due_call, &call);
	Datum		values[3];
	bool		nulls[3] = {false, false, true};

	values[0] = CStringGetTextDatum(r->secret_id);
	if (ed == NULL)
	{
		values[1] = CStringGetTextDatum("rotated");
		values[2] = CStringGetTextDatum(call.version_id);
		nulls[2] = false;
	}
	else
	{
		ereport(WARNING,
				(errcode(ed->sqlerrcode),
				 errmsg("scheduled rotation of secret \"%s\" failed: %s",
						r->secret_id, ed->message),
				 ed->hint ? errhint("%s", ed->hint) : 0));
		values[1] = CStringGetTextDatum("failed");
		FreeErrorData(ed);
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Rotate the due secrets window by window.  A window is as many secrets as
 * secretsmgr.max_concurrent_requests BatchGetSecretValue calls of 20 carry:
 * their rotation locks are taken first (in this transaction, as each
 * rotation would take its own), so the AWSCURRENT values read next are the
 * ones each rotation would read itself; the reads go out concurrently, then
 * each secret rotates in its subtransaction with its value, which is zeroed
 * when the window is done.  Bounded windows bound the memory holding values.
 */
static void
rotate_due_windows(ReturnSetInfo *rsinfo, List *due)
{
	int			ndue = list_length(due);
	int			window = SM_BATCH_MAX * Max(1, sm_guc_max_concurrent_requests);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "secretsmgr rotate_due window",
											  ALLOCSET_DEFAULT_SIZES);

	for (int start = 0; start < ndue; start += window)
	{
		int			n = Min(window, ndue - start);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SmBatchItem *items = palloc0(sizeof(SmBatchItem) * n);
		SmAwsError *errs = palloc0(sizeof(SmAwsError) * n);

		for (int k = 0; k < n; k++)
		{
			ManagedRow *r = list_nth(due, start + k);

			items[k].secret_id = r->secret_arn ? r->secret_arn : r->secret_id;
			sm_rotation_lock_key(items[k].secret_id);
		}
		sm_client_batch_get_secret_value_many(items, n, errs);
		MemoryContextSwitchTo(old);

		for (int k = 0; k < n; k++)
		{
			rotate_one(rsinfo, list_nth(due, start + k), &items[k], &errs[k]);
			if (items[k].found)
				sm_secret_value_scrub(&items[k].value);
		}
		/* the values are secret buffers: zeroed again as the context goes */
		MemoryContextReset(cxt);
	}
	MemoryContextDelete(cxt);
}

PG_FUNCTION_INFO_V1(secretsmgr_rotate_due);

/*
 * secretsmgr_rotate_due() -> TABLE(secret_id, status, version_id): rotate
 * every managed secret whose rotation_interval has elapsed since its last
 * successful rotation (or that was never rotated), most overdue first, each
 * in a subtransaction of its own so that one failure does not stop the
 * others.  Their AWSCURRENT values are read first, 20 a BatchGetSecretValue
 * call, several calls in flight (rotate_due_windows).  A failure is a WARNING and a "failed" row here, and a history
 * row (via "scheduler") written by the rotation engine.  The stage moves of
 * the rotations that succeeded happen when the calling transaction commits.
 */
Datum
secretsmgr_rotate_due(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	List	   *rows;
	List	   *due = NIL;
	ListCell   *lc;

	if (RecoveryInProgress() || XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot execute secretsmgr_rotate_due() %s",
						RecoveryInProgress() ? "during recovery" : "in a read-only transaction"),
				 errdetail("Rotation changes role passwords."),
				 errhint("Schedule it on the primary, in a read-write transaction.")));

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	rows = managed_rows();
	foreach(lc, rows)
	{
		ManagedRow *r = lfirst(lc);
		TimestampTz next;

		if (!r->has_interval)
			continue;
		if (r->has_last)
		{
			next = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														   TimestampTzGetDatum(r->last_rotated),
														   IntervalPGetDatum(&r->rotation_interval)));
			if (next > now)
				continue;
		}
		due = lappend(due, r);
	}
	list_sort(due, most_overdue_first);
	rotate_due_windows(rsinfo, due);
	return (Datum) 0;
}
