/*
 * policy.c
 *		The least-privilege IAM policy of the managed secrets.
 *
 * The policy is derived from secretsmgr_managed and DescribeSecret (exact
 * ARNs, and the customer-managed KMS keys), so it never drifts from the
 * secrets it must reach, and its actions from the client's table of
 * operations (sm_operations), so it never drifts from what the code calls.
 */
#include "postgres.h"

#include "smjson.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "credentials.h"
#include "policy.h"
#include "registry.h"
#include "secretbuf.h"
#include "smclient.h"

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
		SmBinding  *r = lfirst(lc);
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

/*
 * The policy document for purpose ("database" or "lambda"; the Lambda's
 * also reads the administrator secret admin_arn), as JSON text; for the
 * database, also reading the secrets of the text[] secrets (NULL: none).
 * Raises 22023 for a purpose or an ARN it cannot build a policy for.
 */
char *
sm_policy_document(const char *purpose, const char *admin_arn, ArrayType *secrets)
{
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

	if (secrets != NULL)
		reads = policy_read_secrets(secrets, purpose);

	doc = build_policy(purpose, admin_arn, sm_registry_list(), reads);
	dump = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (dump == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	text = pstrdup(dump);
	sm_json_free_string(dump);
	return text;
}
