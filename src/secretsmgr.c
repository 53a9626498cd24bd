/*
 * secretsmgr.c
 *		Module entry point: _PG_init and the definition of every setting.
 *
 * The top floor: at module load it makes jansson allocate through the
 * zeroing allocator (secretbuf.c), defines every secretsmgr.* setting once,
 * with its check hook (the variables live in settings.c), reserves the
 * prefix and registers the cache's invalidation callback.  Nothing else of
 * secretsmgr includes anything of this file.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "cache.h"
#include "compat.h"
#include "guard.h"
#include "http.h"
#include "secretbuf.h"
#include "settings.h"
#include "stale.h"
#include "stats_shmem.h"
#include "sts.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* secretsmgr.endpoint: empty, https, or http on a loopback address. */
static bool
check_endpoint(char **newval, void **extra, GucSource source)
{
	if (sm_http_endpoint_setting_ok(*newval))
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errdetail("The endpoint must be an https:// URL, or http:// on a loopback address.");
	return false;
}

/* secretsmgr.region: empty or an AWS region name such as "eu-west-1". */
static bool
check_region(char **newval, void **extra, GucSource source)
{
	const char *p;

	if (*newval == NULL)
		return true;
	if (strlen(*newval) > 32)
	{
		GUC_check_errdetail("A region name has at most 32 characters.");
		return false;
	}
	for (p = *newval; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
		{
			GUC_check_errdetail("A region name has only lower-case letters, digits and \"-\".");
			return false;
		}
	}
	return true;
}

/* Printable ASCII only: these values end up in headers and file paths. */
static bool
check_printable(char **newval, void **extra, GucSource source)
{
	const unsigned char *p;

	if (*newval == NULL)
		return true;
	for (p = (const unsigned char *) *newval; *p; p++)
	{
		if (*p < 0x20 || *p > 0x7e)
		{
			GUC_check_errdetail("The value may hold printable ASCII characters only.");
			return false;
		}
	}
	return true;
}

/* Module load: define the settings, reserve the prefix, set up allocators. */
void
_PG_init(void)
{
	sm_secretbuf_init();

	DefineCustomStringVariable("secretsmgr.region",
							   "AWS region of Secrets Manager.",
							   "Empty means AWS_REGION, then AWS_DEFAULT_REGION, of the server's environment.",
							   &sm_guc_region, "", PGC_SUSET, 0,
							   check_region, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.endpoint",
							   "Secrets Manager endpoint URL.",
							   "Empty means AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL, then https://secretsmanager.<region>.amazonaws.com.",
							   &sm_guc_endpoint, "", PGC_SUSET, 0,
							   check_endpoint, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.access_key_id",
							   "AWS access key id (takes precedence over every other credentials source).",
							   NULL,
							   &sm_guc_access_key_id, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   check_printable, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.secret_access_key",
							   "AWS secret access key.",
							   NULL,
							   &sm_guc_secret_access_key, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   check_printable, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.session_token",
							   "AWS session token for temporary credentials.",
							   NULL,
							   &sm_guc_session_token, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   check_printable, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.profile",
							   "Profile of the shared credentials file.",
							   "Empty means AWS_PROFILE, then \"default\".",
							   &sm_guc_profile, "", PGC_SUSET, 0,
							   check_printable, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.ca_file",
							   "File of CA certificates that verify the endpoint's TLS certificate.",
							   "Empty means the system's trust store.",
							   &sm_guc_ca_file, "", PGC_SUSET, 0,
							   check_printable, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.connect_timeout",
							"Time allowed to connect to an endpoint.",
							NULL,
							&sm_guc_connect_timeout_ms, 2000, 1, 600000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.request_timeout",
							"Time allowed for one request, connection included.",
							NULL,
							&sm_guc_request_timeout_ms, 10000, 1, 3600000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.max_attempts",
							"Attempts per Secrets Manager call, the first included.",
							"Throttling, HTTP 5xx, connection errors and timeouts are retried with exponential backoff and full jitter.",
							&sm_guc_max_attempts, 3, 1, 20,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.max_concurrent_requests",
							"Most Secrets Manager requests one call keeps in flight at once.",
							"secretsmgr_rotate_due() reads due secrets with this many BatchGetSecretValue calls at a time.",
							&sm_guc_max_concurrent_requests, 8, 1, 64,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.retry_base_delay",
							"Base of the exponential backoff between attempts.",
							"Before retry i the wait is random(0,1) * min(base * 2^(i-1), 20 s).",
							&sm_guc_retry_base_delay_ms, 1000, 1, 20000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.cache_ttl",
							"How long a fetched secret value is served from this backend's cache.",
							"0 disables the cache.",
							&sm_guc_cache_ttl_s, 300, 0, 86400,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.cache_max_entries",
							"Most secret values kept in this backend's cache (least recently used go first).",
							NULL,
							&sm_guc_cache_max_entries, 100, 0, 100000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.cache_max_stale",
							"How long past its TTL a cached value may be served while Secrets Manager is failing.",
							"0 (the default) never serves an expired value.  Only transient failures (throttling, HTTP 5xx, timeouts, connection errors) qualify.",
							&sm_guc_cache_max_stale_s, 0, 0, 86400,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.cache_pending_ttl",
							"How long a cached AWSCURRENT is served once its role has a newer version's password.",
							"Between a rotation Lambda's setSecret and finishSecret, AWSCURRENT no longer logs in; 0 does not cache it then.",
							&sm_guc_cache_pending_ttl_s, 5, 0, 86400,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.preload",
							   "Secrets fetched, in one batch, the first time a session reads a secret.",
							   "A comma-separated list of secret names or ARNs.",
							   &sm_guc_preload, "", PGC_USERSET, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("secretsmgr.password_length",
							"Length of the passwords a rotation generates.",
							NULL,
							&sm_guc_password_length, 32, 16, 1024,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("secretsmgr.password_exclude_characters",
							   "Characters a generated password never contains.",
							   "The default leaves out those that break connection strings, .pgpass files and shells.",
							   &sm_guc_password_exclude_characters, " :/@\"'\\`", PGC_SUSET, 0,
							   check_printable, NULL, NULL);
	DefineCustomBoolVariable("secretsmgr.allow_privileged_roles",
							 "Allow binding privileged roles to a secret.",
							 "Privileged: SUPERUSER, REPLICATION, BYPASSRLS or CREATEROLE, or a member (through any chain) of a role that is, or of a predefined role that reaches the server's files, programs or all data.",
							 &sm_guc_allow_privileged_roles, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	sm_sts_define_settings();
	sm_cstats_init();
	sm_guard_init();
	sm_stale_init();

	MarkGUCPrefixReserved("secretsmgr");

	sm_cache_init();
}
