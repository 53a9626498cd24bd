/*
 * stats_shmem.c
 *		Cluster-wide statistics in shared memory, and secretsmgr.log_reads.
 *
 * With shared_preload_libraries = 'secretsmgr', every backend's reads,
 * Secrets Manager calls and rotations are counted per (database, role,
 * secret, operation) in a hash table in shared memory, the way
 * pg_stat_statements counts statements: secretsmgr_cluster_stats() and
 * the view of the same name show them to pg_read_all_stats, and
 * secretsmgr_cluster_stats_reset() zeroes them.  The table holds at most
 * secretsmgr.stats_max entries; once it is full, events of a new key are
 * not counted but added up in a "dropped" figure that secretsmgr_health()
 * reports.  Nothing is written to disk: a restart starts from zero
 * (docs/decisions.md says why).
 *
 * A cached read costs a fraction of a microsecond, so counting it must not
 * take a lock: each backend adds its events to a local table (the entry of
 * the last key is remembered, so repeated reads of one secret cost a string
 * compare) and merges that table into shared memory at the end of each
 * transaction, at least once a second when Secrets Manager calls are made,
 * at once after a rotation, and when the backend exits.
 *
 * Without preloading, every counting function returns at once, and the SQL
 * functions raise an error saying what to do.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "stats_shmem.h"

#define SM_CSTAT_SECRET_LEN		256
#define SM_CSTAT_OP_LEN			32
#define SM_CSTAT_ERROR_TYPES	4
#define SM_CSTAT_TYPE_LEN		48
#define SM_CSTAT_FLUSH_MS		1000
#define SM_CSTAT_COLS			21

/* What the counters are kept by. */
typedef struct SmCstatKey
{
	Oid			dbid;
	Oid			userid;
	char		operation[SM_CSTAT_OP_LEN];
	char		secret_id[SM_CSTAT_SECRET_LEN]; /* "" for several secrets */
} SmCstatKey;

/* One AWS error type and how often it ended a call. */
typedef struct SmCstatErrorCount
{
	char		type[SM_CSTAT_TYPE_LEN];
	int64		count;
} SmCstatErrorCount;

typedef struct SmCstatCounters
{
	int64		calls;
	int64		errors;
	int64		retries;
	int64		cache_hits;
	int64		cache_misses;
	int64		stale_serves;
	double		total_ms;
	double		min_ms;
	double		max_ms;
	TimestampTz last_error_at;
	char		last_error_type[SM_CSTAT_TYPE_LEN];
	SmCstatErrorCount error_types[SM_CSTAT_ERROR_TYPES];
	int64		other_errors;	/* of types beyond the first few */
	int64		rotations_succeeded;
	int64		rotations_failed;
	TimestampTz last_succeeded_at;
	TimestampTz last_failed_at;
} SmCstatCounters;

typedef struct SmCstatEntry
{
	SmCstatKey	key;
	SmCstatCounters c;
} SmCstatEntry;

/* The shared state beside the hash table. */
typedef struct SmCstatShared
{
	LWLock	   *lock;			/* guards the table and this struct */
	int64		dropped;		/* events not counted: the table was full */
	TimestampTz reset_at;
} SmCstatShared;

static bool log_reads = false;
static int	stats_max = 5000;

static SmCstatShared *cstats = NULL;
static HTAB *cstats_hash = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* This backend's events not yet merged into shared memory. */
static HTAB *pending_hash = NULL;
static SmCstatEntry *pending_memo = NULL;
static bool pending_dirty = false;
static bool callbacks_registered = false;
static TimestampTz last_flush = 0;

static void flush_pending(void);

/* Shared memory the table needs. */
static Size
cstats_memsize(void)
{
	return add_size(MAXALIGN(sizeof(SmCstatShared)),
					hash_estimate_size(stats_max, sizeof(SmCstatEntry)));
}

/* shmem_request_hook: the table and its lock. */
static void
cstats_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(cstats_memsize());
	RequestNamedLWLockTranche("secretsmgr_stats", 1);
}

/* shmem_startup_hook: create (or attach to) the table. */
static void
cstats_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cstats = ShmemInitStruct("secretsmgr stats", sizeof(SmCstatShared), &found);
	if (!found)
	{
		cstats->lock = &(GetNamedLWLockTranche("secretsmgr_stats"))->lock;
		cstats->dropped = 0;
		cstats->reset_at = GetCurrentTimestamp();
	}
	info.keysize = sizeof(SmCstatKey);
	info.entrysize = sizeof(SmCstatEntry);
	cstats_hash = ShmemInitHash("secretsmgr stats hash", stats_max, stats_max,
								&info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init: the settings, and shared memory when preloading. */
void
sm_cstats_init(void)
{
	DefineCustomBoolVariable("secretsmgr.log_reads",
							 "Write one server log line per secret read: role, secret, stage, version and whether the cache answered.",
							 "Never the value.",
							 &log_reads, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	/* a server-start setting exists only where it can take effect */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("secretsmgr.stats_max",
							"Most (database, role, secret, operation) keys secretsmgr_cluster_stats() keeps.",
							"Events of a new key are dropped, and counted as dropped, once the table is full.",
							&stats_max, 5000, 100, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = cstats_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = cstats_shmem_startup;
}

/* Transaction end: merge what this backend counted. */
static void
cstats_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			flush_pending();
			break;
		default:
			break;
	}
}

/* Backend exit: merge what is left. */
static void
cstats_exit(int code, Datum arg)
{
	flush_pending();
}

/* The local counters of (current role, operation, secret_id). */
static SmCstatCounters *
pending_counters(const char *operation, const char *secret_id)
{
	Oid			userid = GetUserId();
	SmCstatKey	key;
	SmCstatEntry *e;
	bool		found;

	if (secret_id == NULL)
		secret_id = "";
	if (pending_memo != NULL && pending_memo->key.userid == userid &&
		strcmp(pending_memo->key.operation, operation) == 0 &&
		strncmp(pending_memo->key.secret_id, secret_id, SM_CSTAT_SECRET_LEN) == 0)
		return &pending_memo->c;

	if (pending_hash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(SmCstatKey);
		ctl.entrysize = sizeof(SmCstatEntry);
		ctl.hcxt = TopMemoryContext;
		pending_hash = hash_create("secretsmgr pending stats", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (!callbacks_registered)
	{
		RegisterXactCallback(cstats_xact_callback, NULL);
		before_shmem_exit(cstats_exit, (Datum) 0);
		callbacks_registered = true;
	}
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.userid = userid;
	strlcpy(key.operation, operation, sizeof(key.operation));
	strlcpy(key.secret_id, secret_id, sizeof(key.secret_id));
	e = hash_search(pending_hash, &key, HASH_ENTER, &found);
	if (!found)
		memset(&e->c, 0, sizeof(e->c));
	pending_memo = e;
	pending_dirty = true;
	return &e->c;
}

/* Add n errors of type to c (beyond the first few types: "other"). */
static void
add_error_type(SmCstatCounters *c, const char *type, int64 n)
{
	for (int i = 0; i < SM_CSTAT_ERROR_TYPES; i++)
	{
		SmCstatErrorCount *t = &c->error_types[i];

		if (t->type[0] == '\0')
			strlcpy(t->type, type, sizeof(t->type));
		if (strncmp(t->type, type, sizeof(t->type) - 1) == 0)
		{
			t->count += n;
			return;
		}
	}
	c->other_errors += n;
}

/* Add src to dst. */
static void
merge_counters(SmCstatCounters *dst, const SmCstatCounters *src)
{
	if (src->calls > 0)
	{
		if (dst->calls == 0 || src->min_ms < dst->min_ms)
			dst->min_ms = src->min_ms;
		if (dst->calls == 0 || src->max_ms > dst->max_ms)
			dst->max_ms = src->max_ms;
	}
	dst->calls += src->calls;
	dst->errors += src->errors;
	dst->retries += src->retries;
	dst->cache_hits += src->cache_hits;
	dst->cache_misses += src->cache_misses;
	dst->stale_serves += src->stale_serves;
	dst->total_ms += src->total_ms;
	if (src->last_error_at > dst->last_error_at)
	{
		dst->last_error_at = src->last_error_at;
		memcpy(dst->last_error_type, src->last_error_type, sizeof(dst->last_error_type));
	}
	for (int i = 0; i < SM_CSTAT_ERROR_TYPES && src->error_types[i].type[0]; i++)
		add_error_type(dst, src->error_types[i].type, src->error_types[i].count);
	dst->other_errors += src->other_errors;
	dst->rotations_succeeded += src->rotations_succeeded;
	dst->rotations_failed += src->rotations_failed;
	dst->last_succeeded_at = Max(dst->last_succeeded_at, src->last_succeeded_at);
	dst->last_failed_at = Max(dst->last_failed_at, src->last_failed_at);
}

/* How many events c holds (what a full table drops). */
static int64
counters_events(const SmCstatCounters *c)
{
	return c->calls + c->cache_hits + c->cache_misses + c->stale_serves +
		c->rotations_succeeded + c->rotations_failed;
}

/*
 * Merge this backend's pending events into shared memory and forget them.
 * Runs in transaction callbacks and at exit, so raises nothing: a full
 * table drops the events of new keys and counts them.
 */
static void
flush_pending(void)
{
	HASH_SEQ_STATUS seq;
	SmCstatEntry *le;

	if (!pending_dirty || cstats == NULL || pending_hash == NULL)
		return;
	LWLockAcquire(cstats->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, pending_hash);
	while ((le = hash_seq_search(&seq)) != NULL)
	{
		SmCstatEntry *se;
		bool		found;

		se = hash_search(cstats_hash, &le->key, HASH_FIND, &found);
		if (se == NULL && hash_get_num_entries(cstats_hash) < stats_max)
			se = hash_search(cstats_hash, &le->key, HASH_ENTER_NULL, &found);
		if (se == NULL)
			cstats->dropped += counters_events(&le->c);
		else
		{
			if (!found)
				memset(&se->c, 0, sizeof(se->c));
			merge_counters(&se->c, &le->c);
		}
		(void) hash_search(pending_hash, &le->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(cstats->lock);
	pending_memo = NULL;
	pending_dirty = false;
	last_flush = GetCurrentTimestamp();
}

/* A read answered (or not) from this backend's cache. */
void
sm_cstats_cache(const char *secret_id, SmCstatCache what)
{
	SmCstatCounters *c;

	if (cstats == NULL)
		return;
	c = pending_counters("GetSecretValue", secret_id);
	switch (what)
	{
		case SM_CSTAT_HIT:
			c->cache_hits++;
			break;
		case SM_CSTAT_MISS:
			c->cache_misses++;
			break;
		case SM_CSTAT_STALE:
			c->stale_serves++;
			break;
	}
}

/* One Secrets Manager call, retries included. */
void
sm_cstats_call(const char *operation, const char *secret_id, double ms,
			   int retries, const char *error_type)
{
	SmCstatCounters *c;
	TimestampTz now;

	if (cstats == NULL)
		return;
	c = pending_counters(operation, secret_id);
	if (c->calls == 0 || ms < c->min_ms)
		c->min_ms = ms;
	if (c->calls == 0 || ms > c->max_ms)
		c->max_ms = ms;
	c->calls++;
	c->total_ms += ms;
	c->retries += Max(retries, 0);
	now = GetCurrentTimestamp();
	if (error_type != NULL)
	{
		c->errors++;
		c->last_error_at = now;
		strlcpy(c->last_error_type, error_type, sizeof(c->last_error_type));
		add_error_type(c, error_type, 1);
	}
	if (TimestampDifferenceExceeds(last_flush, now, SM_CSTAT_FLUSH_MS))
		flush_pending();
}

/* A rotation (or Lambda step, or reconcile) ended; shown at once. */
void
sm_cstats_rotation(const char *secret_id, const char *opname, bool succeeded)
{
	SmCstatCounters *c;

	if (cstats == NULL)
		return;
	c = pending_counters(opname, secret_id);
	if (succeeded)
	{
		c->rotations_succeeded++;
		c->last_succeeded_at = GetCurrentTimestamp();
	}
	else
	{
		c->rotations_failed++;
		c->last_failed_at = GetCurrentTimestamp();
	}
	flush_pending();
}

/* secretsmgr.log_reads: the audit line of one read; never the value. */
void
sm_cstats_log_read(const char *secret_id, const char *version_stage,
				   const char *version_id, const char *source)
{
	if (!log_reads)
		return;
	ereport(LOG,
			(errmsg("secretsmgr: role \"%s\" read secret \"%s\", stage %s, version %s, from %s",
					GetUserNameFromId(GetUserId(), false), secret_id,
					version_stage ? version_stage : "(none)",
					version_id ? version_id : "(none)", source),
			 errhidestmt(true), errhidecontext(true)));
}

/* Raise unless the library was preloaded. */
static void
require_preloaded(const char *fname)
{
	if (cstats == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s() needs secretsmgr in shared_preload_libraries", fname),
				 errdetail("Cluster-wide statistics live in shared memory, which only a preloaded library can reserve; secretsmgr_stats() shows this session's counters."),
				 errhint("Add secretsmgr to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* c's error types as a jsonb object {"type": count, ...}. */
static Datum
error_types_jsonb(const SmCstatCounters *c)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < SM_CSTAT_ERROR_TYPES && c->error_types[i].type[0]; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, c->error_types[i].type);
		appendStringInfo(&buf, ": " INT64_FORMAT, c->error_types[i].count);
	}
	if (c->other_errors > 0)
		appendStringInfo(&buf, "%s\"(other)\": " INT64_FORMAT,
						 buf.len > 1 ? ", " : "", c->other_errors);
	appendStringInfoChar(&buf, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

/* A timestamptz Datum, or null when never. */
static void
put_time(Datum *value, bool *isnull, TimestampTz t)
{
	*isnull = (t == 0);
	*value = TimestampTzGetDatum(t);
}

PG_FUNCTION_INFO_V1(secretsmgr_cluster_stats);

/* secretsmgr_cluster_stats(): one row per key, every backend's counts. */
Datum
secretsmgr_cluster_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	SmCstatEntry *e;
	List	   *copies = NIL;
	ListCell   *lc;

	require_preloaded("secretsmgr_cluster_stats");
	InitMaterializedSRF(fcinfo, 0);
	flush_pending();

	/* copy under the lock, build rows (which may raise) after */
	LWLockAcquire(cstats->lock, LW_SHARED);
	hash_seq_init(&seq, cstats_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		SmCstatEntry *copy = palloc(sizeof(SmCstatEntry));

		memcpy(copy, e, sizeof(SmCstatEntry));
		copies = lappend(copies, copy);
	}
	LWLockRelease(cstats->lock);

	foreach(lc, copies)
	{
		SmCstatEntry *c = lfirst(lc);
		Datum		values[SM_CSTAT_COLS];
		bool		nulls[SM_CSTAT_COLS];
		int			i = 0;

		memset(nulls, 0, sizeof(nulls));
		values[i++] = ObjectIdGetDatum(c->key.dbid);
		values[i++] = ObjectIdGetDatum(c->key.userid);
		if (c->key.secret_id[0] == '\0')
			nulls[i] = true;
		values[i++] = CStringGetTextDatum(c->key.secret_id);
		values[i++] = CStringGetTextDatum(c->key.operation);
		values[i++] = Int64GetDatum(c->c.calls);
		values[i++] = Int64GetDatum(c->c.errors);
		values[i++] = error_types_jsonb(&c->c);
		values[i++] = Int64GetDatum(c->c.retries);
		values[i++] = Int64GetDatum(c->c.cache_hits);
		values[i++] = Int64GetDatum(c->c.cache_misses);
		values[i++] = Int64GetDatum(c->c.stale_serves);
		values[i++] = Float8GetDatum(c->c.total_ms);
		nulls[i] = nulls[i + 1] = nulls[i + 2] = (c->c.calls == 0);
		values[i++] = Float8GetDatum(c->c.min_ms);
		values[i++] = Float8GetDatum(c->c.max_ms);
		values[i++] = Float8GetDatum(c->c.calls > 0 ? c->c.total_ms / c->c.calls : 0);
		put_time(&values[i], &nulls[i], c->c.last_error_at);
		i++;
		if (c->c.last_error_type[0] == '\0')
			nulls[i] = true;
		values[i++] = CStringGetTextDatum(c->c.last_error_type);
		values[i++] = Int64GetDatum(c->c.rotations_succeeded);
		values[i++] = Int64GetDatum(c->c.rotations_failed);
		put_time(&values[i], &nulls[i], c->c.last_succeeded_at);
		i++;
		put_time(&values[i], &nulls[i], c->c.last_failed_at);
		i++;
		Assert(i == SM_CSTAT_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(secretsmgr_cluster_stats_reset);

/* secretsmgr_cluster_stats_reset(): zero every backend's counts. */
Datum
secretsmgr_cluster_stats_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	SmCstatEntry *e;

	require_preloaded("secretsmgr_cluster_stats_reset");
	flush_pending();
	LWLockAcquire(cstats->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, cstats_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		(void) hash_search(cstats_hash, &e->key, HASH_REMOVE, NULL);
	cstats->dropped = 0;
	cstats->reset_at = GetCurrentTimestamp();
	LWLockRelease(cstats->lock);
	PG_RETURN_VOID();
}

/* The health row of the cluster-wide statistics. */
void
sm_cstats_health(const char **status, char **detail)
{
	long		entries;
	int64		dropped;
	TimestampTz reset_at;

	if (cstats == NULL)
	{
		*status = "OK";
		*detail = pstrdup("off: secretsmgr is not in shared_preload_libraries, so secretsmgr_cluster_stats() is unavailable; secretsmgr_stats() counts per session");
		return;
	}
	LWLockAcquire(cstats->lock, LW_SHARED);
	entries = hash_get_num_entries(cstats_hash);
	dropped = cstats->dropped;
	reset_at = cstats->reset_at;
	LWLockRelease(cstats->lock);
	if (dropped > 0)
	{
		*status = "WARN";
		*detail = psprintf("%ld of %d entries in use; " INT64_FORMAT " events dropped since %s because the table was full: raise \"secretsmgr.stats_max\" or call secretsmgr_cluster_stats_reset()",
						   entries, stats_max, dropped, timestamptz_to_str(reset_at));
	}
	else
	{
		*status = "OK";
		*detail = psprintf("on: %ld of %d entries in use since %s", entries, stats_max,
						   timestamptz_to_str(reset_at));
	}
}
