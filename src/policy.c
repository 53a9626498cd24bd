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
 * Build the IAM policy document for purpose ("database" or "lambda") from
 * sm_operations[]: the secret-scoped actions on the exact ARNs of the
 * managed secrets, the others on "*", the KMS actions on their
 * customer-managed keys (through Secrets Manager, for these secrets only),
 * and for the Lambda GetSecretValue on the administrator secret.
 */
static json_t *
build_policy(const char *purpose, const char *admin_arn, List *rows)
{
	bool		lambda = strcmp(purpose, "lambda") == 0;
	int			need = lambda ? SM_NEED_LAMBDA : SM_NEED_DATABASE;
	json_t	   *doc = json_object();
	json_t	   *stmts = json_array();
	json_t	   *arns = json_array();
	json_t	   *keys = json_array();
	json_t	   *unscoped = operation_actions(need, false);
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

	json_object_set_new(doc, "Version", json_string("2012-10-17"));
	if (json_array_size(arns) > 0)
		json_array_append_new(stmts, statement_of(lambda ? "SecretsmgrRotateManagedSecrets" :
												  "SecretsmgrManagedSecrets",
												  operation_actions(need, true),
												  json_deep_copy(arns)));
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
	json_object_set_new(doc, "Statement", stmts);
	json_decref(arns);
	json_decref(keys);
	json_decref(unscoped);
	return doc;
}

/*
 * The policy document for purpose ("database" or "lambda"; the Lambda's
 * also reads the administrator secret admin_arn), as JSON text.  Raises
 * 22023 for a purpose or an ARN it cannot build a policy for.
 */
char *
sm_policy_document(const char *purpose, const char *admin_arn)
{
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

	doc = build_policy(purpose, admin_arn, sm_registry_list());
	dump = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (dump == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	text = pstrdup(dump);
	sm_json_free_string(dump);
	return text;
}
