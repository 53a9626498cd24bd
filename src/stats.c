/*
 * stats.c
 *		Backend-local counters behind secretsmgr_stats().
 *
 * API calls and errors by operation and error type, retries, cache events,
 * rotations by step and status, each with a count (and a total time where
 * one is measured).  Ground floor: calls nothing else of secretsmgr.
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "stats.h"

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

/*
 * Add one row (kind, name, count, total_ms) per counter to rsinfo's
 * tuplestore (set up by InitMaterializedSRF); total_ms is NULL for the
 * kinds that measure no time.
 */
void
sm_stats_put_rows(ReturnSetInfo *rsinfo)
{
	HASH_SEQ_STATUS seq;
	SmStatEntry *entry;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (stats_hash == NULL)
		return;
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
}

/* Zero this backend's counters. */
void
sm_stats_reset(void)
{
	if (stats_hash != NULL)
	{
		hash_destroy(stats_hash);
		stats_hash = NULL;
	}
}
