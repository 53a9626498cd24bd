/*-------------------------------------------------------------------------
 *
 * parse.c
 *		Parsers of hostile input: AWS error bodies, GetSecretValue,
 *		BatchGetSecretValue, DescribeSecret and ListSecretVersionIds
 *		responses, the secret's own credentials JSON, credential endpoint
 *		documents, the shared credentials file; and the guard every paginated
 *		call goes through.
 *
 * Everything a remote endpoint or a file on disk can put in front of the
 * backend is read here, and nowhere else: smclient.c, credentials.c,
 * rotation.c, registry.c and health.c get typed results.
 * The file includes no PostgreSQL header (libc and jansson only), so that
 * each parser links alone into a libFuzzer target (test/fuzz/) and runs
 * under AddressSanitizer and UndefinedBehaviorSanitizer; the backend
 * callers copy the results into palloc'd memory or secret buffers.
 *
 * Invariants:
 * - Nothing here exits, raises or keeps global state; allocation failure
 *   is returned to the caller.  So the code is safe inside a backend.
 * - Outputs are malloc'd and released with the sm_parsed_*_free functions,
 *   which zero every string that may hold a credential or a secret value.
 * - A reason returned for a rejected document names fields, never values.
 * - No call to jansson's json_object(): in the backend that symbol binds to
 *   PostgreSQL's SQL function of the same name (smjson.h).  Only reading
 *   functions are used.
 *
 * src/parse.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"

/* Zero len bytes at p in a way the compiler may not elide. */
static void
wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		explicit_bzero(p, len);
}

/* Zero and free a NUL-terminated string. */
static void
wipe_free(char *s)
{
	if (s != NULL)
	{
		wipe(s, strlen(s));
		free(s);
	}
}

/* Is s set to something? */
static int
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* Copy of len bytes of s, NUL-terminated, or NULL when out of memory. */
static char *
dup_len(const char *s, size_t len)
{
	char	   *copy;

	if (len == (size_t) -1)
		return NULL;
	copy = malloc(len + 1);
	if (copy == NULL)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

/*
 * Copy the string member name of obj into *dst.  Absent or not a string
 * leaves *dst NULL; returns -1 only when out of memory.
 */
static int
dup_field(const json_t *obj, const char *name, char **dst)
{
	const json_t *v = json_object_get(obj, name);

	*dst = NULL;
	if (!json_is_string(v))
		return 0;
	*dst = dup_len(json_string_value(v), json_string_length(v));
	return *dst ? 0 : -1;
}

/* Keep [A-Za-z0-9_.:-] of s, at most maxlen characters (malloc'd). */
char *
sm_parse_sanitize_token(const char *s, size_t maxlen)
{
	char	   *out;
	size_t		n = 0;

	if (maxlen == (size_t) -1)
		return NULL;
	out = malloc(maxlen + 1);
	if (out == NULL)
		return NULL;
	for (; s && *s && n < maxlen; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' || c == ':')
			out[n++] = (char) c;
	}
	out[n] = '\0';
	return out;
}

/* Text for the server log: printable ASCII, bounded (malloc'd). */
char *
sm_parse_sanitize_message(const char *s)
{
	char	   *out;
	size_t		n = 0;

	out = malloc(257);
	if (out == NULL)
		return NULL;
	for (; *s && n < 256; s++)
		out[n++] = ((unsigned char) *s >= 0x20 && (unsigned char) *s < 0x7f) ? *s : '?';
	out[n] = '\0';
	return out;
}

/*
 * The error type of an AWS error body, as the SDKs read it: "__type", drop
 * anything after ':' and anything up to the last '#'.  *out stays NULL when
 * the body names none; -1 when out of memory.
 */
static int
error_type_of(const json_t *root, char **out)
{
	const char *t = json_string_value(json_object_get(root, "__type"));
	const char *hash;
	char	   *copy;
	char	   *colon;

	*out = NULL;
	if (t == NULL)
		t = json_string_value(json_object_get(root, "code"));
	if (t == NULL)
		return 0;
	hash = strrchr(t, '#');
	if (hash)
		t = hash + 1;
	copy = strdup(t);
	if (copy == NULL)
		return -1;
	colon = strchr(copy, ':');
	if (colon)
		*colon = '\0';
	*out = sm_parse_sanitize_token(copy, 96);
	free(copy);
	return *out ? 0 : -1;
}

/* The first occurrence of needle in the n bytes at hay, or NULL. */
static const char *
find_bytes(const char *hay, size_t n, const char *needle)
{
	size_t		k = strlen(needle);

	for (size_t i = 0; k <= n && i <= n - k; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return hay + i;
	return NULL;
}

/*
 * The text of the first <tag>...</tag> in the n bytes at p, as a malloc'd
 * string (*out stays NULL when there is none); -1 when out of memory.
 */
static int
xml_text(const char *p, size_t n, const char *open, const char *close, char **out)
{
	const char *start = find_bytes(p, n, open);
	const char *end;

	*out = NULL;
	if (start == NULL)
		return 0;
	start += strlen(open);
	end = find_bytes(start, n - (start - p), close);
	if (end == NULL)
		return 0;
	*out = dup_len(start, end - start);
	return *out ? 0 : -1;
}

/*
 * An XML error body, as the query-protocol front ends of AWS and some other
 * implementations answer authentication failures:
 * [<?xml ...?>] <ErrorResponse><Error><Code>...</Code><Message>...</Message>.
 * Returns 1 with the fields filled when the body is one, 0 when not, -1 when
 * out of memory.
 */
static int
parse_xml_error(const char *body, size_t len, SmParsedError *out)
{
	const char *p = body;
	const char *end = body + len;
	const char *err;
	char	   *code = NULL;
	char	   *msg = NULL;
	int			rc;

	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if (end - p >= 5 && memcmp(p, "<?xml", 5) == 0)
	{
		const char *q = find_bytes(p, end - p, "?>");

		if (q == NULL)
			return 0;
		p = q + 2;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
			p++;
	}
	if (!((end - p >= 14 && memcmp(p, "<ErrorResponse", 14) == 0) ||
		  (end - p >= 7 && memcmp(p, "<Error>", 7) == 0)))
		return 0;
	err = find_bytes(p, end - p, "<Error>");
	if (err == NULL)
		return 0;
	if (xml_text(err, end - err, "<Code>", "</Code>", &code) != 0 ||
		xml_text(err, end - err, "<Message>", "</Message>", &msg) != 0)
		goto oom;
	if (code == NULL)
	{
		free(msg);
		return 0;
	}
	rc = 1;
	out->type = sm_parse_sanitize_token(code, 96);
	if (out->type == NULL ||
		(msg != NULL && (out->message = sm_parse_sanitize_message(msg)) == NULL))
	{
		sm_parsed_error_free(out);
		rc = -1;
	}
	free(code);
	free(msg);
	return rc;

oom:
	free(code);
	free(msg);
	return -1;
}

/* Parse an AWS error body; see parse.h. */
int
sm_parse_error_body(const char *body, size_t len, SmParsedError *out)
{
	json_t	   *root;
	json_error_t jerr;
	const char *msg;
	int			rc = 1;

	out->type = NULL;
	out->message = NULL;

	/* jerr may quote the body: it is never reported */
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return body ? parse_xml_error(body, len, out) : 0;
	if (!json_is_object(root))
	{
		json_decref(root);
		return 0;
	}

	msg = json_string_value(json_object_get(root, "message"));
	if (msg == NULL)
		msg = json_string_value(json_object_get(root, "Message"));
	if (error_type_of(root, &out->type) != 0 ||
		(msg != NULL && (out->message = sm_parse_sanitize_message(msg)) == NULL))
	{
		sm_parsed_error_free(out);
		rc = -1;
	}
	json_decref(root);
	return rc;
}

/* Release what sm_parse_error_body filled. */
void
sm_parsed_error_free(SmParsedError *e)
{
	free(e->type);
	free(e->message);
	e->type = NULL;
	e->message = NULL;
}

/* Extract one secret version; see parse.h. */
int
sm_parse_secret_value(const json_t *obj, SmParsedSecret *out)
{
	const json_t *s = json_object_get(obj, "SecretString");
	const json_t *b = json_object_get(obj, "SecretBinary");
	const json_t *stages = json_object_get(obj, "VersionStages");
	const json_t *created = json_object_get(obj, "CreatedDate");

	memset(out, 0, sizeof(*out));
	if (dup_field(obj, "ARN", &out->arn) != 0 ||
		dup_field(obj, "Name", &out->name) != 0 ||
		dup_field(obj, "VersionId", &out->version_id) != 0)
		goto oom;

	if (json_is_string(s))
	{
		out->secret_string_len = json_string_length(s);
		out->secret_string = dup_len(json_string_value(s), out->secret_string_len);
		if (out->secret_string == NULL)
			goto oom;
	}
	else if (json_is_string(b))
	{
		out->secret_binary_b64_len = json_string_length(b);
		out->secret_binary_b64 = dup_len(json_string_value(b), out->secret_binary_b64_len);
		if (out->secret_binary_b64 == NULL)
			goto oom;
	}

	if (json_is_array(stages))
	{
		size_t		i;
		size_t		n = json_array_size(stages);
		const json_t *v;

		out->stages = calloc(n + 1, sizeof(char *));
		if (out->stages == NULL)
			goto oom;
		for (i = 0; i < n; i++)
		{
			v = json_array_get(stages, i);
			if (!json_is_string(v))
				continue;
			out->stages[out->nstages] = dup_len(json_string_value(v), json_string_length(v));
			if (out->stages[out->nstages] == NULL)
				goto oom;
			out->nstages++;
		}
	}
	if (json_is_number(created))
		out->created_date = json_number_value(created);
	return 0;

oom:
	sm_parsed_secret_free(out);
	return -1;
}

/* Release a parsed secret version, zeroing its value. */
void
sm_parsed_secret_free(SmParsedSecret *s)
{
	free(s->arn);
	free(s->name);
	free(s->version_id);
	if (s->secret_string)
		wipe(s->secret_string, s->secret_string_len);
	free(s->secret_string);
	if (s->secret_binary_b64)
		wipe(s->secret_binary_b64, s->secret_binary_b64_len);
	free(s->secret_binary_b64);
	if (s->stages)
	{
		for (int i = 0; i < s->nstages; i++)
			free(s->stages[i]);
		free(s->stages);
	}
	memset(s, 0, sizeof(*s));
}

/* Does a returned secret (ARN and name) answer the requested id? */
static int
batch_matches(const json_t *v, const char *requested)
{
	const char *arn = json_string_value(json_object_get(v, "ARN"));
	const char *name = json_string_value(json_object_get(v, "Name"));

	return (arn && strcmp(arn, requested) == 0) ||
		(name && strcmp(name, requested) == 0);
}

/* Match a BatchGetSecretValue response to the requested ids; see parse.h. */
int
sm_parse_batch(const json_t *root, const char *const *ids, int n,
			   SmParsedBatchItem *items)
{
	const json_t *values = json_object_get(root, "SecretValues");
	const json_t *errors = json_object_get(root, "Errors");
	size_t		i;
	size_t		count;

	if (n > 0)
		memset(items, 0, sizeof(*items) * n);

	count = json_array_size(values);
	for (i = 0; i < count; i++)
	{
		const json_t *v = json_array_get(values, i);

		for (int k = 0; k < n; k++)
		{
			if (!items[k].found && items[k].error_code == NULL &&
				batch_matches(v, ids[k]))
			{
				if (sm_parse_secret_value(v, &items[k].value) != 0)
					goto oom;
				items[k].found = 1;
				break;
			}
		}
	}

	count = json_array_size(errors);
	for (i = 0; i < count; i++)
	{
		const json_t *v = json_array_get(errors, i);
		const char *sid = json_string_value(json_object_get(v, "SecretId"));
		const char *code = json_string_value(json_object_get(v, "ErrorCode"));

		for (int k = 0; sid && k < n; k++)
		{
			if (!items[k].found && items[k].error_code == NULL &&
				strcmp(ids[k], sid) == 0)
			{
				items[k].error_code = sm_parse_sanitize_token(code ? code : "UnknownError", 96);
				if (items[k].error_code == NULL)
					goto oom;
				break;
			}
		}
	}

	for (int k = 0; k < n; k++)
	{
		if (!items[k].found && items[k].error_code == NULL)
		{
			items[k].error_code = strdup("NotReturned");
			if (items[k].error_code == NULL)
				goto oom;
		}
	}
	return 0;

oom:
	sm_parsed_batch_free(items, n);
	return -1;
}

/* Release what sm_parse_batch filled. */
void
sm_parsed_batch_free(SmParsedBatchItem *items, int n)
{
	for (int k = 0; k < n; k++)
	{
		sm_parsed_secret_free(&items[k].value);
		free(items[k].error_code);
		items[k].error_code = NULL;
		items[k].found = 0;
	}
}

/*
 * The string members of the JSON array arr, as a NULL-terminated array
 * (*out stays NULL when arr is not an array).  -1 when out of memory, with
 * what was copied left for the caller's free.
 */
static int
dup_string_array(const json_t *arr, char ***out, int *n)
{
	size_t		count;

	*out = NULL;
	*n = 0;
	if (!json_is_array(arr))
		return 0;
	count = json_array_size(arr);
	*out = calloc(count + 1, sizeof(char *));
	if (*out == NULL)
		return -1;
	for (size_t i = 0; i < count; i++)
	{
		const json_t *v = json_array_get(arr, i);

		if (!json_is_string(v))
			continue;
		(*out)[*n] = dup_len(json_string_value(v), json_string_length(v));
		if ((*out)[*n] == NULL)
			return -1;
		(*n)++;
	}
	return 0;
}

/* Free a NULL-terminated array of n strings. */
static void
free_string_array(char **arr, int n)
{
	if (arr == NULL)
		return;
	for (int i = 0; i < n; i++)
		free(arr[i]);
	free(arr);
}

/* Does the list of labels carry stage?  See parse.h. */
int
sm_stages_have(char *const *stages, int nstages, const char *stage)
{
	for (int i = 0; i < nstages; i++)
		if (strcmp(stages[i], stage) == 0)
			return 1;
	return 0;
}

/* Extract a DescribeSecret response; see parse.h. */
int
sm_parse_describe_secret(const json_t *root, SmSecretDescription *out)
{
	const json_t *rules = json_object_get(root, "RotationRules");
	const json_t *deleted = json_object_get(root, "DeletedDate");
	const json_t *map = json_object_get(root, "VersionIdsToStages");
	const json_t *days = json_object_get(rules, "AutomaticallyAfterDays");

	memset(out, 0, sizeof(*out));
	if (dup_field(root, "ARN", &out->arn) != 0 ||
		dup_field(root, "Name", &out->name) != 0 ||
		dup_field(root, "KmsKeyId", &out->kms_key_id) != 0 ||
		dup_field(root, "RotationLambdaARN", &out->rotation_lambda_arn) != 0 ||
		(json_is_object(rules) &&
		 dup_field(rules, "ScheduleExpression", &out->rotation_schedule) != 0))
		goto oom;
	out->rotation_enabled = json_is_true(json_object_get(root, "RotationEnabled"));
	if (json_is_integer(days))
		out->rotation_after_days = json_integer_value(days);

	/* present and not null, whatever its type: scheduled for deletion */
	out->deleted = deleted != NULL && !json_is_null(deleted);
	if (json_is_number(deleted))
		out->deleted_date = json_number_value(deleted);

	if (json_is_object(map))
	{
		const char *vid;
		json_t	   *labels;
		size_t		n = json_object_size(map);

		out->versions = calloc(n + 1, sizeof(SmVersionStages));
		if (out->versions == NULL)
			goto oom;
		json_object_foreach((json_t *) map, vid, labels)
		{
			SmVersionStages *vs = &out->versions[out->nversions];

			if (out->nversions >= (int) n)
				break;
			vs->version_id = strdup(vid);
			out->nversions++;
			if (vs->version_id == NULL ||
				dup_string_array(labels, &vs->stages, &vs->nstages) != 0)
				goto oom;
			if (vs->stages == NULL)
			{
				/* a version listed with no array: no labels */
				vs->stages = calloc(1, sizeof(char *));
				if (vs->stages == NULL)
					goto oom;
			}
		}
	}
	return 0;

oom:
	sm_secret_description_free(out);
	return -1;
}

/* Release what sm_parse_describe_secret filled. */
void
sm_secret_description_free(SmSecretDescription *d)
{
	free(d->arn);
	free(d->name);
	free(d->kms_key_id);
	free(d->rotation_lambda_arn);
	free(d->rotation_schedule);
	if (d->versions)
	{
		for (int i = 0; i < d->nversions; i++)
		{
			free(d->versions[i].version_id);
			free_string_array(d->versions[i].stages, d->versions[i].nstages);
		}
		free(d->versions);
	}
	memset(d, 0, sizeof(*d));
}

/* The labels of version_id in d; see parse.h. */
const SmVersionStages *
sm_description_version(const SmSecretDescription *d, const char *version_id)
{
	for (int i = 0; i < d->nversions; i++)
		if (strcmp(d->versions[i].version_id, version_id) == 0)
			return &d->versions[i];
	return NULL;
}

/* The version of d that carries stage; see parse.h. */
const char *
sm_description_holder(const SmSecretDescription *d, const char *stage)
{
	for (int i = 0; i < d->nversions; i++)
		if (sm_stages_have(d->versions[i].stages, d->versions[i].nstages, stage))
			return d->versions[i].version_id;
	return NULL;
}

/* Extract one ListSecretVersionIds page; see parse.h. */
int
sm_parse_versions_page(const json_t *root, SmVersionsPage *out)
{
	const json_t *versions = json_object_get(root, "Versions");
	const json_t *token = json_object_get(root, "NextToken");
	size_t		n = json_array_size(versions);

	memset(out, 0, sizeof(*out));
	if (token != NULL && !json_is_null(token))
	{
		if (!json_is_string(token) ||
			json_string_length(token) > SM_PARSE_MAX_NEXT_TOKEN ||
			strlen(json_string_value(token)) != json_string_length(token))
			out->bad_next_token = 1;
		else if (json_string_length(token) > 0)
		{
			out->next_token = dup_len(json_string_value(token), json_string_length(token));
			if (out->next_token == NULL)
				goto oom;
		}
	}

	out->versions = calloc(n + 1, sizeof(SmVersionEntry));
	if (out->versions == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++)
	{
		const json_t *v = json_array_get(versions, i);
		const json_t *created = json_object_get(v, "CreatedDate");
		SmVersionEntry *e = &out->versions[out->nversions];

		if (!json_is_object(v))
			continue;
		out->nversions++;
		if (dup_field(v, "VersionId", &e->version_id) != 0 ||
			dup_string_array(json_object_get(v, "VersionStages"),
							 &e->stages, &e->nstages) != 0)
			goto oom;
		if (json_is_number(created))
		{
			e->has_created_date = 1;
			e->created_date = json_number_value(created);
		}
	}
	return 0;

oom:
	sm_versions_page_free(out);
	return -1;
}

/* Release what sm_parse_versions_page filled. */
void
sm_versions_page_free(SmVersionsPage *p)
{
	if (p->versions)
	{
		for (int i = 0; i < p->nversions; i++)
		{
			free(p->versions[i].version_id);
			free_string_array(p->versions[i].stages, p->versions[i].nstages);
		}
		free(p->versions);
	}
	free(p->next_token);
	memset(p, 0, sizeof(*p));
}

/* Start paging: the first page is asked for without a token. */
void
sm_pager_init(SmPager *p, int max_pages)
{
	p->max_pages = max_pages;
	p->pages = 0;
	p->token = NULL;
}

/*
 * Decide what follows the page just read, whose NextToken was token.  An
 * absent or empty token ends the list (botocore: empty strings are not
 * tokens); the same token as the one just sent would fetch the same page
 * forever (botocore: "The same next token was received twice"); and no list
 * this client reads is longer than max_pages pages.
 */
SmPageStep
sm_pager_next(SmPager *p, const char *token)
{
	char	   *copy;

	p->pages++;
	if (token == NULL || token[0] == '\0')
		return SM_PAGE_DONE;
	if (p->token != NULL && strcmp(p->token, token) == 0)
		return SM_PAGE_REPEATED;
	if (p->pages >= p->max_pages)
		return SM_PAGE_TOO_MANY;
	copy = strdup(token);
	if (copy == NULL)
		return SM_PAGE_NO_MEMORY;
	free(p->token);
	p->token = copy;
	return SM_PAGE_NEXT;
}

/* Release the pager's token. */
void
sm_pager_free(SmPager *p)
{
	free(p->token);
	p->token = NULL;
}

/* Parse a secret's JSON value; see parse.h. */
SmLoginStatus
sm_parse_login(const char *json, size_t len, SmParsedLogin *out)
{
	json_t	   *doc;
	json_error_t jerr;
	const json_t *user;
	const json_t *pw;
	SmLoginStatus result = SM_LOGIN_OK;

	memset(out, 0, sizeof(*out));

	/* jerr may quote the value: it is never reported */
	doc = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return SM_LOGIN_NOT_JSON;
	user = json_object_get(doc, "username");
	pw = json_object_get(doc, "password");
	if (!json_is_object(doc))
		result = SM_LOGIN_NOT_JSON;
	else if (!json_is_string(user) || json_string_length(user) == 0)
		result = SM_LOGIN_NO_USERNAME;
	else if (!json_is_string(pw) || json_string_length(pw) == 0)
		result = SM_LOGIN_NO_PASSWORD;
	else
	{
		out->username = dup_len(json_string_value(user), json_string_length(user));
		out->password_len = json_string_length(pw);
		out->password = dup_len(json_string_value(pw), out->password_len);
		out->nother = (int) json_object_size(doc) - 2;
		if (out->username == NULL || out->password == NULL)
		{
			sm_parsed_login_free(out);
			result = SM_LOGIN_NO_MEMORY;
		}
	}
	/* jansson zeroes its blocks on free in the backend (secretsmgr.c) */
	json_decref(doc);
	return result;
}

/* Zero and release a parsed login. */
void
sm_parsed_login_free(SmParsedLogin *l)
{
	free(l->username);
	if (l->password)
		wipe(l->password, l->password_len);
	free(l->password);
	memset(l, 0, sizeof(*l));
}

/* The value with its password (and username) replaced; see parse.h. */
char *
sm_parse_login_replace(const char *json, size_t len, const char *username,
					   const char *password, size_t *out_len)
{
	json_t	   *doc;
	json_error_t jerr;
	char	   *buf = NULL;
	size_t		n = 0;

	*out_len = 0;
	doc = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return NULL;
	if (json_is_object(doc) &&
		json_object_set_new(doc, "password", json_string(password)) == 0 &&
		(username == NULL ||
		 json_object_set_new(doc, "username", json_string(username)) == 0))
		n = json_dumpb(doc, NULL, 0, JSON_COMPACT);
	if (n > 0 && (buf = malloc(n + 1)) != NULL)
	{
		if (json_dumpb(doc, buf, n, JSON_COMPACT) != n)
		{
			wipe(buf, n);
			free(buf);
			buf = NULL;
		}
		else
		{
			buf[n] = '\0';
			*out_len = n;
		}
	}
	json_decref(doc);
	return buf;
}

/* Is a credential string well formed?  See parse.h. */
int
sm_parse_credential_text_ok(const char *s)
{
	size_t		n = 0;

	for (; *s; s++, n++)
	{
		unsigned char c = (unsigned char) *s;

		if (c <= 0x20 || c >= 0x7f)
			return 0;
	}
	return n > 0 && n <= 8192;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long
days_from_civil(int y, int m, int d)
{
	int			era;
	int			yoe;
	int			doy;
	int			doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (long long) era * 146097 + doe - 719468;
}

/* Read exactly n digits at *p into *val, advancing *p. */
static int
read_digits(const char **p, int n, int *val)
{
	int			v = 0;

	while (n-- > 0)
	{
		if (**p < '0' || **p > '9')
			return 0;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*val = v;
	return 1;
}

/* Parse an ISO 8601 UTC time; see parse.h. */
int
sm_parse_iso8601(const char *s, time_t *out)
{
	const char *p = s;
	int			y,
				mo,
				d,
				h,
				mi,
				sec;
	int			off = 0;

	if (!read_digits(&p, 4, &y) || *p++ != '-' ||
		!read_digits(&p, 2, &mo) || *p++ != '-' ||
		!read_digits(&p, 2, &d))
		return 0;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return 0;
	p++;
	if (!read_digits(&p, 2, &h) || *p++ != ':' ||
		!read_digits(&p, 2, &mi) || *p++ != ':' ||
		!read_digits(&p, 2, &sec))
		return 0;
	if (*p == '.' || *p == ',')
	{
		p++;
		if (*p < '0' || *p > '9')
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			sign = (*p == '-') ? -1 : 1;
		int			oh,
					om;

		p++;
		if (!read_digits(&p, 2, &oh))
			return 0;
		if (*p == ':')
			p++;
		if (!read_digits(&p, 2, &om) || oh > 23 || om > 59)
			return 0;
		off = sign * (oh * 3600 + om * 60);
	}
	else
		return 0;
	if (*p != '\0')
		return 0;

	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return 0;

	*out = (time_t) (days_from_civil(y, mo, d) * 86400 +
					 h * 3600 + mi * 60 + sec - off);
	return 1;
}

/* Parse a credentials document; see parse.h. */
const char *
sm_parse_credentials_json(const char *body, size_t len, int need_expiration,
						  SmParsedCreds *out)
{
	json_t	   *root;
	json_error_t jerr;
	const char *id;
	const char *secret;
	const char *token;
	const char *expiration;
	const char *code;
	const char *reason = NULL;
	time_t		exp = 0;

	memset(out, 0, sizeof(*out));

	/* jerr may quote the document: it is never reported */
	root = json_loadb(body ? body : "", len, 0, &jerr);
	if (root == NULL)
		return "the response is not valid JSON";
	if (!json_is_object(root))
	{
		json_decref(root);
		return "the response is not a JSON object";
	}

	code = json_string_value(json_object_get(root, "Code"));
	id = json_string_value(json_object_get(root, "AccessKeyId"));
	secret = json_string_value(json_object_get(root, "SecretAccessKey"));
	token = json_string_value(json_object_get(root, "Token"));
	expiration = json_string_value(json_object_get(root, "Expiration"));

	if (code != NULL && strcmp(code, "Success") != 0)
		reason = "its \"Code\" is not \"Success\"";
	else if (!nonempty(id))
		reason = "it has no \"AccessKeyId\"";
	else if (!nonempty(secret))
		reason = "it has no \"SecretAccessKey\"";
	else if (expiration == NULL && need_expiration)
		reason = "it has no \"Expiration\"";
	else if (expiration != NULL && !sm_parse_iso8601(expiration, &exp))
		reason = "its \"Expiration\" is not an ISO 8601 time";

	if (reason == NULL)
	{
		out->access_key_id = strdup(id);
		out->secret_access_key = strdup(secret);
		out->session_token = nonempty(token) ? strdup(token) : NULL;
		out->expiration = exp;
		if (out->access_key_id == NULL || out->secret_access_key == NULL ||
			(nonempty(token) && out->session_token == NULL))
			reason = "out of memory while reading it";
		else if (!sm_parse_credential_text_ok(out->access_key_id) ||
				 !sm_parse_credential_text_ok(out->secret_access_key) ||
				 (out->session_token && !sm_parse_credential_text_ok(out->session_token)))
			reason = "a credential in it is empty, too long, or holds spaces or control characters";
		if (reason != NULL)
			sm_parsed_creds_free(out);
	}

	/* jansson zeroes its blocks on free in the backend (secretsmgr.c) */
	json_decref(root);
	return reason;
}

/* Zero and release parsed credentials. */
void
sm_parsed_creds_free(SmParsedCreds *c)
{
	wipe_free(c->access_key_id);
	wipe_free(c->secret_access_key);
	wipe_free(c->session_token);
	c->access_key_id = NULL;
	c->secret_access_key = NULL;
	c->session_token = NULL;
	c->expiration = 0;
}

/* Is c ASCII whitespace? */
static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		c == '\f' || c == '\v';
}

/* Trim ASCII whitespace at both ends of s, in place. */
char *
sm_parse_trim(char *s)
{
	char	   *end;

	while (is_space(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_space(end[-1]))
		*--end = '\0';
	return s;
}

/*
 * ASCII case-insensitive equality.  The keys compared are ASCII, so this
 * matches pg_strcasecmp (and strcasecmp in any locale) on them.
 */
static int
ascii_caseeq(const char *a, const char *b)
{
	for (;; a++, b++)
	{
		unsigned char ca = (unsigned char) *a;
		unsigned char cb = (unsigned char) *b;

		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return 0;
		if (ca == '\0')
			return 1;
	}
}

/* Parse a shared credentials file in place; see parse.h. */
SmCredFileResult
sm_parse_credentials_file(char *buf, const char *profile, SmCredFileValues *v)
{
	int			found = 0;
	int			in_section = 0;
	char	   *line = buf;

	memset(v, 0, sizeof(*v));

	while (line != NULL)
	{
		char	   *next = strchr(line, '\n');
		char	   *s;

		if (next != NULL)
			*next++ = '\0';
		s = sm_parse_trim(line);
		line = next;

		if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
			continue;

		if (s[0] == '[')
		{
			char	   *close = strrchr(s, ']');

			if (close == NULL)
			{
				in_section = 0;
				continue;
			}
			*close = '\0';
			in_section = (strcmp(sm_parse_trim(s + 1), profile) == 0);
			if (in_section)
				found = 1;
			continue;
		}

		if (in_section)
		{
			char	   *eq = strchr(s, '=');
			char	   *colon = strchr(s, ':');
			char	   *sep = eq;
			char	   *key;
			char	   *value;

			if (sep == NULL || (colon != NULL && colon < sep))
				sep = colon;
			if (sep == NULL)
				continue;
			*sep = '\0';
			key = sm_parse_trim(s);
			value = sm_parse_trim(sep + 1);

			if (ascii_caseeq(key, "aws_access_key_id"))
				v->access_key_id = value;
			else if (ascii_caseeq(key, "aws_secret_access_key"))
				v->secret_access_key = value;
			else if (ascii_caseeq(key, "aws_session_token"))
				v->session_token = value;
			else if (ascii_caseeq(key, "role_arn"))
				v->role_arn = value;
			else if (ascii_caseeq(key, "source_profile"))
				v->source_profile = value;
			else if (ascii_caseeq(key, "credential_source"))
				v->credential_source = value;
			else if (ascii_caseeq(key, "web_identity_token_file"))
				v->web_identity_token_file = value;
			else if (ascii_caseeq(key, "role_session_name"))
				v->role_session_name = value;
			else if (ascii_caseeq(key, "external_id"))
				v->external_id = value;
		}
	}

	if (v->access_key_id && v->access_key_id[0] == '\0')
		v->access_key_id = NULL;
	if (v->secret_access_key && v->secret_access_key[0] == '\0')
		v->secret_access_key = NULL;
	if (v->session_token && v->session_token[0] == '\0')
		v->session_token = NULL;
	{
		char	  **role_keys[] = {&v->role_arn, &v->source_profile,
			&v->credential_source, &v->web_identity_token_file,
		&v->role_session_name, &v->external_id};

		for (int i = 0; i < (int) (sizeof(role_keys) / sizeof(role_keys[0])); i++)
			if (*role_keys[i] && (*role_keys[i])[0] == '\0')
				*role_keys[i] = NULL;
	}

	if (!found)
		return SM_FILE_NO_PROFILE;
	if (v->role_arn != NULL)
		return SM_FILE_ROLE;
	if (v->access_key_id == NULL && v->secret_access_key == NULL)
		return SM_FILE_NO_KEYS;
	if (v->access_key_id == NULL || v->secret_access_key == NULL)
		return SM_FILE_PARTIAL;
	return SM_FILE_FOUND;
}
