/*
 * smclient.c
 *		Secrets Manager client: JSON 1.1 protocol, retries, the error map.
 *
 * Every call goes through sm_client_try_call(): serialise the request with
 * jansson, sign it (SigV4, the signing key cached for its day), send it with
 * http.c, and decode the answer.  Throttling, HTTP 5xx, connection errors and
 * timeouts are retried up to secretsmgr.max_attempts times with full-jitter
 * exponential backoff; the wait sleeps on the latch, so a cancel or
 * statement_timeout ends it at once, and a lost client within a second.
 *
 * Invariants:
 * - no response body, header, key, token or secret value reaches an error
 *   message or a log line: errors carry the AWS error type, the HTTP status
 *   and the request id; AWS's own message goes to the server log only
 *   (errdetail_log), sanitised and bounded;
 * - request bodies (PutSecretValue carries a password) and response bodies
 *   live in scrubbed buffers (jansson's zeroing allocator, secret buffers);
 * - response bodies are read by parse.c, which includes no PostgreSQL header
 *   and is fuzzed on its own (test/fuzz/); what it extracts is copied here
 *   into palloc'd memory and secret buffers, and its copies are zeroed.
 */
#include "postgres.h"

#include "smjson.h"

#include <math.h>
#include <string.h>
#include <sys/time.h>

#include <curl/curl.h>

#include "common/base64.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "backend.h"
#include "compat.h"
#include "credentials.h"
#include "http.h"
#include "parse.h"
#include "secretbuf.h"
#include "settings.h"
#include "sigv4.h"
#include "smclient.h"
#include "stats.h"
#include "stats_shmem.h"
#include "sts.h"
#include "tls.h"

#define SM_SERVICE "secretsmanager"
#define SM_MAX_BACKOFF_MS 20000

/* Most pages one list call reads (a secret has at most 100 versions). */
#define SM_MAX_LIST_PAGES 50

/*
 * The signing key of one (credentials, day, region), kept across calls.  The
 * credentials are recognised by a digest of the secret key, never a copy.
 */
static struct
{
	char		secret_digest[65];
	char		access_key_id[129];
	char		date8[9];
	char		region[33];
	unsigned char key[32];
	bool		valid;
} signing_key_cache;

/* Endpoint derived from the settings, and the Host header that goes with it. */
static char *endpoint_url = NULL;
static char *endpoint_host = NULL;

/* Milliseconds since an arbitrary origin, for latencies. */
static double
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

/* Is the string made of printable ASCII and at most maxlen long? */
static bool
printable_ascii(const char *s, size_t maxlen)
{
	size_t		n = 0;

	for (; *s; s++, n++)
	{
		if (n >= maxlen || (unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
			return false;
	}
	return true;
}

/* Check a SecretId argument: 1 to 2048 printable characters. */
void
sm_client_check_secret_id(const char *secret_id)
{
	size_t		len = strlen(secret_id);

	if (len == 0 || len > 2048)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret id must have between 1 and 2048 characters"),
				 errdetail("The secret id given has %zu characters.", len),
				 errhint("Pass the secret's name or its ARN.")));
	if (!printable_ascii(secret_id, 2048))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret id contains characters Secrets Manager does not accept"),
				 errdetail("Secret names and ARNs hold printable ASCII characters only."),
				 errhint("Pass the secret's name or its ARN.")));
}

/* Check a VersionStage argument: 1 to 256 printable characters. */
void
sm_client_check_version_stage(const char *stage)
{
	size_t		len = strlen(stage);

	if (len == 0 || len > 256 || !printable_ascii(stage, 256))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid version stage"),
				 errdetail("A staging label has between 1 and 256 printable characters."),
				 errhint("Use a label such as AWSCURRENT, AWSPENDING or AWSPREVIOUS, or NULL with a version id.")));
}

/* Check a VersionId / ClientRequestToken argument: 32 to 64 printable characters. */
void
sm_client_check_version_id(const char *version_id)
{
	size_t		len = strlen(version_id);

	if (len < 32 || len > 64 || !printable_ascii(version_id, 64))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid version id"),
				 errdetail("A version id has between 32 and 64 printable characters; the one given has %zu.", len),
				 errhint("Use a VersionId as secretsmgr_describe_secret() lists them.")));
}

/* Resolve the endpoint URL and its Host header from settings and environment. */
static void
resolve_endpoint(void)
{
	const char *url = NULL;
	const char *env_names[] = {"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"};
	char	   *built = NULL;
	CURLU	   *u;
	char	   *host = NULL;
	char	   *port = NULL;
	MemoryContext old;

	if (sm_guc_endpoint && sm_guc_endpoint[0])
		url = sm_guc_endpoint;
	for (int i = 0; url == NULL && i < lengthof(env_names); i++)
	{
		const char *v = getenv(env_names[i]);

		if (v && v[0])
			url = v;
	}
	if (url == NULL)
		url = built = psprintf("https://secretsmanager%s.%s.amazonaws.com/",
							   sm_sts_use_fips() ? "-fips" : "", sm_region_get());

	if (!sm_http_url_allowed(url, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Secrets Manager endpoint \"%s\" is not allowed", sm_http_url_redacted(url)),
				 errdetail("Only https:// endpoints, or http:// on a loopback address, are used."),
				 errhint("Fix \"secretsmgr.endpoint\" or the AWS_ENDPOINT_URL* environment variables of the server.")));

	if (endpoint_url && strcmp(endpoint_url, url) == 0)
		return;

	u = curl_url();
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
	{
		if (u)
			curl_url_cleanup(u);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Secrets Manager endpoint \"%s\" is not a valid URL", sm_http_url_redacted(url)),
				 errhint("Fix \"secretsmgr.endpoint\".")));
	}
	(void) curl_url_get(u, CURLUPART_PORT, &port, 0);

	old = MemoryContextSwitchTo(TopMemoryContext);
	if (endpoint_url)
		pfree(endpoint_url);
	if (endpoint_host)
		pfree(endpoint_host);
	endpoint_url = pstrdup(url);
	endpoint_host = port ? psprintf("%s:%s", host, port) : pstrdup(host);
	MemoryContextSwitchTo(old);

	curl_free(host);
	if (port)
		curl_free(port);
	curl_url_cleanup(u);
	if (built)
		pfree(built);
}

/* The endpoint URL in use, without its userinfo (it is shown to users). */
const char *
sm_client_endpoint(void)
{
	resolve_endpoint();
	return sm_http_url_redacted(endpoint_url);
}

/* The signing key for creds/date8/region, from the per-day cache. */
static const unsigned char *
signing_key(const SmCredentials *creds, const char *date8, const char *region)
{
	char		digest[65];

	sm_sigv4_sha256_hex(creds->secret_access_key, strlen(creds->secret_access_key), digest);
	if (!signing_key_cache.valid ||
		strcmp(signing_key_cache.secret_digest, digest) != 0 ||
		strcmp(signing_key_cache.access_key_id, creds->access_key_id) != 0 ||
		strcmp(signing_key_cache.date8, date8) != 0 ||
		strcmp(signing_key_cache.region, region) != 0)
	{
		sm_secure_zero(signing_key_cache.key, sizeof(signing_key_cache.key));
		strlcpy(signing_key_cache.secret_digest, digest, sizeof(signing_key_cache.secret_digest));
		strlcpy(signing_key_cache.access_key_id, creds->access_key_id,
				sizeof(signing_key_cache.access_key_id));
		strlcpy(signing_key_cache.date8, date8, sizeof(signing_key_cache.date8));
		strlcpy(signing_key_cache.region, region, sizeof(signing_key_cache.region));
		sm_sigv4_signing_key(creds->secret_access_key, date8, region, SM_SERVICE,
							 signing_key_cache.key);
		signing_key_cache.valid = true;
	}
	return signing_key_cache.key;
}

/* Forget the cached signing key (credentials changed or were rejected). */
static void
signing_key_forget(void)
{
	sm_secure_zero(&signing_key_cache, sizeof(signing_key_cache));
}

/* Text for the server log: printable ASCII, bounded, palloc'd (or NULL). */
static char *
sanitize_message(const char *s)
{
	char	   *out;
	char	   *copy;

	if (s == NULL)
		return NULL;
	out = sm_parse_sanitize_message(s);
	if (out == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	PG_TRY();
	{
		copy = pstrdup(out);
	}
	PG_FINALLY();
	{
		free(out);
	}
	PG_END_TRY();
	return copy;
}

/* Is this failure worth another attempt (the SDKs' standard mode list)? */
bool
sm_client_error_is_transient(const SmAwsError *err)
{
	static const char *const types[] = {
		"ThrottlingException", "Throttling", "TooManyRequestsException",
		"RequestLimitExceeded", "RequestTimeout", "RequestTimeoutException",
		"PriorRequestNotComplete", "InternalServiceError", "InternalFailure",
		"ServiceUnavailable"
	};

	if (err->transport == SM_HTTP_CONNECT_ERROR || err->transport == SM_HTTP_TIMEOUT)
		return true;
	if (err->transport != SM_HTTP_OK)
		return false;
	if (err->http_status == 500 || err->http_status == 502 ||
		err->http_status == 503 || err->http_status == 504)
		return true;
	for (int i = 0; i < lengthof(types); i++)
		if (err->type && strcmp(err->type, types[i]) == 0)
			return true;
	return false;
}

/*
 * Sleep ms on the latch; an interrupt or a lost client ends the wait with
 * an error (the client is looked at once a second).
 */
static void
backoff_sleep(long ms)
{
	double		until = now_ms() + ms;

	for (;;)
	{
		double		left = until - now_ms();

		sm_backend_check_interrupts();
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) ceil(Min(left, 1000.0)), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* Full jitter: random(0,1) * min(base * 2^(attempt-1), 20 s). */
static long
backoff_ms(int attempt)
{
	double		cap = sm_guc_retry_base_delay_ms * pow(2.0, attempt - 1);

	if (cap > SM_MAX_BACKOFF_MS)
		cap = SM_MAX_BACKOFF_MS;
	return (long) (pg_prng_double(&pg_global_prng_state) * cap);
}

/*
 * The operations secretsmgr calls, and the rotation Lambda's
 * (lambda/secretsmgr_rotation.py).  GetRandomPassword is the database's
 * endpoint probe (secretsmgr_health); passwords come from pg_strong_random.
 * BatchGetSecretValue has no resource-level permissions: IAM also checks
 * GetSecretValue on each secret it returns.
 */
const SmOperation sm_operations[] = {
	{"DescribeSecret", SM_NEED_DATABASE | SM_NEED_LAMBDA | SM_NEED_READ, true, NULL},
	{"GetSecretValue", SM_NEED_DATABASE | SM_NEED_LAMBDA | SM_NEED_READ, true, "kms:Decrypt"},
	{"PutSecretValue", SM_NEED_DATABASE | SM_NEED_LAMBDA, true, "kms:GenerateDataKey"},
	{"UpdateSecretVersionStage", SM_NEED_DATABASE | SM_NEED_LAMBDA, true, NULL},
	{"ListSecretVersionIds", SM_NEED_DATABASE, true, NULL},
	{"BatchGetSecretValue", SM_NEED_DATABASE, false, "kms:Decrypt"},
	{"GetRandomPassword", SM_NEED_DATABASE | SM_NEED_LAMBDA, false, NULL},
};
const int	sm_noperations = lengthof(sm_operations);

/* The table's entry for operation, or NULL. */
static const SmOperation *
find_operation(const char *operation)
{
	for (int i = 0; i < sm_noperations; i++)
		if (strcmp(sm_operations[i].name, operation) == 0)
			return &sm_operations[i];
	return NULL;
}

/*
 * One signed request, ready for sm_http_perform: the headers and the
 * request point into the struct, so it must not move while in flight.
 */
typedef struct SmSignedCall
{
	SmCredentials creds;
	char		amz_date[17];
	char		target[128];
	char		authorization[1024];
	SmHttpHeader hh[6];
	SmHttpRequest hreq;
} SmSignedCall;

/* Sign body for operation into *sc (release with signed_call_done). */
static void
signed_call_prepare(const char *operation, const char *body, size_t body_len,
					SmSignedCall *sc)
{
	const char *region = sm_region_get();
	char		date8[9];
	SmSigV4Header sh[5];
	int			nh = 4;
	SmSigV4Request sreq;

	resolve_endpoint();
	sm_credentials_get(&sc->creds);

	sm_sigv4_amz_date(time(NULL), sc->amz_date);
	memcpy(date8, sc->amz_date, 8);
	date8[8] = '\0';
	snprintf(sc->target, sizeof(sc->target), "secretsmanager.%s", operation);

	sh[0].name = "Content-Type";
	sh[0].value = "application/x-amz-json-1.1";
	sh[1].name = "Host";
	sh[1].value = endpoint_host;
	sh[2].name = "X-Amz-Date";
	sh[2].value = sc->amz_date;
	sh[3].name = "X-Amz-Target";
	sh[3].value = sc->target;
	if (sc->creds.session_token && sc->creds.session_token[0])
	{
		sh[4].name = "X-Amz-Security-Token";
		sh[4].value = sc->creds.session_token;
		nh = 5;
	}

	memset(&sreq, 0, sizeof(sreq));
	sreq.method = "POST";
	sreq.path = "/";
	sreq.query = NULL;
	sreq.headers = sh;
	sreq.nheaders = nh;
	sreq.body = body;
	sreq.body_len = body_len;
	sreq.amz_date = sc->amz_date;
	sreq.region = region;
	sreq.service = SM_SERVICE;
	sreq.access_key_id = sc->creds.access_key_id;
	sreq.secret_access_key = sc->creds.secret_access_key;
	if (sm_sigv4_sign_with_key(&sreq, signing_key(&sc->creds, date8, region),
							   sc->authorization, sizeof(sc->authorization), NULL, NULL) != 0)
	{
		sm_credentials_free(&sc->creds);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not sign the Secrets Manager request")));
	}

	/* Host is set by libcurl from the URL; the signed value is the same. */
	sc->hh[0].name = "Content-Type";
	sc->hh[0].value = sh[0].value;
	sc->hh[1].name = "X-Amz-Date";
	sc->hh[1].value = sc->amz_date;
	sc->hh[2].name = "X-Amz-Target";
	sc->hh[2].value = sc->target;
	sc->hh[3].name = "Authorization";
	sc->hh[3].value = sc->authorization;
	if (nh == 5)
	{
		sc->hh[4].name = "X-Amz-Security-Token";
		sc->hh[4].value = sc->creds.session_token;
	}

	memset(&sc->hreq, 0, sizeof(sc->hreq));
	sc->hreq.method = "POST";
	sc->hreq.url = endpoint_url;
	sc->hreq.headers = sc->hh;
	sc->hreq.nheaders = (nh == 5) ? 5 : 4;
	sc->hreq.body = body;
	sc->hreq.body_len = body_len;
	sc->hreq.connect_timeout_ms = sm_guc_connect_timeout_ms;
	sc->hreq.timeout_ms = sm_guc_request_timeout_ms;
	sc->hreq.max_body = SM_MAX_RESPONSE_BYTES;
}

/* Zero the signature and release the credentials of *sc. */
static void
signed_call_done(SmSignedCall *sc)
{
	sm_secure_zero(sc->authorization, sizeof(sc->authorization));
	sm_credentials_free(&sc->creds);
}

/*
 * What one attempt's answer says: on a 200 with a JSON body return it,
 * else fill *err.  The body is zeroed either way.
 */
static json_t *
read_response(SmHttpStatus st, SmHttpResponse *resp, SmAwsError *err)
{
	json_t	   *root;
	json_error_t jerr;

	err->transport = st;
	err->http_status = resp->status;
	err->request_id = pstrdup(resp->request_id);
	err->type = NULL;
	err->message = NULL;

	if (st != SM_HTTP_OK)
	{
		switch (st)
		{
			case SM_HTTP_TIMEOUT:
				err->type = pstrdup("Timeout");
				break;
			case SM_HTTP_TOO_LARGE:
				err->type = pstrdup("ResponseTooLarge");
				break;
			case SM_HTTP_TLS_ERROR:
				err->type = pstrdup(sm_tls_error_type(resp->tls_failure));
				break;
			case SM_HTTP_CONNECT_ERROR:
				err->type = pstrdup("ConnectionError");
				break;
			default:
				err->type = pstrdup("TransportError");
				break;
		}
		err->message = sanitize_message(resp->error);
		sm_http_response_free(resp);
		return NULL;
	}

	if (err->http_status == 200)
	{
		root = json_loadb(resp->body ? resp->body : "", resp->body_len, JSON_REJECT_DUPLICATES, &jerr);
		sm_http_response_free(resp);
		if (root == NULL || !json_is_object(root))
		{
			if (root)
				json_decref(root);
			err->type = pstrdup("MalformedResponse");
			return NULL;
		}
		return root;
	}

	/* An error: AWS JSON if we can read it, else the HTTP status alone. */
	{
		SmParsedError pe;
		int			rc = sm_parse_error_body(resp->body, resp->body_len, &pe);

		sm_http_response_free(resp);
		if (rc < 0)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		PG_TRY();
		{
			err->message = pe.message ? pstrdup(pe.message) : NULL;
			err->type = pe.type ? pstrdup(pe.type) : NULL;
		}
		PG_FINALLY();
		{
			sm_parsed_error_free(&pe);
		}
		PG_END_TRY();
	}
	if (err->type == NULL || err->type[0] == '\0')
		err->type = psprintf("HTTP%ld", err->http_status);
	return NULL;
}

/*
 * One attempt: sign and send body; on a 200 with a JSON body return it,
 * else fill *err.
 */
static json_t *
attempt_call(const char *operation, const char *body, size_t body_len, SmAwsError *err)
{
	SmSignedCall sc;
	SmHttpResponse resp;
	SmHttpStatus st;

	signed_call_prepare(operation, body, body_len, &sc);
	memset(&resp, 0, sizeof(resp));
	st = sm_http_perform(&sc.hreq, &resp);
	signed_call_done(&sc);
	return read_response(st, &resp, err);
}

/* Call operation with retries (request stolen); NULL with *err filled on failure. */
json_t *
sm_client_try_call(const char *operation, json_t *request, SmAwsError *err)
{
	char	   *body;
	size_t		body_len;
	json_t	   *volatile result = NULL;
	double		start = now_ms();
	volatile bool refreshed_credentials = false;
	int			attempt;
	char		statname[128];
	const char *sid;
	char	   *stat_secret_id;

	memset(err, 0, sizeof(*err));
	/* the request is ours: once serialised, the body is all that is sent */
	body = json_dumps(request, JSON_COMPACT);
	sid = json_string_value(json_object_get(request, "SecretId"));
	stat_secret_id = sid ? pstrdup(sid) : NULL;
	json_decref(request);
	/* an operation missing from the table would be missing from the policy */
	if (find_operation(operation) == NULL)
	{
		if (body != NULL)
			sm_json_free_string(body);
		elog(ERROR, "secretsmgr: operation %s is not in the client's table of operations",
			 operation);
	}
	if (body == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not serialise the %s request", operation)));
	body_len = strlen(body);

	PG_TRY();
	{
		for (attempt = 1;; attempt++)
		{
			result = attempt_call(operation, body, body_len, err);
			err->attempts = attempt;
			if (result != NULL)
				break;

			snprintf(statname, sizeof(statname), "%s:%s", operation, err->type);
			sm_stats_count(SM_STAT_API_ERROR, statname, 0);

			/* Temporary credentials expired under us: fetch new ones once. */
			if (!refreshed_credentials && err->type &&
				(strcmp(err->type, "ExpiredTokenException") == 0 ||
				 strcmp(err->type, "ExpiredToken") == 0))
			{
				refreshed_credentials = true;
				sm_credentials_invalidate();
				signing_key_forget();
				if (attempt < sm_guc_max_attempts)
				{
					sm_stats_count(SM_STAT_RETRY, operation, 0);
					continue;
				}
			}
			if (err->type && (strcmp(err->type, "InvalidSignatureException") == 0 ||
							  strcmp(err->type, "UnrecognizedClientException") == 0))
				signing_key_forget();

			if (attempt >= sm_guc_max_attempts || !sm_client_error_is_transient(err))
				break;

			elog(DEBUG1, "secretsmgr: %s attempt %d failed with %s, retrying",
				 operation, attempt, err->type);
			sm_stats_count(SM_STAT_RETRY, operation, 0);
			backoff_sleep(backoff_ms(attempt));
		}
	}
	PG_FINALLY();
	{
		sm_json_free_string(body);
	}
	PG_END_TRY();

	sm_stats_count(SM_STAT_API_CALL, operation, now_ms() - start);
	sm_cstats_call(operation, stat_secret_id,
				   now_ms() - start, err->attempts - 1, result ? NULL : err->type);
	return result;
}

/* Call operation (request stolen), raising the mapped error on failure. */
json_t *
sm_client_call(const char *operation, json_t *request, const char *secret_id)
{
	SmAwsError	err;
	json_t	   *result = sm_client_try_call(operation, request, &err);

	if (result == NULL)
		sm_client_raise(operation, &err, secret_id);
	return result;
}

/*
 * The rounds of sm_client_call_many over the serialised bodies[0..n-1].
 * Each round signs every request still to send afresh (a retry gets a new
 * X-Amz-Date), sends them all through sm_http_perform_many, and keeps for
 * the next round those whose failure sm_client_try_call would retry; one
 * full-jitter backoff on the latch separates the rounds.  The signed
 * requests live in a secret buffer, zeroed even when an interrupt unwinds.
 */
static void
call_many_rounds(const char *operation, char *const *bodies, int n,
				 json_t **results, SmAwsError *errs)
{
	int		   *todo = palloc(sizeof(int) * n);
	int			ntodo = n;
	SmSignedCall *calls = (SmSignedCall *) sm_secret_alloc(sizeof(SmSignedCall) * n);
	SmHttpRequest *hreqs = palloc0(sizeof(SmHttpRequest) * n);
	SmHttpResponse *resps = palloc0(sizeof(SmHttpResponse) * n);
	SmHttpStatus *sts = palloc0(sizeof(SmHttpStatus) * n);
	bool		refreshed_credentials = false;
	char		statname[128];

	for (int i = 0; i < n; i++)
		todo[i] = i;

	for (int attempt = 1;; attempt++)
	{
		int			nretry = 0;
		bool		expired = false;

		for (int k = 0; k < ntodo; k++)
		{
			int			i = todo[k];

			signed_call_prepare(operation, bodies[i], strlen(bodies[i]), &calls[k]);
			hreqs[k] = calls[k].hreq;
		}
		sm_http_perform_many(hreqs, ntodo, sm_guc_max_concurrent_requests,
							 resps, sts);
		for (int k = 0; k < ntodo; k++)
			signed_call_done(&calls[k]);

		for (int k = 0; k < ntodo; k++)
		{
			int			i = todo[k];
			SmAwsError *err = &errs[i];

			results[i] = read_response(sts[k], &resps[k], err);
			err->attempts = attempt;
			if (results[i] != NULL)
				continue;

			snprintf(statname, sizeof(statname), "%s:%s", operation, err->type);
			sm_stats_count(SM_STAT_API_ERROR, statname, 0);
			if (err->type && (strcmp(err->type, "ExpiredTokenException") == 0 ||
							  strcmp(err->type, "ExpiredToken") == 0))
				expired = true;
			if (err->type && (strcmp(err->type, "InvalidSignatureException") == 0 ||
							  strcmp(err->type, "UnrecognizedClientException") == 0))
				signing_key_forget();
			if (attempt < sm_guc_max_attempts &&
				(sm_client_error_is_transient(err) ||
				 (expired && !refreshed_credentials)))
				todo[nretry++] = i;
		}
		ntodo = nretry;
		if (ntodo == 0)
			break;

		/* Temporary credentials expired under us: fetch new ones once. */
		if (expired && !refreshed_credentials)
		{
			refreshed_credentials = true;
			sm_credentials_invalidate();
			signing_key_forget();
		}
		else
			backoff_sleep(backoff_ms(attempt));
		elog(DEBUG1, "secretsmgr: %d %s call(s) of attempt %d failed, retrying",
			 ntodo, operation, attempt);
		for (int k = 0; k < ntodo; k++)
			sm_stats_count(SM_STAT_RETRY, operation, 0);
	}

	sm_secure_zero(calls, sizeof(SmSignedCall) * n);
	pfree(todo);
	pfree(hreqs);
	pfree(resps);
	pfree(sts);
}

/* Call operation once for each of requests[0..n-1]; see smclient.h. */
void
sm_client_call_many(const char *operation, json_t *const *requests, int n,
					json_t **results, SmAwsError *errs)
{
	char	  **bodies;
	double		start = now_ms();

	if (find_operation(operation) == NULL)
		elog(ERROR, "secretsmgr: operation %s is not in the client's table of operations",
			 operation);
	if (n <= 0)
		return;

	bodies = palloc0(sizeof(char *) * n);
	for (int i = 0; i < n; i++)
	{
		results[i] = NULL;
		memset(&errs[i], 0, sizeof(SmAwsError));
	}

	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			bodies[i] = json_dumps(requests[i], JSON_COMPACT);
			if (bodies[i] == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("could not serialise the %s request", operation)));
		}
		call_many_rounds(operation, bodies, n, results, errs);
	}
	PG_FINALLY();
	{
		for (int i = 0; i < n; i++)
			if (bodies[i] != NULL)
				sm_json_free_string(bodies[i]);
	}
	PG_END_TRY();

	/* each call waited for the whole set of calls, at most */
	for (int i = 0; i < n; i++)
		sm_stats_count(SM_STAT_API_CALL, operation, now_ms() - start);
	pfree(bodies);
}

/* Is err a ResourceNotFoundException? */
bool
sm_client_error_is_not_found(const SmAwsError *err)
{
	return err->transport == SM_HTTP_OK && err->type &&
		strcmp(err->type, "ResourceNotFoundException") == 0;
}

/* What a message or hint of the error map takes as its arguments. */
typedef enum SmErrorArgs
{
	SM_EARGS_NONE,
	SM_EARGS_SECRET,			/* the secret id */
	SM_EARGS_OP,				/* the operation */
	SM_EARGS_OP_SECRET,			/* the operation, the secret id */
	SM_EARGS_REGION,			/* secretsmgr.region, or where it comes from */
	SM_EARGS_ENDPOINT,			/* the endpoint, its userinfo left out */
	SM_EARGS_OP_LIMIT,			/* the operation, SM_MAX_RESPONSE_BYTES */
	SM_EARGS_OP_STATUS			/* the operation, the HTTP status */
} SmErrorArgs;

/*
 * One entry of the error map: the AWS error types it covers, the SQLSTATE
 * raised, and the message and hint (formats marked for translation, whose
 * arguments msg_args and hint_args say).
 */
typedef struct SmErrorMap
{
	const char *types[7];		/* NULL-terminated */
	int			sqlstate;
	SmErrorArgs msg_args;
	const char *msg;
	SmErrorArgs hint_args;
	const char *hint;
} SmErrorMap;

/* AWS error type -> SQLSTATE, message, hint; the first entry naming it wins. */
static const SmErrorMap error_map[] = {
	{{"ResourceNotFoundException"},
		ERRCODE_UNDEFINED_OBJECT,
		SM_EARGS_SECRET, gettext_noop("secret \"%s\" or the requested version does not exist"),
	SM_EARGS_REGION, gettext_noop("Check the secret name, the version stage or id, and \"secretsmgr.region\" (now \"%s\").")},
	{{"AccessDeniedException", "AccessDenied"},
		ERRCODE_INSUFFICIENT_PRIVILEGE,
		SM_EARGS_OP_SECRET, gettext_noop("AWS denied %s on secret \"%s\""),
	SM_EARGS_OP, gettext_noop("The IAM policy of the database's credentials must allow secretsmanager:%s on the secret's ARN, and the KMS key policy must allow kms:Decrypt through Secrets Manager.")},
	{{"InvalidSignatureException", "SignatureDoesNotMatch"},
		ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
		SM_EARGS_NONE, gettext_noop("AWS rejected the credentials of the request"),
	SM_EARGS_NONE, gettext_noop("Check \"secretsmgr.secret_access_key\" (or the credentials source in use) and the server's clock: requests must be signed within 5 minutes of AWS's time.")},
	{{"ExpiredTokenException", "ExpiredToken"},
		ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
		SM_EARGS_NONE, gettext_noop("AWS rejected the credentials of the request"),
	SM_EARGS_NONE, gettext_noop("The temporary credentials have expired; renew the session token, or use a source that refreshes them (container or instance role).")},
	{{"UnrecognizedClientException", "InvalidClientTokenId", "IncompleteSignature",
	"MissingAuthenticationToken", "MissingAuthenticationTokenException", "InvalidAccessKeyId"},
		ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
		SM_EARGS_NONE, gettext_noop("AWS rejected the credentials of the request"),
	SM_EARGS_NONE, gettext_noop("Check the access key id of the credentials source in use: the settings, the server's environment, the shared credentials file, or the container or instance role.")},
	{{"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"},
		ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
		SM_EARGS_OP, gettext_noop("Secrets Manager throttled %s"),
	SM_EARGS_NONE, gettext_noop("Read through the cache (\"secretsmgr.cache_ttl\"), spread the calls out, or raise \"secretsmgr.max_attempts\".")},
	{{"InvalidParameterException", "ValidationException", "InvalidNextTokenException"},
		ERRCODE_INVALID_PARAMETER_VALUE,
		SM_EARGS_OP_SECRET, gettext_noop("Secrets Manager rejected a parameter of %s for secret \"%s\""),
	SM_EARGS_NONE, gettext_noop("Check the secret id, version id and staging label passed.")},
	{{"InvalidRequestException", "PreconditionNotMetException"},
		ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
		SM_EARGS_OP_SECRET, gettext_noop("secret \"%2$s\" is not in a state that allows %1$s"),
	SM_EARGS_NONE, gettext_noop("The secret may be scheduled for deletion or have a rotation in progress; secretsmgr_describe_secret() shows its state.")},
	{{"ResourceExistsException"},
		ERRCODE_DUPLICATE_OBJECT,
		SM_EARGS_SECRET, gettext_noop("a version of secret \"%s\" with this client request token already exists with another value"),
	SM_EARGS_NONE, gettext_noop("Use a new client request token for a new value.")},
	{{"DecryptionFailure"},
		ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
		SM_EARGS_SECRET, gettext_noop("Secrets Manager could not decrypt secret \"%s\" with its KMS key"),
	SM_EARGS_NONE, gettext_noop("The KMS key policy must allow kms:Decrypt and kms:GenerateDataKey to the database's IAM principal through secretsmanager.<region>.amazonaws.com.")},
	{{"EncryptionFailure"},
		ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
		SM_EARGS_SECRET, gettext_noop("Secrets Manager could not encrypt secret \"%s\" with its KMS key"),
	SM_EARGS_NONE, gettext_noop("The KMS key policy must allow kms:Decrypt and kms:GenerateDataKey to the database's IAM principal through secretsmanager.<region>.amazonaws.com.")},
	{{"LimitExceededException"},
		ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
		SM_EARGS_OP_SECRET, gettext_noop("a Secrets Manager quota was exceeded by %s on secret \"%s\""),
	SM_EARGS_NONE, gettext_noop("Too many versions or requests; see the Secrets Manager quotas of the account.")},
	{{"TlsError"},
		ERRCODE_CONNECTION_FAILURE,
		SM_EARGS_ENDPOINT, gettext_noop("could not reach Secrets Manager at \"%s\""),
	SM_EARGS_NONE, gettext_noop("The endpoint's TLS certificate did not verify; check \"secretsmgr.ca_file\" and the endpoint's host name.")},
	{{"ConnectionError", "TransportError"},
		ERRCODE_CONNECTION_FAILURE,
		SM_EARGS_ENDPOINT, gettext_noop("could not reach Secrets Manager at \"%s\""),
	SM_EARGS_NONE, gettext_noop("Check \"secretsmgr.endpoint\", the network path (VPC endpoint, proxy, security groups) and \"secretsmgr.connect_timeout\".")},
	{{"Timeout"},
		ERRCODE_CONNECTION_FAILURE,
		SM_EARGS_OP, gettext_noop("request %s to Secrets Manager timed out"),
	SM_EARGS_NONE, gettext_noop("Raise \"secretsmgr.request_timeout\" or check the network path to the endpoint.")},
	{{"MalformedResponse"},
		ERRCODE_PROTOCOL_VIOLATION,
		SM_EARGS_OP, gettext_noop("malformed response from Secrets Manager to %s"),
	SM_EARGS_NONE, gettext_noop("A proxy between the database and Secrets Manager may be rewriting responses; check \"secretsmgr.endpoint\".")},
	{{"ResponseTooLarge"},
		ERRCODE_PROGRAM_LIMIT_EXCEEDED,
		SM_EARGS_OP_LIMIT, gettext_noop("response from Secrets Manager to %s exceeds %d bytes"),
	SM_EARGS_NONE, gettext_noop("A secret value is at most 65536 bytes; check \"secretsmgr.endpoint\".")},
	{{"InternalServiceError", "InternalFailure", "ServiceUnavailable"},
		ERRCODE_CONNECTION_FAILURE,
		SM_EARGS_OP, gettext_noop("Secrets Manager failed %s"),
	SM_EARGS_NONE, gettext_noop("The service had an internal error; try again later, or raise \"secretsmgr.max_attempts\".")},
};

/* For a type not in the map: by HTTP status, else "unexpected". */
#define SM_ERROR_MAP_SERVER		(lengthof(error_map) - 1)

static const SmErrorMap error_map_refused =
{{NULL},
	ERRCODE_INSUFFICIENT_PRIVILEGE,
	SM_EARGS_OP_STATUS, gettext_noop("Secrets Manager endpoint refused %s with HTTP %ld"),
SM_EARGS_NONE, gettext_noop("A proxy or a VPC endpoint policy may deny the request; check \"secretsmgr.endpoint\" and the endpoint policy.")};

static const SmErrorMap error_map_unexpected =
{{NULL},
	ERRCODE_PROTOCOL_VIOLATION,
	SM_EARGS_OP, gettext_noop("unexpected answer from Secrets Manager to %s"),
SM_EARGS_NONE, gettext_noop("Check \"secretsmgr.endpoint\": it must be a Secrets Manager endpoint.")};

/* The entry of the error map for err (whose type is type). */
static const SmErrorMap *
error_map_find(const SmAwsError *err, const char *type)
{
	for (int i = 0; i < lengthof(error_map); i++)
		for (int j = 0; error_map[i].types[j] != NULL; j++)
			if (strcmp(type, error_map[i].types[j]) == 0)
				return &error_map[i];
	if (err->http_status >= 500)
		return &error_map[SM_ERROR_MAP_SERVER];
	if (err->http_status == 401 || err->http_status == 403)
		return &error_map_refused;
	return &error_map_unexpected;
}

/* The arguments the formats of the error map may take. */
typedef struct SmErrorArgValues
{
	const char *operation;
	const char *secret_id;
	const char *region;
	const char *endpoint;
	long		http_status;
} SmErrorArgValues;

/* errmsg or errhint, as error_map_emit calls them. */
typedef int (*SmErrorEmitFn) (const char *fmt,...) pg_attribute_printf(1, 2);

/* emit (errmsg or errhint) fmt with the arguments args says it takes. */
static int
error_map_emit(SmErrorEmitFn emit, const char *fmt,
			   SmErrorArgs args, const SmErrorArgValues *v)
{
	switch (args)
	{
		case SM_EARGS_NONE:
			break;
		case SM_EARGS_SECRET:
			return emit(fmt, v->secret_id);
		case SM_EARGS_OP:
			return emit(fmt, v->operation);
		case SM_EARGS_OP_SECRET:
			return emit(fmt, v->operation, v->secret_id);
		case SM_EARGS_REGION:
			return emit(fmt, v->region);
		case SM_EARGS_ENDPOINT:
			return emit(fmt, v->endpoint);
		case SM_EARGS_OP_LIMIT:
			return emit(fmt, v->operation, SM_MAX_RESPONSE_BYTES);
		case SM_EARGS_OP_STATUS:
			return emit(fmt, v->operation, v->http_status);
	}
	return emit("%s", _(fmt));
}

/* The error map: AWS error type / HTTP status -> SQLSTATE, message, hint. */
void
sm_client_raise(const char *operation, const SmAwsError *err, const char *secret_id)
{
	const char *type = err->type ? err->type : "Unknown";
	const char *rid = (err->request_id && err->request_id[0]) ? err->request_id : "none";
	const SmErrorMap *e = error_map_find(err, type);
	SmErrorArgValues v;
	char	   *detail;

	v.operation = operation;
	v.secret_id = secret_id ? secret_id : "";
	v.region = sm_guc_region && sm_guc_region[0] ? sm_guc_region : "from the environment";
	v.endpoint = e->msg_args == SM_EARGS_ENDPOINT ? sm_http_url_redacted(endpoint_url) : NULL;
	v.http_status = err->http_status;

	if (err->transport != SM_HTTP_OK)
		detail = psprintf(_("%s failed after %d attempt(s): %s."), operation,
						  err->attempts, type);
	else if (strncmp(type, "HTTP", 4) == 0)
		detail = psprintf(_("The endpoint answered %s with HTTP %ld and no AWS error body (request id %s) after %d attempt(s)."),
						  operation, err->http_status, rid, err->attempts);
	else if (err->http_status != 200)
		detail = psprintf(_("Secrets Manager returned %s (HTTP %ld, request id %s) to %s after %d attempt(s)."),
						  type, err->http_status, rid, operation, err->attempts);
	else
		detail = psprintf(_("Secrets Manager answered %s with %s (request id %s)."),
						  operation, type, rid);

	/* TLS refusals name the check that failed and say nothing was sent */
	if (err->transport == SM_HTTP_TLS_ERROR)
	{
		int			tls_sqlstate;
		char	   *tls_msg;
		const char *tls_hint;

		sm_tls_explain("Secrets Manager", operation, type, endpoint_url,
					   &tls_sqlstate, &tls_msg, &detail, &tls_hint);
		ereport(ERROR,
				(errcode(tls_sqlstate),
				 errmsg_internal("%s", tls_msg),
				 errdetail_internal("%s", detail),
				 err->message ? errdetail_log("%s AWS message: %s", detail, err->message) : 0,
				 errhint("%s", tls_hint)));
	}
	ereport(ERROR,
			(errcode(e->sqlstate),
			 error_map_emit(errmsg, e->msg, e->msg_args, &v),
			 errdetail_internal("%s", detail),
			 err->message ? errdetail_log("%s AWS message: %s", detail, err->message) : 0,
			 error_map_emit(errhint, e->hint, e->hint_args, &v)));
	pg_unreachable();
}

/* Copy the string field name of obj (NULL if absent). */
static char *
dup_field(json_t *obj, const char *name)
{
	const char *v = json_string_value(json_object_get(obj, name));

	return v ? pstrdup(v) : NULL;
}

/*
 * Fill out from a secret version parse.c extracted (value in a secret
 * buffer); raise when it lacks what every version has.
 */
static void
secret_value_from_parsed(const SmParsedSecret *ps, SmSecretValue *out)
{
	memset(out, 0, sizeof(*out));
	out->arn = ps->arn ? pstrdup(ps->arn) : NULL;
	out->name = ps->name ? pstrdup(ps->name) : NULL;
	out->version_id = ps->version_id ? pstrdup(ps->version_id) : NULL;
	if (ps->secret_string)
		out->secret_string = sm_secret_strndup(ps->secret_string, ps->secret_string_len);
	else if (ps->secret_binary_b64)
	{
		int			enclen = (int) ps->secret_binary_b64_len;
		int			maxlen = pg_b64_dec_len(enclen);
		int			n;

		out->secret_binary = sm_secret_alloc(maxlen + 1);
		n = pg_b64_decode(ps->secret_binary_b64, enclen, (uint8 *) out->secret_binary, maxlen);
		if (n < 0)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("malformed response from Secrets Manager to GetSecretValue"),
					 errdetail("SecretBinary is not valid base64.")));
		out->binary_len = n;
	}
	if (out->version_id == NULL || (out->secret_string == NULL && out->secret_binary == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("malformed response from Secrets Manager to GetSecretValue"),
				 errdetail("The response has no VersionId, or neither SecretString nor SecretBinary.")));
	if (ps->stages)
	{
		out->stages = palloc0(sizeof(char *) * (ps->nstages + 1));
		for (int i = 0; i < ps->nstages; i++)
			out->stages[out->nstages++] = pstrdup(ps->stages[i]);
	}
	out->created_date = ps->created_date;
}

/* Fill out from a GetSecretValue response (value in a secret buffer). */
static void
secret_value_from_json(json_t *root, SmSecretValue *out)
{
	SmParsedSecret ps;

	if (sm_parse_secret_value(root, &ps) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	PG_TRY();
	{
		secret_value_from_parsed(&ps, out);
	}
	PG_FINALLY();
	{
		sm_parsed_secret_free(&ps);
	}
	PG_END_TRY();
}

/* The GetSecretValue request for (secret_id, stage, version_id). */
static json_t *
get_secret_value_request(const char *secret_id, const char *version_stage,
						 const char *version_id)
{
	json_t	   *req = json_object();

	json_object_set_new(req, "SecretId", json_string(secret_id));
	if (version_id)
		json_object_set_new(req, "VersionId", json_string(version_id));
	/* Send the stage explicitly, even AWSCURRENT (see docs/decisions.md). */
	if (version_stage)
		json_object_set_new(req, "VersionStage", json_string(version_stage));
	else if (version_id == NULL)
		json_object_set_new(req, "VersionStage", json_string("AWSCURRENT"));
	return req;
}

/* Fill out from a parsed response, releasing it whatever happens. */
static void
secret_value_from_response(json_t *root, SmSecretValue *out)
{
	PG_TRY();
	{
		secret_value_from_json(root, out);
	}
	PG_CATCH();
	{
		json_decref(root);
		PG_RE_THROW();
	}
	PG_END_TRY();
	json_decref(root);
}

/* GetSecretValue; false with *err when the call failed. */
bool
sm_client_try_get_secret_value(const char *secret_id, const char *version_stage,
							   const char *version_id, SmSecretValue *out,
							   SmAwsError *err)
{
	json_t	   *req = get_secret_value_request(secret_id, version_stage, version_id);
	json_t	   *root;

	root = sm_client_try_call("GetSecretValue", req, err);
	if (root == NULL)
		return false;
	secret_value_from_response(root, out);
	return true;
}

/*
 * Did GetSecretValue with both a version id and a stage fail because that
 * version does not hold that stage?  The API reference requires the two to
 * name the same version but names no error for a mismatch: implementations
 * answer ResourceNotFoundException or InvalidRequestException ("You
 * provided a VersionStage that is not associated to the provided
 * VersionId.").  The latter type also means a secret scheduled for
 * deletion, so only its message tells the two apart.
 */
static bool
is_stage_mismatch(const SmAwsError *err, const char *version_stage,
				  const char *version_id)
{
	return version_stage != NULL && version_id != NULL &&
		err->transport == SM_HTTP_OK && err->type != NULL &&
		strcmp(err->type, "InvalidRequestException") == 0 &&
		err->message != NULL && strstr(err->message, "VersionStage") != NULL;
}

/*
 * Raise the error of a failed GetSecretValue.  A version id asked for with
 * a stage it does not hold is "does not exist" (42704) whatever the
 * implementation answered, with a hint to read by id alone.
 */
void
sm_client_raise_get_secret_value(const SmAwsError *err, const char *secret_id,
								 const char *version_stage, const char *version_id)
{
	const char *rid = (err->request_id && err->request_id[0]) ? err->request_id : "none";

	if (is_stage_mismatch(err, version_stage, version_id))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("version \"%s\" of secret \"%s\" does not hold staging label \"%s\"",
						version_id, secret_id, version_stage),
				 errdetail("Secrets Manager returned %s (HTTP %ld, request id %s) to GetSecretValue after %d attempt(s).",
						   err->type, err->http_status, rid, err->attempts),
				 errhint("A version id and a stage must name the same version: pass version_stage => NULL to read a version by its id alone; secretsmgr_describe_secret() shows the stages of each version.")));
	if (version_stage != NULL && version_id != NULL && sm_client_error_is_not_found(err))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("secret \"%s\" or the requested version does not exist", secret_id),
				 errdetail("Secrets Manager returned %s (HTTP %ld, request id %s) to GetSecretValue after %d attempt(s).",
						   err->type, err->http_status, rid, err->attempts),
				 errhint("Check the secret name, the version id and \"secretsmgr.region\" (now \"%s\"); a version id and a stage must name the same version: pass version_stage => NULL to read a version by its id alone.",
						 sm_guc_region && sm_guc_region[0] ? sm_guc_region : "from the environment")));
	sm_client_raise("GetSecretValue", err, secret_id);
}

/* GetSecretValue; false when missing_ok and the version does not exist. */
bool
sm_client_get_secret_value(const char *secret_id, const char *version_stage,
						   const char *version_id, bool missing_ok,
						   SmSecretValue *out)
{
	SmAwsError	err;

	if (sm_client_try_get_secret_value(secret_id, version_stage, version_id, out, &err))
		return true;
	if (missing_ok && (sm_client_error_is_not_found(&err) ||
					   is_stage_mismatch(&err, version_stage, version_id)))
		return false;
	sm_client_raise_get_secret_value(&err, secret_id, version_stage, version_id);
}

/* Match a BatchGetSecretValue response to the requested items. */
static void
batch_fill(json_t *root, SmBatchItem *items, int n)
{
	const char *ids[SM_BATCH_MAX];
	SmParsedBatchItem parsed[SM_BATCH_MAX];

	for (int k = 0; k < n; k++)
		ids[k] = items[k].secret_id;
	if (sm_parse_batch(root, ids, n, parsed) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	PG_TRY();
	{
		for (int k = 0; k < n; k++)
		{
			if (parsed[k].found)
			{
				secret_value_from_parsed(&parsed[k].value, &items[k].value);
				items[k].found = true;
			}
			else
				items[k].error_code = pstrdup(parsed[k].error_code);
		}
	}
	PG_FINALLY();
	{
		sm_parsed_batch_free(parsed, n);
	}
	PG_END_TRY();
}

/* BatchGetSecretValue of up to SM_BATCH_MAX ids. */
bool
sm_client_batch_get_secret_value(SmBatchItem *items, int n, SmAwsError *err)
{
	json_t	   *req = json_object();
	json_t	   *ids = json_array();
	json_t	   *root;

	Assert(n > 0 && n <= SM_BATCH_MAX);
	for (int k = 0; k < n; k++)
	{
		json_array_append_new(ids, json_string(items[k].secret_id));
		items[k].found = false;
		items[k].error_code = NULL;
	}
	json_object_set_new(req, "SecretIdList", ids);
	root = sm_client_try_call("BatchGetSecretValue", req, err);
	if (root == NULL)
		return false;

	PG_TRY();
	{
		batch_fill(root, items, n);
	}
	PG_FINALLY();
	{
		json_decref(root);
	}
	PG_END_TRY();
	return true;
}

/*
 * BatchGetSecretValue of items[0..n-1] (any n), SM_BATCH_MAX ids a call,
 * the calls concurrent; see smclient.h.
 */
void
sm_client_batch_get_secret_value_many(SmBatchItem *items, int n, SmAwsError *errs)
{
	int			ncalls = (n + SM_BATCH_MAX - 1) / SM_BATCH_MAX;
	json_t	  **reqs;
	json_t	  **roots;
	SmAwsError *call_errs;

	if (n <= 0)
		return;
	reqs = palloc0(sizeof(json_t *) * ncalls);
	roots = palloc0(sizeof(json_t *) * ncalls);
	call_errs = palloc0(sizeof(SmAwsError) * ncalls);
	for (int c = 0; c < ncalls; c++)
	{
		json_t	   *ids = json_array();

		reqs[c] = json_object();
		for (int k = c * SM_BATCH_MAX; k < Min(n, (c + 1) * SM_BATCH_MAX); k++)
		{
			json_array_append_new(ids, json_string(items[k].secret_id));
			items[k].found = false;
			items[k].error_code = NULL;
		}
		json_object_set_new(reqs[c], "SecretIdList", ids);
	}

	PG_TRY();
	{
		sm_client_call_many("BatchGetSecretValue", reqs, ncalls, roots, call_errs);
		for (int c = 0; c < ncalls; c++)
		{
			int			first = c * SM_BATCH_MAX;
			int			len = Min(n, first + SM_BATCH_MAX) - first;

			if (roots[c] != NULL)
				batch_fill(roots[c], items + first, len);
			for (int k = first; k < first + len; k++)
			{
				errs[k] = call_errs[c];
				if (roots[c] != NULL)
					errs[k].type = NULL;
			}
		}
	}
	PG_FINALLY();
	{
		for (int c = 0; c < ncalls; c++)
		{
			json_decref(reqs[c]);
			if (roots[c] != NULL)
				json_decref(roots[c]);
		}
	}
	PG_END_TRY();
	pfree(reqs);
	pfree(roots);
	pfree(call_errs);
}

/* Deep copy of src into CurrentMemoryContext (value in a secret buffer). */
void
sm_secret_value_copy(SmSecretValue *dst, const SmSecretValue *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->arn = src->arn ? pstrdup(src->arn) : NULL;
	dst->name = src->name ? pstrdup(src->name) : NULL;
	dst->version_id = src->version_id ? pstrdup(src->version_id) : NULL;
	if (src->secret_string)
		dst->secret_string = sm_secret_strdup(src->secret_string);
	if (src->secret_binary)
	{
		dst->secret_binary = sm_secret_alloc(src->binary_len + 1);
		memcpy(dst->secret_binary, src->secret_binary, src->binary_len);
		dst->binary_len = src->binary_len;
	}
	dst->stages = palloc0(sizeof(char *) * (src->nstages + 1));
	for (int i = 0; i < src->nstages; i++)
		dst->stages[i] = pstrdup(src->stages[i]);
	dst->nstages = src->nstages;
	dst->created_date = src->created_date;
	if (src->jsonb)
	{
		dst->jsonb = sm_secret_alloc(src->jsonb_len);
		memcpy(dst->jsonb, src->jsonb, src->jsonb_len);
		dst->jsonb_len = src->jsonb_len;
	}
}

/* Zero the value of v now (its buffers are scrubbed again on reset). */
void
sm_secret_value_scrub(SmSecretValue *v)
{
	if (v->secret_string)
		sm_secure_zero(v->secret_string, strlen(v->secret_string));
	if (v->secret_binary)
		sm_secure_zero(v->secret_binary, v->binary_len);
	if (v->jsonb)
		sm_secure_zero(v->jsonb, v->jsonb_len);
}

/* Does v carry the staging label stage? */
bool
sm_secret_value_has_stage(const SmSecretValue *v, const char *stage)
{
	for (int i = 0; i < v->nstages; i++)
		if (strcmp(v->stages[i], stage) == 0)
			return true;
	return false;
}

/* DescribeSecret: the parsed response. */
json_t *
sm_client_describe_secret(const char *secret_id)
{
	json_t	   *req = json_object();
	json_t	   *root;

	json_object_set_new(req, "SecretId", json_string(secret_id));
	root = sm_client_call("DescribeSecret", req, secret_id);
	return root;
}

/* A NULL-safe pstrdup. */
static char *
pstrdup_or_null(const char *s)
{
	return s ? pstrdup(s) : NULL;
}

/* Deep copy of a parse.c description into CurrentMemoryContext. */
static void
description_copy(SmSecretDescription *dst, const SmSecretDescription *src)
{
	*dst = *src;
	dst->arn = pstrdup_or_null(src->arn);
	dst->name = pstrdup_or_null(src->name);
	dst->kms_key_id = pstrdup_or_null(src->kms_key_id);
	dst->rotation_lambda_arn = pstrdup_or_null(src->rotation_lambda_arn);
	dst->rotation_schedule = pstrdup_or_null(src->rotation_schedule);
	dst->versions = palloc0(sizeof(SmVersionStages) * (src->nversions + 1));
	for (int i = 0; i < src->nversions; i++)
	{
		const SmVersionStages *sv = &src->versions[i];
		SmVersionStages *dv = &dst->versions[i];

		dv->version_id = pstrdup(sv->version_id);
		dv->nstages = sv->nstages;
		dv->stages = palloc0(sizeof(char *) * (sv->nstages + 1));
		for (int k = 0; k < sv->nstages; k++)
			dv->stages[k] = pstrdup(sv->stages[k]);
	}
}

/* DescribeSecret, typed: out is palloc'd in CurrentMemoryContext. */
void
sm_client_describe(const char *secret_id, SmSecretDescription *out)
{
	json_t	   *root = sm_client_describe_secret(secret_id);
	SmSecretDescription parsed;
	int			rc = sm_parse_describe_secret(root, &parsed);

	json_decref(root);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	PG_TRY();
	{
		description_copy(out, &parsed);
	}
	PG_FINALLY();
	{
		sm_secret_description_free(&parsed);
	}
	PG_END_TRY();
}

/* PutSecretValue; returns the VersionId. */
char *
sm_client_put_secret_value(const char *secret_id, const char *client_request_token,
						   const char *secret_string,
						   const char *const *stages, int nstages)
{
	json_t	   *req = json_object();
	json_t	   *root = NULL;
	char	   *version_id;

	json_object_set_new(req, "SecretId", json_string(secret_id));
	json_object_set_new(req, "ClientRequestToken", json_string(client_request_token));
	json_object_set_new(req, "SecretString", json_string(secret_string));
	if (nstages > 0)
	{
		json_t	   *arr = json_array();

		for (int i = 0; i < nstages; i++)
			json_array_append_new(arr, json_string(stages[i]));
		json_object_set_new(req, "VersionStages", arr);
	}
	root = sm_client_call("PutSecretValue", req, secret_id);
	version_id = dup_field(root, "VersionId");
	json_decref(root);
	if (version_id == NULL)
		version_id = pstrdup(client_request_token);
	return version_id;
}

/* PutSecretValue of several secrets at once; see smclient.h. */
void
sm_client_put_secret_value_many(const SmPutRequest *puts, int n, bool *ok, SmAwsError *errs)
{
	json_t	  **reqs = palloc0(sizeof(json_t *) * Max(n, 1));
	json_t	  **results = palloc0(sizeof(json_t *) * Max(n, 1));

	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			reqs[i] = json_object();
			json_object_set_new(reqs[i], "SecretId", json_string(puts[i].secret_id));
			json_object_set_new(reqs[i], "ClientRequestToken",
								json_string(puts[i].client_request_token));
			json_object_set_new(reqs[i], "SecretString", json_string(puts[i].secret_string));
			json_object_set_new(reqs[i], "VersionStages", json_pack("[s]", puts[i].stage));
		}
		sm_client_call_many("PutSecretValue", reqs, n, results, errs);
	}
	PG_FINALLY();
	{
		/* the zeroing allocator wipes the values as they are freed */
		for (int i = 0; i < n; i++)
			json_decref(reqs[i]);
	}
	PG_END_TRY();
	for (int i = 0; i < n; i++)
	{
		ok[i] = results[i] != NULL;
		json_decref(results[i]);
	}
}

/* UpdateSecretVersionStage. */
void
sm_client_update_secret_version_stage(const char *secret_id, const char *stage,
									  const char *move_to, const char *remove_from)
{
	json_t	   *req = json_object();
	json_t	   *root = NULL;

	json_object_set_new(req, "SecretId", json_string(secret_id));
	json_object_set_new(req, "VersionStage", json_string(stage));
	if (move_to)
		json_object_set_new(req, "MoveToVersionId", json_string(move_to));
	if (remove_from)
		json_object_set_new(req, "RemoveFromVersionId", json_string(remove_from));
	root = sm_client_call("UpdateSecretVersionStage", req, secret_id);
	json_decref(root);
}

/* One page of ListSecretVersionIds (deprecated versions included). */
static json_t *
list_versions_page(const char *secret_id, const char *next_token)
{
	json_t	   *req = json_pack("{s:s, s:i, s:b}", "SecretId", secret_id,
								"MaxResults", 100, "IncludeDeprecated", 1);
	json_t	   *root;

	if (next_token)
		json_object_set_new(req, "NextToken", json_string(next_token));
	root = sm_client_call("ListSecretVersionIds", req, secret_id);
	return root;
}

/*
 * The paging guard's verdict on the page just read: true to fetch the page
 * of pager->token, false when the list is complete; raises when the endpoint
 * would have us loop.  Every paginated call goes through here.
 */
bool
sm_client_next_page(SmPager *pager, const char *operation, const char *token,
					bool bad_token, const char *secret_id)
{
	SmPageStep	step;

	if (bad_token)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("malformed response from Secrets Manager to %s", operation),
				 errdetail("Its NextToken is not a string of at most %d characters.",
						   SM_PARSE_MAX_NEXT_TOKEN),
				 errhint("Check \"secretsmgr.endpoint\": it must be a Secrets Manager endpoint.")));
	step = sm_pager_next(pager, token);
	switch (step)
	{
		case SM_PAGE_DONE:
			return false;
		case SM_PAGE_NEXT:
			return true;
		case SM_PAGE_REPEATED:
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("Secrets Manager returned the same NextToken twice to %s", operation),
					 errdetail("Page %d of the list for secret \"%s\" named the page just read as the next one.",
							   pager->pages, secret_id ? secret_id : ""),
					 errhint("Check \"secretsmgr.endpoint\": the endpoint pages this list in a loop.")));
			break;
		case SM_PAGE_TOO_MANY:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("Secrets Manager returned more than %d pages to %s",
							pager->max_pages, operation),
					 errdetail("The list for secret \"%s\" did not end after %d pages.",
							   secret_id ? secret_id : "", pager->pages),
					 errhint("Check \"secretsmgr.endpoint\": a secret has at most 100 versions.")));
			break;
		case SM_PAGE_NO_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
			break;
	}
	pg_unreachable();
}

/* The page's NextToken in CurrentMemoryContext; the page is released. */
static char *
next_of(SmVersionsPage *page)
{
	char	   *tok = page->next_token;

	page->next_token = NULL;
	sm_versions_page_free(page);
	if (tok == NULL)
		return NULL;
	PG_TRY();
	{
		char	   *copy = pstrdup(tok);

		free(tok);
		tok = copy;
	}
	PG_CATCH();
	{
		free(tok);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return tok;
}

/* ListSecretVersionIds over every page: versions in all, and since "since". */
void
sm_client_count_versions(const char *secret_id, double since, int *total, int *recent)
{
	SmPager		pager;

	*total = 0;
	*recent = 0;
	sm_pager_init(&pager, SM_MAX_LIST_PAGES);
	PG_TRY();
	{
		bool		more;

		do
		{
			json_t	   *root;
			SmVersionsPage page;
			int			rc;
			bool		bad;

			CHECK_FOR_INTERRUPTS();
			root = list_versions_page(secret_id, pager.token);
			rc = sm_parse_versions_page(root, &page);
			json_decref(root);
			if (rc != 0)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of memory")));
			for (int i = 0; i < page.nversions; i++)
			{
				(*total)++;
				if (page.versions[i].has_created_date &&
					page.versions[i].created_date >= since)
					(*recent)++;
			}
			bad = page.bad_next_token;
			more = sm_client_next_page(&pager, "ListSecretVersionIds",
									   next_of(&page), bad, secret_id);
		} while (more);
	}
	PG_FINALLY();
	{
		sm_pager_free(&pager);
	}
	PG_END_TRY();
}

