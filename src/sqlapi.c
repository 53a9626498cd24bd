/*
 * sqlapi.c
 *		SQL entry points of the read path: fetch, describe, cache control.
 *
 * Who may call them is decided by EXECUTE grants alone (revoked from PUBLIC
 * by the install script).  Arguments are checked here before anything goes
 * on the wire.  A value is turned into jsonb only after PostgreSQL's own JSON
 * lexer has accepted it without raising: jsonb_in's error context would
 * otherwise quote the secret.
 */
#include "postgres.h"

#include "smjson.h"

#include "common/jsonapi.h"
#include "common/string.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "cache.h"
#include "registry.h"
#include "secretsmgr.h"
#include "smclient.h"

/* The arguments every fetch function takes, checked. */
typedef struct FetchArgs
{
	char	   *secret_id;
	char	   *version_stage;	/* NULL when only a version id is wanted */
	char	   *version_id;
} FetchArgs;

/* Read (secret_id, version_stage, version_id); false when secret_id is NULL. */
static bool
fetch_args(FunctionCallInfo fcinfo, FetchArgs *a)
{
	if (PG_ARGISNULL(0))
		return false;
	a->secret_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	a->version_stage = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	a->version_id = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));

	sm_client_check_secret_id(a->secret_id);
	if (a->version_stage)
		sm_client_check_version_stage(a->version_stage);
	if (a->version_id)
		sm_client_check_version_id(a->version_id);
	if (a->version_stage == NULL && a->version_id == NULL)
		a->version_stage = "AWSCURRENT";
	return true;
}

/*
 * The value for a, from the cache or from Secrets Manager (then cached,
 * tagged with the roles bound to the secret).  The result is either the
 * cache's own copy or *storage: the caller copies what it needs at once.
 */
static const SmSecretValue *
fetch_value(const FetchArgs *a, SmSecretValue *storage)
{
	const SmSecretValue *v;
	Oid			roles[4];
	int			nroles;

	v = sm_cache_lookup(a->secret_id, a->version_stage, a->version_id);
	if (v != NULL)
		return v;

	(void) sm_client_get_secret_value(a->secret_id, a->version_stage, a->version_id,
									  false, storage);
	nroles = sm_registry_bound_roles(a->secret_id, roles, lengthof(roles));
	if (nroles == 0 && storage->arn)
		nroles = sm_registry_bound_roles(storage->arn, roles, lengthof(roles));
	sm_cache_store(a->secret_id, a->version_stage, a->version_id, storage, roles, nroles);
	return storage;
}

/* Raise unless the secret is a string (not SecretBinary). */
static void
require_string(const FetchArgs *a, const SmSecretValue *v, const char *alternative)
{
	if (v->secret_string == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("secret \"%s\" holds a binary value", a->secret_id),
				 errdetail("Secrets Manager returned SecretBinary, not SecretString."),
				 errhint("Use %s.", alternative)));
}

/* Raise unless s is valid in the database encoding (without quoting it). */
static void
require_encoding(const FetchArgs *a, const char *s, size_t len)
{
	if (!pg_verify_mbstr(PG_UTF8, s, (int) len, true) ||
		(GetDatabaseEncoding() != PG_UTF8 && !pg_is_ascii(s)))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("value of secret \"%s\" is not valid text in the database encoding", a->secret_id),
				 errdetail("The value is not UTF-8, or holds characters the database encoding cannot represent."),
				 errhint("Use secretsmgr_get_secret_binary() for binary data, or a UTF-8 database.")));
}

/* jsonb of the JSON text s, or an error that does not quote s. */
static Datum
json_text_to_jsonb(const char *what, const char *s, size_t len)
{
	JsonLexContext *lex;
	JsonParseErrorType rc;
	char	   *copy = sm_secret_strndup(s, len);
	Datum		result;

	lex = makeJsonLexContextCstringLen(copy, (int) len, PG_UTF8, true);
	rc = pg_parse_json(lex, &nullSemAction);
	if (rc != JSON_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("value of %s is not valid JSON", what),
				 errdetail("The value is kept out of this message; JSON parse error class %d.", (int) rc),
				 errhint("Use secretsmgr_get_secret_string() for a value that is not JSON.")));
	result = DirectFunctionCall1(jsonb_in, CStringGetDatum(copy));
	sm_secure_zero(copy, len);
	return result;
}

PG_FUNCTION_INFO_V1(secretsmgr_get_secret);

/* secretsmgr_get_secret(secret_id, version_stage, version_id) -> jsonb */
Datum
secretsmgr_get_secret(PG_FUNCTION_ARGS)
{
	FetchArgs	a;
	SmSecretValue storage;
	const SmSecretValue *v;
	char	   *what;

	if (!fetch_args(fcinfo, &a))
		PG_RETURN_NULL();
	v = fetch_value(&a, &storage);
	require_string(&a, v, "secretsmgr_get_secret_binary()");
	require_encoding(&a, v->secret_string, strlen(v->secret_string));
	what = psprintf("secret \"%s\"", a.secret_id);
	PG_RETURN_DATUM(json_text_to_jsonb(what, v->secret_string, strlen(v->secret_string)));
}

PG_FUNCTION_INFO_V1(secretsmgr_get_secret_string);

/* secretsmgr_get_secret_string(...) -> text */
Datum
secretsmgr_get_secret_string(PG_FUNCTION_ARGS)
{
	FetchArgs	a;
	SmSecretValue storage;
	const SmSecretValue *v;
	size_t		len;

	if (!fetch_args(fcinfo, &a))
		PG_RETURN_NULL();
	v = fetch_value(&a, &storage);
	require_string(&a, v, "secretsmgr_get_secret_binary()");
	len = strlen(v->secret_string);
	require_encoding(&a, v->secret_string, len);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(v->secret_string, (int) len));
}

PG_FUNCTION_INFO_V1(secretsmgr_get_secret_binary);

/* secretsmgr_get_secret_binary(...) -> bytea (a string secret's bytes too) */
Datum
secretsmgr_get_secret_binary(PG_FUNCTION_ARGS)
{
	FetchArgs	a;
	SmSecretValue storage;
	const SmSecretValue *v;
	bytea	   *result;
	const char *src;
	size_t		len;

	if (!fetch_args(fcinfo, &a))
		PG_RETURN_NULL();
	v = fetch_value(&a, &storage);
	if (v->secret_binary)
	{
		src = v->secret_binary;
		len = v->binary_len;
	}
	else
	{
		src = v->secret_string;
		len = strlen(v->secret_string);
	}
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), src, len);
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(secretsmgr_describe_secret);

/* secretsmgr_describe_secret(secret_id) -> jsonb: metadata, never the value */
Datum
secretsmgr_describe_secret(PG_FUNCTION_ARGS)
{
	char	   *secret_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	json_t	   *root;
	char	   *dump;
	char	   *copy;

	sm_client_check_secret_id(secret_id);
	root = sm_client_describe_secret(secret_id);
	dump = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (dump == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not serialise the DescribeSecret response")));
	copy = pstrdup(dump);
	sm_json_free_string(dump);
	PG_RETURN_DATUM(json_text_to_jsonb("the DescribeSecret response", copy, strlen(copy)));
}

PG_FUNCTION_INFO_V1(secretsmgr_cache_invalidate);

/* secretsmgr_cache_invalidate(secret_id DEFAULT NULL) -> entries dropped */
Datum
secretsmgr_cache_invalidate(PG_FUNCTION_ARGS)
{
	char	   *secret_id = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (secret_id)
		sm_client_check_secret_id(secret_id);
	PG_RETURN_INT32(sm_cache_invalidate(secret_id));
}
