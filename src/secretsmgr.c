/*
 * secretsmgr.c
 *		Module entry point: settings, counters and secret-buffer hygiene.
 *
 * Owns every secretsmgr.* setting (defined once, in _PG_init, with check
 * hooks), the backend-local counters behind secretsmgr_stats(), and the two
 * mechanisms that keep secret bytes from outliving their use:
 *
 * - sm_secret_alloc() buffers are zeroed by a memory-context reset callback,
 *   so an error that unwinds a call still scrubs them;
 * - jansson allocates through a wrapper that zeroes every block on free, so
 *   parsed values and serialised request bodies are scrubbed too.
 */
#include "postgres.h"

#include "smjson.h"

#include <string.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "cache.h"
#include "guard.h"
#include "http.h"
#include "secretsmgr.h"
#include "sts.h"
#include "stats_shmem.h"
#include "stale.h"

PG_MODULE_MAGIC;

char	   *sm_guc_region = NULL;
char	   *sm_guc_endpoint = NULL;
char	   *sm_guc_access_key_id = NULL;
char	   *sm_guc_secret_access_key = NULL;
char	   *sm_guc_session_token = NULL;
char	   *sm_guc_profile = NULL;
char	   *sm_guc_ca_file = NULL;
char	   *sm_guc_password_exclude_characters = NULL;
char	   *sm_guc_preload = NULL;
int			sm_guc_connect_timeout_ms = 2000;
int			sm_guc_request_timeout_ms = 10000;
int			sm_guc_max_attempts = 3;
int			sm_guc_max_concurrent_requests = 8;
int			sm_guc_retry_base_delay_ms = 1000;
int			sm_guc_cache_ttl_s = 300;
int			sm_guc_cache_max_entries = 100;
int			sm_guc_cache_max_stale_s = 0;
int			sm_guc_cache_pending_ttl_s = 5;
int			sm_guc_password_length = 32;
bool		sm_guc_allow_privileged_roles = false;

void		_PG_init(void);

/* Counter key: kind plus a short name ("GetSecretValue", "hit", ...). */
typedef struct SmStatKey
{
	int			kind;
	char		name[96];
} SmStatKey;

typedef struct SmStatEntry
{
	SmStatKey	key;
	int64		count;
	double		total_ms;
} SmStatEntry;

static HTAB *stats_hash = NULL;

static const char *const stat_kind_names[] = {
	"api_call", "api_error", "retry", "cache", "rotation"
};

/* A secret buffer and the reset callback that scrubs it. */
typedef struct SmSecretBuf
{
	MemoryContextCallback cb;
	char	   *ptr;
	size_t		len;
} SmSecretBuf;

/* Zero len bytes at p in a way the compiler may not elide. */
void
sm_secure_zero(void *p, size_t len)
{
	if (p != NULL && len > 0)
		explicit_bzero(p, len);
}

/* Reset callback: scrub the buffer before its context releases it. */
static void
secret_buf_scrub(void *arg)
{
	SmSecretBuf *buf = (SmSecretBuf *) arg;

	sm_secure_zero(buf->ptr, buf->len);
}

/* A zeroed buffer of len bytes that is scrubbed when its context goes. */
char *
sm_secret_alloc(size_t len)
{
	SmSecretBuf *buf;

	buf = palloc(sizeof(SmSecretBuf));
	buf->ptr = palloc0(len);
	buf->len = len;
	buf->cb.func = secret_buf_scrub;
	buf->cb.arg = buf;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &buf->cb);
	return buf->ptr;
}

/* Copy of len bytes of s, NUL-terminated, in a scrubbed buffer. */
char *
sm_secret_strndup(const char *s, size_t len)
{
	char	   *copy = sm_secret_alloc(len + 1);

	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

/* Copy of the string s in a scrubbed buffer. */
char *
sm_secret_strdup(const char *s)
{
	return sm_secret_strndup(s, strlen(s));
}

/*
 * jansson allocator: a size header in front of every block so free can zero
 * the whole block.  jansson calls these from inside its own frames, so they
 * must not ereport; malloc failure is reported to jansson as NULL.
 */
typedef union SmJsonHeader
{
	size_t		size;
	max_align_t align;
} SmJsonHeader;

static void *
json_zeroing_malloc(size_t size)
{
	SmJsonHeader *h = malloc(sizeof(SmJsonHeader) + size);

	if (h == NULL)
		return NULL;
	h->size = size;
	return h + 1;
}

static void
json_zeroing_free(void *p)
{
	SmJsonHeader *h;

	if (p == NULL)
		return;
	h = ((SmJsonHeader *) p) - 1;
	explicit_bzero(p, h->size);
	free(h);
}

/* Free a string that json_dumps returned (zeroed like every jansson block). */
void
sm_json_free_string(char *s)
{
	json_zeroing_free(s);
}

/*
 * From libpq/libpq.h, declared here because that header includes
 * libpq/libpq-be.h, which needs the GSSAPI headers of the server's build.
 */
extern bool pq_check_connection(void);

/* How often a long wait or loop looks at the client's socket. */
#define SM_CLIENT_CHECK_INTERVAL_MS 1000

/*
 * Has the client gone away?  The socket is polled (pq_check_connection, as
 * client_connection_check_interval does, whatever that setting is) at most
 * once a second, so a wait may call this every slice.  When the client is
 * gone, ClientConnectionLost and InterruptPending are set: the caller's next
 * CHECK_FOR_INTERRUPTS ends the session ("connection to client lost"), and
 * nothing more is sent to Secrets Manager for a client that cannot read
 * the answer.  Background workers have no client and always get false.
 */
bool
sm_backend_client_gone(void)
{
	static TimestampTz last_check = 0;
	TimestampTz now;

	if (ClientConnectionLost)
		return true;
	if (whereToSendOutput != DestRemote || AmBackgroundWorkerProcess() || IsParallelWorker())
		return false;
	now = GetCurrentTimestamp();
	if (last_check != 0 &&
		!TimestampDifferenceExceeds(last_check, now, SM_CLIENT_CHECK_INTERVAL_MS))
		return false;
	last_check = now;
	if (pq_check_connection())
		return false;
	ClientConnectionLost = true;
	InterruptPending = true;
	return true;
}

/* CHECK_FOR_INTERRUPTS, a lost client included: for per-item loops. */
void
sm_backend_check_interrupts(void)
{
	(void) sm_backend_client_gone();
	CHECK_FOR_INTERRUPTS();
}

/*
 * Must an error caught around one item end the whole statement instead?
 * Yes for what interrupt processing raises (query cancel, statement
 * timeout, terminate, a lost client, a recovery conflict), known by its
 * code or by the function that raised it, and after the client was found
 * gone: swallowing one would turn a cancel into a FAIL row and let the
 * statement go on.
 */
static bool
error_ends_statement(const ErrorData *edata)
{
	switch (edata->sqlerrcode)
	{
		case ERRCODE_QUERY_CANCELED:
		case ERRCODE_ADMIN_SHUTDOWN:
		case ERRCODE_CRASH_SHUTDOWN:
		case ERRCODE_CANNOT_CONNECT_NOW:
		case ERRCODE_DATABASE_DROPPED:
		case ERRCODE_IDLE_SESSION_TIMEOUT:
			return true;
		default:
			break;
	}
	if (edata->funcname != NULL &&
		(strcmp(edata->funcname, "ProcessInterrupts") == 0 ||
		 strcmp(edata->funcname, "ProcessRecoveryConflictInterrupt") == 0))
		return true;
	return ClientConnectionLost;
}

/*
 * Run fn(arg) in a subtransaction; the error it raised, or NULL.  An error
 * that must end the statement (see error_ends_statement) is re-raised once
 * the subtransaction is rolled back, and an interrupt that arrived while
 * the item failed otherwise is processed before its error is returned.
 */
ErrorData *
sm_subxact_run(void (*fn) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	sm_backend_check_interrupts();
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		if (error_ends_statement(edata))
		{
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			ReThrowError(edata);
		}
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	sm_backend_check_interrupts();
	return edata;
}

/* Count one event of kind/name, adding ms to its total. */
void
sm_stats_count(SmStatKind kind, const char *name, double ms)
{
	SmStatKey	key;
	SmStatEntry *entry;
	bool		found;

	if (stats_hash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(SmStatKey);
		ctl.entrysize = sizeof(SmStatEntry);
		ctl.hcxt = TopMemoryContext;
		stats_hash = hash_create("secretsmgr stats", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.kind = kind;
	strlcpy(key.name, name, sizeof(key.name));
	entry = hash_search(stats_hash, &key, HASH_ENTER, &found);
	if (!found)
	{
		entry->count = 0;
		entry->total_ms = 0;
	}
	entry->count++;
	entry->total_ms += ms;
}

PG_FUNCTION_INFO_V1(secretsmgr_stats);

/* secretsmgr_stats(): every counter of this backend, one row each. */
Datum
secretsmgr_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	SmStatEntry *entry;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	InitMaterializedSRF(fcinfo, 0);

	values[0] = CStringGetTextDatum("cache");
	values[1] = CStringGetTextDatum("entries");
	values[2] = Int64GetDatum(sm_cache_size());
	nulls[3] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	nulls[3] = false;

	if (stats_hash == NULL)
		return (Datum) 0;
	hash_seq_init(&seq, stats_hash);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		values[0] = CStringGetTextDatum(stat_kind_names[entry->key.kind]);
		values[1] = CStringGetTextDatum(entry->key.name);
		values[2] = Int64GetDatum(entry->count);
		values[3] = Float8GetDatum(entry->total_ms);
		nulls[3] = (entry->key.kind != SM_STAT_API_CALL && entry->key.kind != SM_STAT_ROTATION);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(secretsmgr_stats_reset);

/* secretsmgr_stats_reset(): zero this backend's counters. */
Datum
secretsmgr_stats_reset(PG_FUNCTION_ARGS)
{
	if (stats_hash != NULL)
	{
		hash_destroy(stats_hash);
		stats_hash = NULL;
	}
	PG_RETURN_VOID();
}

/* secretsmgr.endpoint: empty, https, or http on a loopback address. */
static bool
check_endpoint(char **newval, void **extra, GucSource source)
{
	char	   *shown;
	bool		userinfo;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;

	/*
	 * PostgreSQL's message for a refused value quotes it whole: a URL with
	 * userinfo ("user:password@") is checked when it is used instead, where
	 * the message leaves the userinfo out.
	 */
	shown = sm_http_url_redacted(*newval);
	userinfo = strcmp(shown, *newval) != 0;
	pfree(shown);
	if (userinfo)
		return true;
	if (!sm_http_url_allowed(*newval, NULL))
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("The endpoint must be an https:// URL, or http:// on a loopback address.");
		return false;
	}
	return true;
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
	json_set_alloc_funcs(json_zeroing_malloc, json_zeroing_free);

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
