/*-------------------------------------------------------------------------
 *
 * sts.c
 *		Credentials from AWS STS: web identity and AssumeRole.
 *
 * Two providers of the credentials chain (credentials.c) live here:
 *
 * - web identity (EKS IRSA and any OIDC provider): a token file, re-read at
 *   every refresh because its issuer renews it, exchanged for the role's
 *   credentials with AssumeRoleWithWebIdentity (unsigned);
 * - AssumeRole, layered on whatever the chain produced when
 *   secretsmgr.role_arn is set (a role in a central secrets account), signed
 *   with those credentials.
 *
 * Both speak STS's Query protocol (a form-encoded POST, an XML answer parsed
 * by parse_sts.c) to the regional endpoint https://sts.<region>.amazonaws.com
 * (sts-fips.<region> when FIPS endpoints are wanted), AWS_ENDPOINT_URL_STS,
 * AWS_ENDPOINT_URL, or secretsmgr.sts_endpoint.
 *
 * Invariants:
 *
 * - Throttling, HTTP 5xx, IDPCommunicationError and transport failures are
 *   tried again (secretsmgr.max_attempts in all, backoff with full jitter
 *   from secretsmgr.retry_base_delay), in a wait that a cancel ends.
 *
 * - The credentials are kept backend-locally until 10 minutes before they
 *   expire (as credentials.c keeps those of the container and instance
 *   metadata endpoints); a failed refresh may use the kept ones while they
 *   have more than a minute left, with one WARNING.  A configured web
 *   identity that fails is an error: the chain never falls back silently to
 *   another principal.
 *
 * - The token, the keys and the request body that carries them are secret
 *   buffers, zeroed when done; the kept copies are scrubbed when replaced.
 *   No token or key reaches a message: STS's own message text is dropped
 *   when it quotes anything that was sent.
 *
 * src/sts.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "storage/fd.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "backend.h"
#include "credtypes.h"
#include "http.h"
#include "parse.h"
#include "parse_sts.h"
#include "region.h"
#include "secretbuf.h"
#include "settings.h"
#include "sigv4.h"
#include "stats.h"
#include "sts.h"

#define SM_STS_SERVICE			"sts"
#define SM_STS_VERSION			"2011-06-15"

/* The longest web identity token STS takes (WebIdentityToken). */
#define SM_WEB_TOKEN_MAX		20000

/* Longest wait between attempts (as the SDKs' standard retry mode). */
#define SM_STS_MAX_BACKOFF_MS	20000

/* Refresh this long before expiry; a failed refresh may use kept ones. */
#define SM_STS_REFRESH_S		600
#define SM_STS_GRACE_S			60

/* Settings */
char	   *sm_guc_role_arn = NULL;
char	   *sm_guc_external_id = NULL;
char	   *sm_guc_role_session_name = NULL;
char	   *sm_guc_sts_endpoint = NULL;
bool		sm_guc_use_fips_endpoint = false;

/* Why an STS call did not deliver (no secret in it). */
typedef struct SmStsFailure
{
	int			sqlerrcode;
	char		code[100];		/* AWS error code or transport kind */
	char		message[512];
	char		detail[1024];
	char		hint[512];
} SmStsFailure;

/* Credentials kept from one provider. */
typedef struct SmStsCache
{
	bool		valid;
	char		key[65];		/* digest of what they were asked with */
	char	   *access_key_id;	/* in sts_context */
	char	   *secret_access_key;
	char	   *session_token;
	time_t		expiration;
	time_t		refresh_at;
	bool		warned;			/* the stale-use WARNING was emitted */
} SmStsCache;

/* The resolved endpoint: URL, Host header and path to sign. */
typedef struct SmStsEndpoint
{
	char	   *url;
	char	   *host;
	char	   *path;
} SmStsEndpoint;

static MemoryContext sts_context = NULL;
static SmStsCache webid_cache;
static SmStsCache assume_cache;	/* secretsmgr.role_arn */
static SmStsCache profile_cache;	/* a profile's role_arn */

/* Is s set to something? */
static inline bool
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* Is s a role ARN in shape: "arn:", printable, 20 to 2048 characters? */
static bool
role_arn_ok(const char *s)
{
	size_t		n = strlen(s);

	if (n < 20 || n > 2048 || strncmp(s, "arn:", 4) != 0)
		return false;
	for (; *s; s++)
		if (*s <= 0x20 || *s > 0x7e)
			return false;
	return true;
}

/* Is s made of STS's characters [\w+=,.@-] (and extra), min to max long? */
static bool
sts_text_ok(const char *s, size_t min, size_t max, const char *extra)
{
	size_t		n = strlen(s);

	if (n < min || n > max)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
			  (*s >= '0' && *s <= '9') || strchr("_+=,.@-", *s) != NULL ||
			  (extra != NULL && strchr(extra, *s) != NULL)))
			return false;
	return true;
}

/* check hook of secretsmgr.role_arn */
static bool
check_role_arn(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || role_arn_ok(*newval))
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errdetail("A role ARN begins with \"arn:\" and has 20 to 2048 printable characters without spaces.");
	return false;
}

/* check hook of secretsmgr.external_id (STS: 2 to 1224 of [\w+=,.@:/-]) */
static bool
check_external_id(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' ||
		sts_text_ok(*newval, 2, 1224, ":/"))
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errdetail("An external id has 2 to 1224 characters among letters, digits and _+=,.@:/-.");
	return false;
}

/* check hook of secretsmgr.role_session_name (2 to 64 of [\w+=,.@-]) */
static bool
check_session_name(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' ||
		sts_text_ok(*newval, 2, 64, NULL))
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errdetail("A role session name has 2 to 64 characters among letters, digits and _+=,.@-.");
	return false;
}

/* check hook of secretsmgr.sts_endpoint: https, or http on loopback */
static bool
check_sts_endpoint(char **newval, void **extra, GucSource source)
{
	if (sm_http_endpoint_setting_ok(*newval))
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errdetail("The endpoint must be an https:// URL, or http:// on a loopback address.");
	return false;
}

/* Define the STS and FIPS settings; see sts.h. */
void
sm_sts_define_settings(void)
{
	DefineCustomStringVariable("secretsmgr.role_arn",
							   "IAM role assumed (AssumeRole) with the credentials the chain found.",
							   "Empty means the chain's credentials are used as they are.",
							   &sm_guc_role_arn, "", PGC_SUSET, 0,
							   check_role_arn, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.external_id",
							   "External id sent with AssumeRole of \"secretsmgr.role_arn\".",
							   NULL,
							   &sm_guc_external_id, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   check_external_id, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.role_session_name",
							   "Session name of the assumed role (AssumeRole).",
							   "Empty means \"secretsmgr-\" followed by the time of the call.",
							   &sm_guc_role_session_name, "", PGC_SUSET, 0,
							   check_session_name, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.sts_endpoint",
							   "AWS STS endpoint URL (web identity and AssumeRole).",
							   "Empty means AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, then https://sts.<region>.amazonaws.com.",
							   &sm_guc_sts_endpoint, "", PGC_SUSET, 0,
							   check_sts_endpoint, NULL, NULL);
	DefineCustomBoolVariable("secretsmgr.use_fips_endpoint",
							 "Use the FIPS endpoints of Secrets Manager and STS.",
							 "Off means AWS_USE_FIPS_ENDPOINT of the server's environment decides.",
							 &sm_guc_use_fips_endpoint, false, PGC_SUSET, 0,
							 NULL, NULL, NULL);
}

/* FIPS endpoints wanted?  See sts.h. */
bool
sm_sts_use_fips(void)
{
	const char *env = sm_env_get("AWS_USE_FIPS_ENDPOINT");

	return sm_guc_use_fips_endpoint ||
		(env != NULL && pg_strcasecmp(env, "true") == 0);
}

/* The STS endpoint URL: setting, environment, else the regional one. */
static char *
endpoint_url(const char **named_by)
{
	const char *v;

	if (nonempty(sm_guc_sts_endpoint))
	{
		*named_by = "secretsmgr.sts_endpoint";
		return pstrdup(sm_guc_sts_endpoint);
	}
	if ((v = sm_env_get("AWS_ENDPOINT_URL_STS")) != NULL)
	{
		*named_by = "AWS_ENDPOINT_URL_STS";
		return pstrdup(v);
	}
	if ((v = sm_env_get("AWS_ENDPOINT_URL")) != NULL)
	{
		*named_by = "AWS_ENDPOINT_URL";
		return pstrdup(v);
	}
	*named_by = NULL;
	return psprintf("https://sts%s.%s.amazonaws.com/",
					sm_sts_use_fips() ? "-fips" : "", sm_region_get());
}

/* The STS endpoint in use, for messages and health; see sts.h. */
char *
sm_sts_endpoint(void)
{
	const char *named_by;
	char	   *url = endpoint_url(&named_by);

	return sm_http_url_redacted(url);
}

/* Resolve and check the endpoint; raise when it is not allowed. */
static void
resolve_endpoint(SmStsEndpoint *ep)
{
	const char *named_by;
	char	   *url = endpoint_url(&named_by);
	CURLU	   *u;
	char	   *host = NULL;
	char	   *port = NULL;
	char	   *path = NULL;

	if (!sm_http_url_allowed(url, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("STS endpoint \"%s\" is not allowed", sm_http_url_redacted(url)),
				 errdetail("Only https:// endpoints, or http:// on a loopback address, are used."),
				 errhint("Fix \"%s\".", named_by ? named_by : "secretsmgr.region")));

	u = curl_url();
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
	{
		if (host)
			curl_free(host);
		if (u)
			curl_url_cleanup(u);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("STS endpoint \"%s\" is not a valid URL", sm_http_url_redacted(url)),
				 errhint("Fix \"%s\".", named_by ? named_by : "secretsmgr.region")));
	}
	(void) curl_url_get(u, CURLUPART_PORT, &port, 0);
	ep->url = url;
	ep->host = port ? psprintf("%s:%s", host, port) : pstrdup(host);
	ep->path = pstrdup(path[0] ? path : "/");
	curl_free(host);
	curl_free(path);
	if (port)
		curl_free(port);
	curl_url_cleanup(u);
}

/* The context of the kept credentials, created on first use. */
static MemoryContext
get_sts_context(void)
{
	if (sts_context == NULL)
		sts_context = AllocSetContextCreate(TopMemoryContext,
											"secretsmgr sts credentials",
											ALLOCSET_SMALL_SIZES);
	return sts_context;
}

/* Forget one provider's kept credentials. */
static void
cache_clear(SmStsCache *c)
{
	sm_secret_free_string(&c->access_key_id);
	sm_secret_free_string(&c->secret_access_key);
	sm_secret_free_string(&c->session_token);
	c->valid = false;
	c->warned = false;
	c->expiration = 0;
	c->refresh_at = 0;
	memset(c->key, 0, sizeof(c->key));
}

/* Forget every kept STS credential; see sts.h. */
void
sm_sts_invalidate(void)
{
	cache_clear(&webid_cache);
	cache_clear(&assume_cache);
	cache_clear(&profile_cache);
}

/* When to ask again for credentials expiring at exp (as credentials.c). */
static time_t
refresh_time(time_t exp, time_t now)
{
	if (exp - now > SM_STS_REFRESH_S)
		return exp - SM_STS_REFRESH_S;
	if (exp - now > 2 * SM_STS_GRACE_S)
		return now + SM_STS_GRACE_S;
	return now;
}

/* Digest of the NUL-separated parts: what kept credentials were asked with. */
static void
cache_key(char out[65], const char *const *parts, int nparts)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < nparts; i++)
	{
		appendStringInfoString(&buf, parts[i] ? parts[i] : "");
		appendStringInfoChar(&buf, '\0');
	}
	sm_sigv4_sha256_hex(buf.data, buf.len, out);
	sm_secure_zero(buf.data, buf.len);
	pfree(buf.data);
}

/* Fresh kept credentials for key? */
static bool
cache_fresh(const SmStsCache *c, const char *key, time_t now)
{
	return c->valid && strcmp(c->key, key) == 0 && now < c->refresh_at;
}

/* Keep p's credentials under key. */
static void
cache_store(SmStsCache *c, const char *key, const SmParsedSts *p, time_t now)
{
	MemoryContext cxt = get_sts_context();

	cache_clear(c);
	c->access_key_id = MemoryContextStrdup(cxt, p->access_key_id);
	c->secret_access_key = MemoryContextStrdup(cxt, p->secret_access_key);
	c->session_token = MemoryContextStrdup(cxt, p->session_token);
	c->expiration = p->expiration;
	c->refresh_at = refresh_time(p->expiration, now);
	strlcpy(c->key, key, sizeof(c->key));
	c->valid = true;
}

/* Give the caller secret-buffer copies of the kept credentials. */
static void
copy_out(const SmStsCache *c, SmCredentials *out, char *source)
{
	out->access_key_id = sm_secret_strdup(c->access_key_id);
	out->secret_access_key = sm_secret_strdup(c->secret_access_key);
	out->session_token = sm_secret_strdup(c->session_token);
	out->expiration = c->expiration;
	out->source = source;
}

/* Append name=value to a form body, value percent-encoded (RFC 3986). */
static void
form_append(char *buf, size_t *pos, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	if (*pos > 0)
		buf[(*pos)++] = '&';
	memcpy(buf + *pos, name, strlen(name));
	*pos += strlen(name);
	buf[(*pos)++] = '=';
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
			*p == '.' || *p == '~')
			buf[(*pos)++] = *p;
		else
		{
			buf[(*pos)++] = '%';
			buf[(*pos)++] = hex[*p >> 4];
			buf[(*pos)++] = hex[*p & 15];
		}
	}
	buf[*pos] = '\0';
}

/*
 * The form body of an STS call from name/value pairs, as a secret buffer
 * (a value may be a token).  Sized in advance, so never reallocated.
 */
static char *
form_body(const char *const *pairs, int npairs, size_t *len)
{
	size_t		size = 1;
	char	   *buf;

	for (int i = 0; i < npairs; i++)
		size += strlen(pairs[2 * i]) + 2 + 3 * strlen(pairs[2 * i + 1]);
	buf = sm_secret_alloc(size);
	*len = 0;
	buf[0] = '\0';
	for (int i = 0; i < npairs; i++)
		form_append(buf, len, pairs[2 * i], pairs[2 * i + 1]);
	return buf;
}

/* Fill a failure record. */
static void
failure(SmStsFailure *f, int sqlerrcode, const char *code, const char *hint,
		const char *fmt,...) pg_attribute_printf(5, 6);

static void
failure(SmStsFailure *f, int sqlerrcode, const char *code, const char *hint,
		const char *fmt,...)
{
	va_list		ap;

	f->sqlerrcode = sqlerrcode;
	strlcpy(f->code, code, sizeof(f->code));
	strlcpy(f->hint, hint, sizeof(f->hint));
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
}

/*
 * Map an STS error code to a SQLSTATE and a hint.  web: the call was
 * AssumeRoleWithWebIdentity.
 */
static int
map_error(const char *code, long http_status, bool web, const char **hint)
{
	if (strcmp(code, "AccessDenied") == 0 ||
		strcmp(code, "AccessDeniedException") == 0)
	{
		*hint = web ?
			"The role's trust policy must allow sts:AssumeRoleWithWebIdentity to the identity provider, with conditions that match the token's subject and audience (the service account)." :
			"The role's trust policy must trust the calling principal, which needs sts:AssumeRole on the role; check \"secretsmgr.external_id\" when the trust policy asks for one.";
		return ERRCODE_INSUFFICIENT_PRIVILEGE;
	}
	if (strcmp(code, "ExpiredToken") == 0 ||
		strcmp(code, "ExpiredTokenException") == 0)
	{
		*hint = web ?
			"The web identity token has expired: its issuer must renew the token file (Kubernetes renews projected service account tokens itself)." :
			"The credentials the role is assumed with have expired; renew them at their source.";
		return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
	}
	if (strcmp(code, "InvalidIdentityToken") == 0 ||
		strcmp(code, "IDPRejectedClaim") == 0)
	{
		*hint = "Check the OpenID Connect provider registered in IAM (issuer URL, audience sts.amazonaws.com, thumbprint) and that the token file holds that provider's token.";
		return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
	}
	if (strcmp(code, "IDPCommunicationError") == 0)
	{
		*hint = "STS could not reach the identity provider to verify the token; try again later.";
		return ERRCODE_CONNECTION_FAILURE;
	}
	if (strcmp(code, "RegionDisabledException") == 0)
	{
		*hint = "Activate STS in this region (IAM account settings), or point \"secretsmgr.sts_endpoint\" at a region where it is active.";
		return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	}
	if (strcmp(code, "Throttling") == 0 ||
		strcmp(code, "ThrottlingException") == 0 ||
		strcmp(code, "RequestLimitExceeded") == 0)
	{
		*hint = "STS is throttling this account's calls; they are kept for their lifetime, so fewer backends asking at once helps.";
		return ERRCODE_CONFIGURATION_LIMIT_EXCEEDED;
	}
	if (strcmp(code, "InvalidClientTokenId") == 0 ||
		strcmp(code, "SignatureDoesNotMatch") == 0 ||
		strcmp(code, "IncompleteSignature") == 0 ||
		strcmp(code, "MissingAuthenticationToken") == 0 ||
		strcmp(code, "UnrecognizedClientException") == 0 ||
		strcmp(code, "InvalidSignatureException") == 0)
	{
		*hint = "STS refused the credentials the role is assumed with; check their source (see secretsmgr_health()) and the server's clock.";
		return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
	}
	if (strcmp(code, "ValidationError") == 0 ||
		strcmp(code, "InvalidParameterValue") == 0 ||
		strcmp(code, "MalformedPolicyDocument") == 0)
	{
		*hint = "Check the role ARN, the session name and the external id.";
		return ERRCODE_INVALID_PARAMETER_VALUE;
	}
	if (http_status >= 500)
	{
		*hint = "STS is failing; try again later.";
		return ERRCODE_CONNECTION_FAILURE;
	}
	*hint = "Check \"secretsmgr.sts_endpoint\" and the role's configuration.";
	return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
}

/* Does text quote any of the secrets that were sent? */
static bool
quotes_secret(const char *text, const char *const *secrets)
{
	for (int i = 0; secrets[i] != NULL; i++)
	{
		if (secrets[i][0] != '\0' && strstr(text, secrets[i]) != NULL)
			return true;
		/* a sanitised message may have cut it: look for a long prefix too */
		if (strlen(secrets[i]) >= 32)
		{
			char		prefix[33];

			memcpy(prefix, secrets[i], 32);
			prefix[32] = '\0';
			if (strstr(text, prefix) != NULL)
				return true;
		}
	}
	return false;
}

/*
 * One STS call of action with the form pairs; signed with creds when not
 * NULL.  On success fills *p (malloc'd, released by the caller with
 * sm_parsed_sts_free); else fills *f.  secrets: NULL-terminated list of
 * what was sent that no message may quote.
 */
static bool
sts_call(const char *action, const char *const *pairs, int npairs,
		 const SmCredentials *creds, const char *const *secrets,
		 SmParsedSts *p, SmStsFailure *f)
{
	SmStsEndpoint ep;
	char	   *body;
	size_t		body_len;
	char		amz_date[17];
	char		authorization[1024];
	SmHttpHeader hh[4];
	int			nh = 0;
	SmHttpRequest req;
	SmHttpResponse resp;
	SmHttpStatus st;
	instr_time	start;
	instr_time	duration;
	const char *reason;
	bool		web = (creds == NULL);
	char	   *shown;
	char		statkey[160];

	resolve_endpoint(&ep);
	shown = sm_http_url_redacted(ep.url);
	body = form_body(pairs, npairs, &body_len);

	hh[nh].name = "Content-Type";
	hh[nh++].value = "application/x-www-form-urlencoded; charset=utf-8";
	if (creds != NULL)
	{
		SmSigV4Header sh[4];
		int			ns = 3;
		SmSigV4Request sreq;

		sm_sigv4_amz_date(time(NULL), amz_date);
		sh[0].name = "Content-Type";
		sh[0].value = hh[0].value;
		sh[1].name = "Host";
		sh[1].value = ep.host;
		sh[2].name = "X-Amz-Date";
		sh[2].value = amz_date;
		if (nonempty(creds->session_token))
		{
			sh[3].name = "X-Amz-Security-Token";
			sh[3].value = creds->session_token;
			ns = 4;
		}
		memset(&sreq, 0, sizeof(sreq));
		sreq.method = "POST";
		sreq.path = ep.path;
		sreq.headers = sh;
		sreq.nheaders = ns;
		sreq.body = body;
		sreq.body_len = body_len;
		sreq.amz_date = amz_date;
		sreq.region = sm_region_get();
		sreq.service = SM_STS_SERVICE;
		sreq.access_key_id = creds->access_key_id;
		sreq.secret_access_key = creds->secret_access_key;
		if (sm_sigv4_sign(&sreq, authorization, sizeof(authorization),
						  NULL, NULL) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not sign the STS request")));
		hh[nh].name = "X-Amz-Date";
		hh[nh++].value = amz_date;
		hh[nh].name = "Authorization";
		hh[nh++].value = authorization;
		if (ns == 4)
		{
			hh[nh].name = "X-Amz-Security-Token";
			hh[nh++].value = creds->session_token;
		}
	}

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = ep.url;
	req.headers = hh;
	req.nheaders = nh;
	req.body = body;
	req.body_len = body_len;
	req.connect_timeout_ms = sm_guc_connect_timeout_ms;
	req.timeout_ms = sm_guc_request_timeout_ms;
	req.max_body = SM_STS_BODY_MAX;

	memset(&resp, 0, sizeof(resp));
	INSTR_TIME_SET_CURRENT(start);
	st = sm_http_perform(&req, &resp);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	sm_stats_count(SM_STAT_API_CALL, action, INSTR_TIME_GET_MILLISEC(duration));
	sm_secure_zero(body, body_len);
	sm_secure_zero(authorization, sizeof(authorization));

	memset(p, 0, sizeof(*p));
	memset(f, 0, sizeof(*f));
	if (st == SM_HTTP_TOO_LARGE)
		failure(f, ERRCODE_PROTOCOL_VIOLATION, "ResponseTooLarge",
				"Check \"secretsmgr.sts_endpoint\": it must be an STS endpoint.",
				"The STS endpoint \"%s\" sent an answer larger than %d bytes.",
				shown, SM_STS_BODY_MAX);
	else if (st != SM_HTTP_OK)
		failure(f, ERRCODE_CONNECTION_FAILURE,
				st == SM_HTTP_TIMEOUT ? "Timeout" :
				st == SM_HTTP_TLS_ERROR ? "TlsError" : "ConnectionError",
				st == SM_HTTP_TLS_ERROR ?
				"The endpoint's TLS certificate did not verify; check \"secretsmgr.ca_file\" and the STS endpoint's host name." :
				"Check \"secretsmgr.sts_endpoint\" (or AWS_ENDPOINT_URL_STS), \"secretsmgr.region\" and the network path to STS.",
				"The STS endpoint \"%s\" could not be reached: %s.",
				shown, resp.error);
	if (st != SM_HTTP_OK)
	{
		sm_http_response_free(&resp);
	}
	else if (resp.status == 200)
	{
		reason = sm_parse_sts_credentials(resp.body, resp.body_len, action, p);
		sm_http_response_free(&resp);
		if (reason == NULL)
			return true;
		failure(f, ERRCODE_PROTOCOL_VIOLATION, "MalformedResponse",
				"Check \"secretsmgr.sts_endpoint\": it must be an STS endpoint.",
				"The STS endpoint \"%s\" sent an unusable answer to %s: %s.",
				shown, action, reason);
	}
	else
	{
		SmParsedSts e;
		int			rc = sm_parse_sts_error(resp.body, resp.body_len, &e);
		const char *hint;
		int			sqlstate;

		sm_http_response_free(&resp);
		if (rc < 0)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		if (rc == 0)
		{
			sqlstate = map_error("", resp.status, web, &hint);
			failure(f, sqlstate, "HTTP", hint,
					"The STS endpoint \"%s\" answered %s with HTTP %ld and no STS error (request id %s).",
					shown, action, resp.status,
					resp.request_id[0] ? resp.request_id : "none");
		}
		else
		{
			const char *msg = e.error_message;

			if (msg != NULL && quotes_secret(msg, secrets))
				msg = "(message withheld: it quotes what was sent)";
			sqlstate = map_error(e.error_code, resp.status, web, &hint);
			failure(f, sqlstate, e.error_code, hint,
					"STS answered %s with %s (HTTP %ld, request id %s).%s%s%s",
					action, e.error_code, resp.status,
					resp.request_id[0] ? resp.request_id : "none",
					msg ? " Its message: \"" : "", msg ? msg : "",
					msg ? "\"" : "");
			sm_parsed_sts_free(&e);
		}
	}
	snprintf(statkey, sizeof(statkey), "%s:%s", action, f->code);
	sm_stats_count(SM_STAT_API_ERROR, statkey, 0);
	return false;
}

/* Is a failure worth another attempt (throttling, 5xx, transport)? */
static bool
retryable(const SmStsFailure *f)
{
	return f->sqlerrcode == ERRCODE_CONNECTION_FAILURE ||
		f->sqlerrcode == ERRCODE_CONFIGURATION_LIMIT_EXCEEDED;
}

/*
 * Wait before attempt + 1: random(0,1) * min(base * 2^(attempt-1), 20 s),
 * on the latch, so that a cancel, a terminate or a lost client ends it.
 */
static void
backoff(int attempt)
{
	double		cap = sm_guc_retry_base_delay_ms * pow(2.0, attempt - 1);
	instr_time	start;
	instr_time	now;
	double		wait;

	if (cap > SM_STS_MAX_BACKOFF_MS)
		cap = SM_STS_MAX_BACKOFF_MS;
	wait = pg_prng_double(&pg_global_prng_state) * cap;
	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		double		left;

		sm_backend_check_interrupts();
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		left = wait - INSTR_TIME_GET_MILLISEC(now);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) ceil(Min(left, 1000.0)), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * sts_call, tried again on retryable failures up to secretsmgr.max_attempts
 * attempts in all.
 */
static bool
sts_call_retrying(const char *action, const char *const *pairs, int npairs,
				  const SmCredentials *creds, const char *const *secrets,
				  SmParsedSts *p, SmStsFailure *f)
{
	for (int attempt = 1;; attempt++)
	{
		if (sts_call(action, pairs, npairs, creds, secrets, p, f))
			return true;
		if (attempt >= sm_guc_max_attempts || !retryable(f))
			return false;
		sm_stats_count(SM_STAT_RETRY, action, 0);
		backoff(attempt);
	}
}

/*
 * Kept credentials after a failed refresh: usable while more than a minute
 * is left (with one WARNING), else the failure is raised.
 */
static void
use_kept_or_raise(SmStsCache *c, const char *key, const SmStsFailure *f,
				  const char *what, SmCredentials *out, char *source)
{
	time_t		now = time(NULL);

	if (c->valid && strcmp(c->key, key) == 0 &&
		c->expiration - now > SM_STS_GRACE_S)
	{
		if (!c->warned)
		{
			ereport(WARNING,
					(errmsg("could not refresh AWS credentials of %s, using the current ones until they expire",
							what),
					 errdetail("%s", f->detail)));
			c->warned = true;
		}
		copy_out(c, out, source);
		return;
	}
	ereport(ERROR,
			(errcode(f->sqlerrcode),
			 errmsg("could not get AWS credentials of %s", what),
			 errdetail("%s", f->detail),
			 errhint("%s", f->hint)));
}

/* Is a web identity configured in the environment?  See sts.h. */
bool
sm_sts_web_identity_from_env(SmWebIdentity *wi)
{
	const char *file = sm_env_get("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role = sm_env_get("AWS_ROLE_ARN");

	if (file == NULL)
		return false;
	if (role == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("environment variable AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"),
				 errdetail("A web identity token is exchanged for the credentials of the role AWS_ROLE_ARN names; no other source is tried."),
				 errhint("Set AWS_ROLE_ARN in the environment the server is started with, or unset AWS_WEB_IDENTITY_TOKEN_FILE.")));
	wi->token_file = file;
	wi->role_arn = role;
	wi->session_name = sm_env_get("AWS_ROLE_SESSION_NAME");
	wi->configured_by = "AWS_WEB_IDENTITY_TOKEN_FILE";
	return true;
}

/* Check a role ARN and session name from wherever they came. */
static void
check_role(const char *role_arn, const char *session_name, const char *named_by)
{
	if (!role_arn_ok(role_arn))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid role ARN in %s", named_by),
				 errdetail("A role ARN begins with \"arn:\" and has 20 to 2048 printable characters without spaces.")));
	if (session_name != NULL && !sts_text_ok(session_name, 2, 64, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid role session name in %s", named_by),
				 errdetail("A role session name has 2 to 64 characters among letters, digits and _+=,.@-.")));
}

/* Is a token printable ASCII without spaces (it goes into a form field)? */
static bool
token_text_ok(const char *s)
{
	for (; *s; s++)
		if (*s <= 0x20 || *s > 0x7e)
			return false;
	return true;
}

/*
 * Read the web identity token file (a secret buffer).  Missing, unreadable,
 * empty or oversized is an error that names the file and says that no other
 * source is tried.
 */
static char *
read_token_file(const SmWebIdentity *wi)
{
	int			fd;
	char	   *buf;
	size_t		len = 0;
	bool		too_large;

	fd = OpenTransientFile(wi->token_file, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open web identity token file \"%s\": %m",
						wi->token_file),
				 errdetail("The file is named by %s; credentials come from web identity for role \"%s\" and no other source is tried.",
						   wi->configured_by, wi->role_arn),
				 errhint("Check that the token volume is mounted and readable by the server's OS user.")));
	buf = sm_secret_alloc(SM_WEB_TOKEN_MAX + 2);
	for (;;)
	{
		ssize_t		n = read(fd, buf + len, SM_WEB_TOKEN_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read web identity token file \"%s\": %m",
							wi->token_file),
					 errdetail("The file is named by %s; no other source is tried.",
							   wi->configured_by)));
		if (n == 0 || (len += n) > SM_WEB_TOKEN_MAX)
			break;
	}
	CloseTransientFile(fd);
	buf[len] = '\0';
	too_large = len > SM_WEB_TOKEN_MAX;
	/* a final newline is an editor's habit, not part of the token */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
					   buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (len == 0 || too_large || !token_text_ok(buf))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("web identity token file \"%s\" holds no usable token",
						wi->token_file),
				 errdetail("A token has 1 to %d printable characters without spaces; the file is named by %s and no other source is tried.",
						   SM_WEB_TOKEN_MAX, wi->configured_by)));
	return buf;
}

/* Credentials of a web identity; see sts.h. */
void
sm_sts_web_identity(const SmWebIdentity *wi, SmCredentials *out)
{
	time_t		now = time(NULL);
	const char *parts[4];
	char		key[65];
	char	   *source;
	char	   *what;
	char	   *token;
	char	   *session;
	const char *pairs[10];
	const char *secrets[2];
	SmParsedSts p;
	SmStsFailure f;
	bool		ok;

	check_role(wi->role_arn, wi->session_name, wi->configured_by);
	memset(out, 0, sizeof(*out));
	source = psprintf("web identity (%s)", wi->role_arn);
	what = psprintf("web identity for role \"%s\"", wi->role_arn);

	parts[0] = wi->token_file;
	parts[1] = wi->role_arn;
	parts[2] = wi->session_name;
	parts[3] = sm_sts_endpoint();
	cache_key(key, parts, 4);
	if (cache_fresh(&webid_cache, key, now))
	{
		copy_out(&webid_cache, out, source);
		return;
	}

	token = read_token_file(wi);
	session = wi->session_name ? pstrdup(wi->session_name) :
		psprintf("secretsmgr-%ld", (long) now);
	pairs[0] = "Action";
	pairs[1] = "AssumeRoleWithWebIdentity";
	pairs[2] = "RoleArn";
	pairs[3] = wi->role_arn;
	pairs[4] = "RoleSessionName";
	pairs[5] = session;
	pairs[6] = "Version";
	pairs[7] = SM_STS_VERSION;
	pairs[8] = "WebIdentityToken";
	pairs[9] = token;
	secrets[0] = token;
	secrets[1] = NULL;
	ok = sts_call_retrying("AssumeRoleWithWebIdentity", pairs, 5, NULL,
						   secrets, &p, &f);
	sm_secure_zero(token, strlen(token));
	if (ok)
	{
		PG_TRY();
		{
			cache_store(&webid_cache, key, &p, now);
		}
		PG_FINALLY();
		{
			sm_parsed_sts_free(&p);
		}
		PG_END_TRY();
		copy_out(&webid_cache, out, source);
		return;
	}
	use_kept_or_raise(&webid_cache, key, &f, what, out, source);
}

/* Is AssumeRole configured?  See sts.h. */
bool
sm_sts_assume_role_configured(void)
{
	return nonempty(sm_guc_role_arn);
}

/* Credentials of secretsmgr.role_arn, assumed with base; see sts.h. */
void
sm_sts_assume_role(const SmCredentials *base, SmCredentials *out)
{
	sm_sts_assume_role_as(base, sm_guc_role_arn,
						  nonempty(sm_guc_external_id) ? sm_guc_external_id : NULL,
						  nonempty(sm_guc_role_session_name) ? sm_guc_role_session_name : NULL,
						  "secretsmgr.role_arn", true, out);
}

/* Credentials of role_arn, assumed with base; see sts.h. */
void
sm_sts_assume_role_as(const SmCredentials *base, const char *role,
					  const char *ext, const char *sess, const char *named_by,
					  bool layered, SmCredentials *out)
{
	time_t		now = time(NULL);
	SmStsCache *cache = layered ? &assume_cache : &profile_cache;
	const char *parts[7];
	char		key[65];
	char	   *source;
	char	   *what;
	char	   *session;
	const char *pairs[12];
	int			npairs = 0;
	const char *secrets[3];
	SmParsedSts p;
	SmStsFailure f;

	check_role(role, sess, named_by);
	if (ext != NULL && !sts_text_ok(ext, 2, 1224, ":/"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid external id in %s", named_by),
				 errdetail("An external id has 2 to 1224 characters among letters, digits and _+=,.@:/-.")));
	memset(out, 0, sizeof(*out));
	source = psprintf("assumed role (%s) over %s", role, base->source);
	what = psprintf("role \"%s\" (AssumeRole with credentials from %s)",
					role, base->source);

	parts[0] = role;
	parts[1] = ext;
	parts[2] = sess;
	parts[3] = base->access_key_id;
	parts[4] = base->secret_access_key;
	parts[5] = base->session_token;
	parts[6] = sm_sts_endpoint();
	cache_key(key, parts, 7);
	if (cache_fresh(cache, key, now))
	{
		copy_out(cache, out, source);
		return;
	}

	session = sess ? pstrdup(sess) : psprintf("secretsmgr-%ld", (long) now);
	pairs[npairs++] = "Action";
	pairs[npairs++] = "AssumeRole";
	if (ext != NULL)
	{
		pairs[npairs++] = "ExternalId";
		pairs[npairs++] = ext;
	}
	pairs[npairs++] = "RoleArn";
	pairs[npairs++] = role;
	pairs[npairs++] = "RoleSessionName";
	pairs[npairs++] = session;
	pairs[npairs++] = "Version";
	pairs[npairs++] = SM_STS_VERSION;
	secrets[0] = base->secret_access_key;
	secrets[1] = base->session_token;
	secrets[2] = NULL;
	if (sts_call_retrying("AssumeRole", pairs, npairs / 2, base, secrets,
						  &p, &f))
	{
		PG_TRY();
		{
			cache_store(cache, key, &p, now);
		}
		PG_FINALLY();
		{
			sm_parsed_sts_free(&p);
		}
		PG_END_TRY();
		copy_out(cache, out, source);
		return;
	}
	use_kept_or_raise(cache, key, &f, what, out, source);
}
