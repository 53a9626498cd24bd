/*
 * cache.c
 *		Backend-local TTL + LRU cache of secret values.
 *
 * Where a secret may live: each cached value sits in a memory context of its
 * own (a child of "secretsmgr cache"), in secret buffers that are zeroed when
 * that context is deleted.  An entry is deleted, and so scrubbed, when it
 * expires (secretsmgr.cache_ttl), when it is the least recently used one
 * beyond secretsmgr.cache_max_entries, on secretsmgr_cache_invalidate(), and
 * when the password of a role bound to its secret changes: a syscache
 * callback on pg_authid runs in every backend once the change is visible to
 * it (commit of the ALTER ROLE, or this transaction's own command counter).
 *
 * Nothing tells a backend when a rotation Lambda's finishSecret moves
 * AWSCURRENT: between its setSecret (which drops every cached value through
 * the callback above) and finishSecret, a read gets the old AWSCURRENT,
 * whose password the role no longer has.  So an AWSCURRENT value of a
 * managed secret whose version is not the one secretsmgr last gave the role
 * (from the rotation history, read with the bound roles when the value is
 * stored, never on a cached read) is "behind" and kept at most
 * secretsmgr.cache_pending_ttl.
 */
#include "postgres.h"

#include <string.h>
#include <time.h>

#include "common/hashfn.h"
#include "lib/ilist.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "cache.h"
#include "settings.h"
#include "stats.h"
#include "stats_shmem.h"

#define SM_CACHE_MAX_ROLES 4

typedef struct SmCacheEntry
{
	char	   *key;			/* secret_id \x1f stage \x1f version_id; hash key */
	char	   *secret_id;
	MemoryContext cxt;			/* holds key, ids and the scrubbed value */
	SmSecretValue value;
	double		fetched_at;		/* seconds, CLOCK_MONOTONIC */
	bool		served_stale;	/* served past its TTL at least once */
	bool		behind;			/* AWSCURRENT other than the role's version */
	Oid			roles[SM_CACHE_MAX_ROLES];
	uint32		role_hash[SM_CACHE_MAX_ROLES];	/* AUTHOID hash of each role */
	int			nroles;
	dlist_node	lru;			/* head = most recently used */
} SmCacheEntry;

static HTAB *cache_hash = NULL;
static MemoryContext cache_cxt = NULL;
static dlist_head cache_lru = DLIST_STATIC_INIT(cache_lru);
static int	cache_count = 0;

/* Monotonic seconds. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* dynahash over a char * key: hash the string it points to. */
static uint32
key_hash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

/* dynahash over a char * key: compare the strings. */
static int
key_match(const void *a, const void *b, Size keysize)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Create the hash table on first use. */
static void
cache_setup(void)
{
	HASHCTL		ctl;

	if (cache_hash != NULL)
		return;
	cache_cxt = AllocSetContextCreate(TopMemoryContext, "secretsmgr cache",
									  ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(SmCacheEntry);
	ctl.hash = key_hash;
	ctl.match = key_match;
	ctl.hcxt = cache_cxt;
	cache_hash = hash_create("secretsmgr cache", 64, &ctl,
							 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/* The lookup key of (secret_id, stage, version_id), palloc'd. */
static char *
make_key(const char *secret_id, const char *version_stage, const char *version_id)
{
	return psprintf("%s\x1f%s\x1f%s", secret_id,
					version_stage ? version_stage : "",
					version_id ? version_id : "");
}

/* Seconds entry e is fresh for. */
static inline double
entry_ttl(const SmCacheEntry *e)
{
	if (e->behind && sm_guc_cache_pending_ttl_s < sm_guc_cache_ttl_s)
		return (double) sm_guc_cache_pending_ttl_s;
	return (double) sm_guc_cache_ttl_s;
}

/* Remove one entry; its context deletion scrubs the value. */
static void
entry_remove(SmCacheEntry *e, const char *why)
{
	MemoryContext cxt = e->cxt;
	char	   *key = e->key;

	dlist_delete(&e->lru);
	sm_secret_value_scrub(&e->value);
	(void) hash_search(cache_hash, &key, HASH_REMOVE, NULL);
	MemoryContextDelete(cxt);
	cache_count--;
	sm_stats_count(SM_STAT_CACHE, why, 0);
}

/* The fresh cached value of the key, or NULL. */
const SmSecretValue *
sm_cache_lookup(const char *secret_id, const char *version_stage, const char *version_id)
{
	char	   *key;
	SmCacheEntry *e;

	if (sm_guc_cache_ttl_s <= 0 || sm_guc_cache_max_entries <= 0 || cache_hash == NULL)
	{
		sm_stats_count(SM_STAT_CACHE, "miss", 0);
		sm_cstats_cache(secret_id, SM_CSTAT_MISS);
		return NULL;
	}
	key = make_key(secret_id, version_stage, version_id);
	e = hash_search(cache_hash, &key, HASH_FIND, NULL);
	pfree(key);
	if (e == NULL)
	{
		sm_stats_count(SM_STAT_CACHE, "miss", 0);
		sm_cstats_cache(secret_id, SM_CSTAT_MISS);
		return NULL;
	}
	if (now_s() - e->fetched_at >= entry_ttl(e))
	{
		/* keep it while it may still be served stale */
		if (now_s() - e->fetched_at < entry_ttl(e) + sm_guc_cache_max_stale_s)
			sm_stats_count(SM_STAT_CACHE, "expired", 0);
		else
			entry_remove(e, "expired");
		sm_stats_count(SM_STAT_CACHE, "miss", 0);
		sm_cstats_cache(secret_id, SM_CSTAT_MISS);
		return NULL;
	}
	dlist_move_head(&cache_lru, &e->lru);
	sm_stats_count(SM_STAT_CACHE, "hit", 0);
	sm_cstats_cache(secret_id, SM_CSTAT_HIT);
	return &e->value;
}

/* An expired value still within cache_max_stale of its expiry, or NULL. */
const SmSecretValue *
sm_cache_lookup_stale(const char *secret_id, const char *version_stage,
					  const char *version_id, bool *first_time)
{
	char	   *key;
	SmCacheEntry *e;

	*first_time = false;
	if (sm_guc_cache_max_stale_s <= 0 || cache_hash == NULL)
		return NULL;
	key = make_key(secret_id, version_stage, version_id);
	e = hash_search(cache_hash, &key, HASH_FIND, NULL);
	pfree(key);
	if (e == NULL ||
		now_s() - e->fetched_at >= entry_ttl(e) + sm_guc_cache_max_stale_s)
		return NULL;
	*first_time = !e->served_stale;
	e->served_stale = true;
	dlist_move_head(&cache_lru, &e->lru);
	sm_stats_count(SM_STAT_CACHE, "stale", 0);
	sm_cstats_cache(secret_id, SM_CSTAT_STALE);
	return &e->value;
}

/*
 * Store a copy of v; evict the least recently used beyond the bound.  An
 * AWSCURRENT value whose version is not role_version_id (when known) is
 * "behind": kept at most secretsmgr.cache_pending_ttl.
 */
void
sm_cache_store(const char *secret_id, const char *version_stage,
			   const char *version_id, const SmSecretValue *v,
			   const Oid *role_oids, int nroles, const char *role_version_id)
{
	char	   *key;
	SmCacheEntry *e;
	bool		found;
	MemoryContext cxt;
	MemoryContext old;
	bool		behind;

	if (sm_guc_cache_ttl_s <= 0 || sm_guc_cache_max_entries <= 0)
		return;
	behind = role_version_id != NULL && version_id == NULL &&
		version_stage != NULL && strcmp(version_stage, "AWSCURRENT") == 0 &&
		v->version_id != NULL && strcmp(v->version_id, role_version_id) != 0;
	if (behind && sm_guc_cache_pending_ttl_s <= 0)
		return;
	cache_setup();

	key = make_key(secret_id, version_stage, version_id);
	e = hash_search(cache_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
		entry_remove(e, "replaced");

	/* Build the whole entry before it enters the table. */
	cxt = AllocSetContextCreate(cache_cxt, "secretsmgr cache entry",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	{
		char	   *durable_key = pstrdup(key);

		e = hash_search(cache_hash, &durable_key, HASH_ENTER, &found);
		Assert(!found);
		e->key = durable_key;
		e->secret_id = pstrdup(secret_id);
		e->cxt = cxt;
		sm_secret_value_copy(&e->value, v);
	}
	MemoryContextSwitchTo(old);
	pfree(key);

	e->fetched_at = now_s();
	e->served_stale = false;
	e->behind = behind;
	if (behind)
		sm_stats_count(SM_STAT_CACHE, "behind", 0);
	e->nroles = Min(nroles, SM_CACHE_MAX_ROLES);
	for (int i = 0; i < e->nroles; i++)
	{
		e->roles[i] = role_oids[i];
		e->role_hash[i] = GetSysCacheHashValue1(AUTHOID, ObjectIdGetDatum(role_oids[i]));
	}
	dlist_push_head(&cache_lru, &e->lru);
	cache_count++;

	while (cache_count > sm_guc_cache_max_entries)
		entry_remove(dlist_container(SmCacheEntry, lru, dlist_tail_node(&cache_lru)),
					 "evicted");
}

/* Does entry e belong to secret_id (as given, by name or by ARN)? */
static bool
entry_matches(const SmCacheEntry *e, const char *secret_id)
{
	return strcmp(e->secret_id, secret_id) == 0 ||
		(e->value.name && strcmp(e->value.name, secret_id) == 0) ||
		(e->value.arn && strcmp(e->value.arn, secret_id) == 0);
}

/* Drop the entries of secret_id (NULL: all); returns how many. */
int
sm_cache_invalidate(const char *secret_id)
{
	dlist_mutable_iter it;
	int			n = 0;

	if (cache_hash == NULL)
		return 0;
	dlist_foreach_modify(it, &cache_lru)
	{
		SmCacheEntry *e = dlist_container(SmCacheEntry, lru, it.cur);

		if (secret_id == NULL || entry_matches(e, secret_id))
		{
			entry_remove(e, "invalidated");
			n++;
		}
	}
	return n;
}

/* Entries now cached. */
int
sm_cache_size(void)
{
	return cache_count;
}

/*
 * pg_authid changed (hashvalue 0: everything may have): drop the entries
 * of secrets bound to the roles concerned.  Runs inside invalidation
 * processing, so it only frees memory.
 */
static void
authid_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	dlist_mutable_iter it;

	if (cache_hash == NULL)
		return;
	dlist_foreach_modify(it, &cache_lru)
	{
		SmCacheEntry *e = dlist_container(SmCacheEntry, lru, it.cur);

		for (int i = 0; i < e->nroles; i++)
		{
			if (hashvalue == 0 || e->role_hash[i] == hashvalue)
			{
				entry_remove(e, "role_changed");
				break;
			}
		}
	}
}

/* Register the pg_authid callback once per backend. */
void
sm_cache_init(void)
{
	CacheRegisterSyscacheCallback(AUTHOID, authid_changed, (Datum) 0);
}
