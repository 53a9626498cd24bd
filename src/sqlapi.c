/*
 * sqlapi.c
 *		SQL entry points of the read path: fetch, describe, cache control.
 *
 * Who may call them is decided by EXECUTE grants alone (revoked from PUBLIC
 * by the install script).  The first read of a session fetches the secrets
 * listed in secretsmgr.preload in one batch; a value whose refresh fails
 * transiently may be served stale for secretsmgr.cache_max_stale.  Arguments are checked here before anything goes
 * on the wire.  A value is turned into jsonb only after PostgreSQL's own JSON
 * lexer has accepted it without raising: jsonb_in's error context would
 * otherwise quote the secret.
 */
#include "postgres.h"

#include "smjson.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "common/string.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "backend.h"
#include "cache.h"
#include "compat.h"
#include "registry.h"
#include "secretbuf.h"
#include "settings.h"
#include "smclient.h"
#include "stats_shmem.h"

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

static bool preload_done = false;

/*
 * Bound roles of a secret (by the id given, else its ARN), for the cache, and
 * the version whose password secretsmgr last gave one of them.
 */
static int
bound_roles(const char *secret_id, const char *arn, Oid *roles, int max,
			char **role_version_id)
{
	int			n = sm_registry_bound_roles(secret_id, roles, max, role_version_id);

	if (n == 0 && arn)
		n = sm_registry_bound_roles(arn, roles, max, role_version_id);
	return n;
}

/*
 * Does the JSON text s hold a \u escape of a character outside ASCII?  In a
 * database whose encoding is not UTF8, PostgreSQL's JSON lexer converts such
 * an escape with pg_unicode_to_server(), whose error quotes the character's
 * bytes: the secret's.  So there a value with one is refused before it is
 * lexed, as raw bytes outside ASCII are (the same text, spelled as escapes).
 * A malformed escape is left to the lexer, which rejects it without
 * converting anything.
 */
static bool
has_non_ascii_escape(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
	{
		unsigned int cp = 0;
		int			k;

		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && i + 5 < len)
		{
			for (k = 2; k < 6; k++)
			{
				char		c = s[i + k];

				if (c >= '0' && c <= '9')
					cp = cp * 16 + (c - '0');
				else if (c >= 'a' && c <= 'f')
					cp = cp * 16 + (c - 'a' + 10);
				else if (c >= 'A' && c <= 'F')
					cp = cp * 16 + (c - 'A' + 10);
				else
					break;
			}
			if (k == 6 && cp > 0x7f)
				return true;
		}
		i++;					/* the escaped character is not a backslash */
	}
	return false;
}

/* Is s text this database can hold as it is (and as its JSON unescaped)? */
static bool
json_fits_database(const char *s, size_t len)
{
	if (GetDatabaseEncoding() == PG_UTF8)
		return true;
	return pg_is_ascii(s) && !has_non_ascii_escape(s, len);
}

/*
 * Why v cannot be read as jsonb ("BinarySecret", "InvalidText", "NotJSON"),
 * or NULL after setting v->jsonb to its jsonb form (a secret buffer).
 * Never raises on a bad value, never quotes it.
 */
static const char *
value_to_jsonb(SmSecretValue *v)
{
	JsonLexContext *lex;
	char	   *copy;
	size_t		len;
	Jsonb	   *jb;

	if (v->jsonb)
		return NULL;
	if (v->secret_string == NULL)
		return "BinarySecret";
	len = strlen(v->secret_string);
	if (!pg_verify_mbstr(PG_UTF8, v->secret_string, (int) len, true) ||
		!json_fits_database(v->secret_string, len))
		return "InvalidText";
	copy = sm_secret_strndup(v->secret_string, len);
	lex = makeJsonLexContextCstringLen(NULL, copy, len, PG_UTF8, true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
	{
		sm_secure_zero(copy, len);
		return "NotJSON";
	}
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(copy)));
	sm_secure_zero(copy, len);
	v->jsonb_len = VARSIZE(jb);
	v->jsonb = sm_secret_alloc(v->jsonb_len);
	memcpy(v->jsonb, jb, v->jsonb_len);
	sm_secure_zero(jb, v->jsonb_len);
	return NULL;
}

/*
 * Cache a freshly fetched value under its key, with its jsonb form when it
 * has one, so that cached jsonb reads parse nothing.
 */
static void
cache_value(const char *secret_id, const char *stage, const char *version_id,
			SmSecretValue *v)
{
	Oid			roles[4];
	char	   *role_version = NULL;
	bool		current = version_id == NULL && stage != NULL &&
		strcmp(stage, "AWSCURRENT") == 0 && sm_guc_cache_ttl_s > 0;
	int			n = bound_roles(secret_id, v->arn, roles, lengthof(roles),
								current ? &role_version : NULL);

	(void) value_to_jsonb(v);
	sm_cache_store(secret_id, stage, version_id, v, roles, n, role_version);
}

/*
 * The expired cached value of a key, when err is transient and the value is
 * within secretsmgr.cache_max_stale; warns the first time per entry.
 */
static const SmSecretValue *
stale_value(const char *secret_id, const char *stage, const char *version_id,
			const SmAwsError *err)
{
	const SmSecretValue *v;
	bool		first;

	if (!sm_client_error_is_transient(err))
		return NULL;
	v = sm_cache_lookup_stale(secret_id, stage, version_id, &first);
	if (v != NULL && first)
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("serving an expired cached value of secret \"%s\"", secret_id),
				 errdetail("Refreshing it failed with %s; the value is served for at most \"secretsmgr.cache_max_stale\" past its expiry.",
						   err->type ? err->type : "an error"),
				 errhint("Check that Secrets Manager is reachable; secretsmgr_stats() counts stale serves.")));
	return v;
}

/* Fetch the AWSCURRENT values of items not cached, in batches of 20. */
static void
fetch_batches(SmBatchItem *items, int n, SmAwsError *errs)
{
	for (int start = 0; start < n; start += SM_BATCH_MAX)
	{
		int			len = Min(SM_BATCH_MAX, n - start);

		sm_backend_check_interrupts();
		if (sm_client_batch_get_secret_value(items + start, len, &errs[start]))
		{
			for (int k = start; k < start + len; k++)
			{
				errs[k].type = NULL;
				errs[k].request_id = errs[start].request_id;
				if (items[k].found)
					cache_value(items[k].secret_id, "AWSCURRENT", NULL, &items[k].value);
			}
		}
		else
		{
			for (int k = start + 1; k < start + len; k++)
				errs[k] = errs[start];
		}
	}
}

/* Fetch secretsmgr.preload's secrets; every failure is a WARNING. */
static void
preload_secrets(void)
{
	char	   *raw = pstrdup(sm_guc_preload);
	List	   *ids = NIL;
	ListCell   *lc;
	SmBatchItem *items;
	SmAwsError *errs;
	int			n = 0;

	if (!SplitGUCList(raw, ',', &ids))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not parse \"secretsmgr.preload\""),
				 errhint("List secret names or ARNs separated by commas.")));
		return;
	}
	items = palloc0(sizeof(SmBatchItem) * Max(list_length(ids), 1));
	errs = palloc0(sizeof(SmAwsError) * Max(list_length(ids), 1));
	foreach(lc, ids)
	{
		const char *id = lfirst(lc);

		if (sm_cache_lookup(id, "AWSCURRENT", NULL) == NULL)
			items[n++].secret_id = id;
	}
	if (n == 0)
		return;
	fetch_batches(items, n, errs);
	for (int k = 0; k < n; k++)
	{
		if (items[k].found)
			sm_secret_value_scrub(&items[k].value);
		else
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("could not preload secret \"%s\"", items[k].secret_id),
					 errdetail("Secrets Manager answered %s.",
							   errs[k].type ? errs[k].type : items[k].error_code),
					 errhint("Check \"secretsmgr.preload\"; the secret is read on demand instead.")));
	}
}

/*
 * Once per session, before the first read: preload, in a subtransaction so
 * that no failure (not even missing credentials) breaks the caller.  A read
 * inside a parallel operation (where no subtransaction can start) leaves the
 * preload to the next read outside one; a cancel ends the read, and the
 * preload is tried again by the next one.  It counts as done once it ran.
 */
static void
preload_call(void *arg)
{
	preload_secrets();
}

static void
preload_once(void)
{
	ErrorData  *edata;

	if (preload_done || sm_guc_preload == NULL || sm_guc_preload[0] == '\0' ||
		IsInParallelMode())
		return;

	edata = sm_subxact_run(preload_call, NULL);
	preload_done = true;
	if (edata != NULL)
	{
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("could not preload secrets: %s", edata->message),
				 edata->hint ? errhint("%s", edata->hint) : 0));
		FreeErrorData(edata);
	}
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
	SmAwsError	err;

	preload_once();
	v = sm_cache_lookup(a->secret_id, a->version_stage, a->version_id);
	if (v != NULL)
	{
		sm_cstats_log_read(a->secret_id, a->version_stage, v->version_id, "cache");
		return v;
	}

	if (!sm_client_try_get_secret_value(a->secret_id, a->version_stage, a->version_id,
										storage, &err))
	{
		v = stale_value(a->secret_id, a->version_stage, a->version_id, &err);
		if (v != NULL)
		{
			sm_cstats_log_read(a->secret_id, a->version_stage, v->version_id,
							   "stale cache");
			return v;
		}
		sm_client_raise_get_secret_value(&err, a->secret_id, a->version_stage,
										 a->version_id);
	}
	cache_value(a->secret_id, a->version_stage, a->version_id, storage);
	sm_cstats_log_read(a->secret_id, a->version_stage, storage->version_id,
					   "Secrets Manager");
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

/*
 * What kind of JSON syntax error rc is, in words that are the same on every
 * major (the enum's numbering changed in 17).  Never quotes the input.
 */
static const char *
json_error_kind(JsonParseErrorType rc)
{
	switch (rc)
	{
		case JSON_ESCAPING_INVALID:
		case JSON_ESCAPING_REQUIRED:
		case JSON_UNICODE_ESCAPE_FORMAT:
		case JSON_UNICODE_HIGH_ESCAPE:
		case JSON_UNICODE_HIGH_SURROGATE:
		case JSON_UNICODE_LOW_SURROGATE:
			return "a bad escape or control character in a string";
		case JSON_INVALID_TOKEN:
			return "an invalid token";
		case JSON_EXPECTED_END:
			return "text after the JSON value";
		case JSON_EXPECTED_MORE:
			return "the input ends too early";
		default:
			return "unexpected structure";
	}
}

/* jsonb of the JSON text s, or an error that does not quote s. */
static Datum
json_text_to_jsonb(const char *what, const char *s, size_t len)
{
	JsonLexContext *lex;
	JsonParseErrorType rc;
	char	   *copy = sm_secret_strndup(s, len);
	Datum		result;

	lex = makeJsonLexContextCstringLen(NULL, copy, len, PG_UTF8, true);
	rc = pg_parse_json(lex, &nullSemAction);
	if (rc == JSON_UNICODE_CODE_POINT_ZERO)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("value of %s cannot be stored as jsonb", what),
				 errdetail("It contains the escape \\u0000, which jsonb cannot hold; the value is kept out of this message."),
				 errhint("Use secretsmgr_get_secret_string() to read it as text.")));
	if (rc != JSON_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("value of %s is not valid JSON", what),
				 errdetail("The value is kept out of this message; the JSON parser found %s.",
						   json_error_kind(rc)),
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
	if (v->jsonb)
	{
		/* converted once, when it was fetched */
		Jsonb	   *jb = palloc(v->jsonb_len);

		memcpy(jb, v->jsonb, v->jsonb_len);
		PG_RETURN_JSONB_P(jb);
	}
	/* not JSON, or not text: say which, without quoting it */
	require_string(&a, v, "secretsmgr_get_secret_binary()");
	require_encoding(&a, v->secret_string, strlen(v->secret_string));
	what = psprintf("secret \"%s\"", a.secret_id);
	if (!json_fits_database(v->secret_string, strlen(v->secret_string)))
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("value of %s cannot be read as jsonb in this database", what),
				 errdetail("It contains a \\u escape of a character outside ASCII, and the database encoding is %s, not UTF8; the value is kept out of this message.",
						   GetDatabaseEncodingName()),
				 errhint("Use secretsmgr_get_secret_string() to read the JSON text as it is, or read the secret in a UTF8 database.")));
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

/* A private copy of a cached value (later stores may evict the original). */
static const SmSecretValue *
copy_value(const SmSecretValue *v)
{
	SmSecretValue *c;

	if (v == NULL)
		return NULL;
	c = palloc(sizeof(SmSecretValue));
	sm_secret_value_copy(c, v);
	return c;
}

/* Is id acceptable as a SecretId (checked without raising)? */
static bool
secret_id_ok(const char *id)
{
	size_t		len = strlen(id);

	if (len == 0 || len > 2048)
		return false;
	for (; *id; id++)
		if ((unsigned char) *id < 0x20 || (unsigned char) *id > 0x7e)
			return false;
	return true;
}

/* One row's value of secretsmgr_get_secrets: jsonb, or an error code. */
static const char *
row_value(const SmSecretValue *v, Datum *value)
{
	SmSecretValue tmp = *v;
	const char *code = value_to_jsonb(&tmp);
	Jsonb	   *jb;

	if (code != NULL)
		return code;
	jb = palloc(tmp.jsonb_len);
	memcpy(jb, tmp.jsonb, tmp.jsonb_len);
	*value = JsonbPGetDatum(jb);
	return NULL;
}

/*
 * strict => true: raise the error of a row as the single reads would.  err is
 * the failed call (operation) when the whole call failed; an error the batch
 * listed for this one secret is reported as its GetSecretValue.
 */
static void
raise_row_error(const char *secret_id, const char *code, const SmAwsError *err,
				const char *operation)
{
	SmAwsError	e;

	if (strcmp(code, "InvalidParameter") == 0)
		sm_client_check_secret_id(secret_id ? secret_id : "");
	if (strcmp(code, "BinarySecret") == 0 || strcmp(code, "NotJSON") == 0 ||
		strcmp(code, "InvalidText") == 0)
		ereport(ERROR,
				(errcode(strcmp(code, "BinarySecret") == 0 ? ERRCODE_WRONG_OBJECT_TYPE :
						 strcmp(code, "NotJSON") == 0 ? ERRCODE_INVALID_TEXT_REPRESENTATION :
						 ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("value of secret \"%s\" cannot be returned as jsonb", secret_id),
				 errdetail("The value is %s.",
						   strcmp(code, "BinarySecret") == 0 ? "binary" :
						   strcmp(code, "NotJSON") == 0 ? "not JSON" : "not valid text"),
				 errhint("Read it with secretsmgr_get_secret_string() or secretsmgr_get_secret_binary().")));
	if (err != NULL && err->type != NULL)
		sm_client_raise(operation, err, secret_id);

	/* an error the batch listed for this one secret */
	memset(&e, 0, sizeof(e));
	e.transport = SM_HTTP_OK;
	e.http_status = 200;
	e.type = (char *) code;
	e.request_id = (err != NULL && err->request_id) ? err->request_id : "";
	e.attempts = 1;
	sm_client_raise("GetSecretValue", &e, secret_id);
}

PG_FUNCTION_INFO_V1(secretsmgr_get_secrets);

/*
 * secretsmgr_get_secrets(secret_ids text[], version_stage, strict)
 *   -> TABLE(secret_id, value jsonb, version_id, error)
 * One row per requested id, in order.  AWSCURRENT comes from the cache where
 * it can and from BatchGetSecretValue (20 ids a call) for the rest; other
 * stages are read one by one.  A secret that cannot be read gets an error
 * code in its row, unless strict.
 */
Datum
secretsmgr_get_secrets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	char	   *stage;
	bool		strict;
	bool		current;
	char	  **ids;
	const SmSecretValue **vals;
	const char **codes;
	const char **source;		/* NULL: Secrets Manager */
	SmAwsError **errors;
	SmBatchItem *items;
	SmAwsError *batch_errs;
	int			nmiss = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	arr = PG_GETARG_ARRAYTYPE_P(0);
	stage = PG_ARGISNULL(1) ? "AWSCURRENT" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	strict = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	sm_client_check_version_stage(stage);
	current = strcmp(stage, "AWSCURRENT") == 0;
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("secret_ids must be a one-dimensional array"),
				 errhint("Pass ARRAY['name1', 'name2', ...].")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &nelems);
	preload_once();

	ids = palloc0(sizeof(char *) * Max(nelems, 1));
	vals = palloc0(sizeof(SmSecretValue *) * Max(nelems, 1));
	codes = palloc0(sizeof(char *) * Max(nelems, 1));
	source = palloc0(sizeof(char *) * Max(nelems, 1));
	errors = palloc0(sizeof(SmAwsError *) * Max(nelems, 1));
	items = palloc0(sizeof(SmBatchItem) * Max(nelems, 1));
	batch_errs = palloc0(sizeof(SmAwsError) * Max(nelems, 1));

	/* what the cache has, what is wrong at once, what must be fetched */
	for (int i = 0; i < nelems; i++)
	{
		sm_backend_check_interrupts();
		if (elem_nulls[i] || !secret_id_ok(ids[i] = TextDatumGetCString(elems[i])))
		{
			codes[i] = "InvalidParameter";
			if (elem_nulls[i])
				ids[i] = NULL;
			continue;
		}
		vals[i] = copy_value(sm_cache_lookup(ids[i], stage, NULL));
		if (vals[i] != NULL)
		{
			source[i] = "cache";
			continue;
		}
		if (current)
		{
			bool		dup = false;

			for (int k = 0; k < nmiss && !dup; k++)
				dup = strcmp(items[k].secret_id, ids[i]) == 0;
			if (!dup)
				items[nmiss++].secret_id = ids[i];
		}
		else
		{
			SmSecretValue *v = palloc0(sizeof(SmSecretValue));
			SmAwsError *err = palloc0(sizeof(SmAwsError));

			if (sm_client_try_get_secret_value(ids[i], stage, NULL, v, err))
			{
				cache_value(ids[i], stage, NULL, v);
				vals[i] = v;
			}
			else if ((vals[i] = copy_value(stale_value(ids[i], stage, NULL, err))) != NULL)
				source[i] = "stale cache";
			else
			{
				codes[i] = err->type;
				errors[i] = err;
			}
		}
	}
	if (nmiss > 0)
		fetch_batches(items, nmiss, batch_errs);

	/* the rows, in the order asked */
	for (int i = 0; i < nelems; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, true, true, true};
		Datum		value = (Datum) 0;

		if (vals[i] == NULL && codes[i] == NULL)
		{
			for (int k = 0; k < nmiss; k++)
			{
				if (strcmp(items[k].secret_id, ids[i]) != 0)
					continue;
				if (items[k].found)
					vals[i] = &items[k].value;
				else if ((vals[i] = copy_value(stale_value(ids[i], stage, NULL, &batch_errs[k]))) != NULL)
					source[i] = "stale cache";
				else
				{
					codes[i] = batch_errs[k].type ? batch_errs[k].type : items[k].error_code;
					errors[i] = &batch_errs[k];
				}
				break;
			}
		}
		if (vals[i] != NULL && codes[i] == NULL)
		{
			sm_cstats_log_read(ids[i], stage, vals[i]->version_id,
							   source[i] ? source[i] : "Secrets Manager");
			codes[i] = row_value(vals[i], &value);
		}
		if (codes[i] != NULL && strict)
			raise_row_error(ids[i], codes[i], errors[i],
							current ? "BatchGetSecretValue" : "GetSecretValue");

		if (ids[i] != NULL)
			values[0] = CStringGetTextDatum(ids[i]);
		else
			nulls[0] = true;
		if (codes[i] == NULL)
		{
			values[1] = value;
			nulls[1] = false;
		}
		if (vals[i] != NULL && vals[i]->version_id)
		{
			values[2] = CStringGetTextDatum(vals[i]->version_id);
			nulls[2] = false;
		}
		if (codes[i] != NULL)
		{
			values[3] = CStringGetTextDatum(codes[i]);
			nulls[3] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (int k = 0; k < nmiss; k++)
		if (items[k].found)
			sm_secret_value_scrub(&items[k].value);
	return (Datum) 0;
}
