/*
 * cache.h
 *		Backend-local TTL + LRU cache of secret values.
 */
#ifndef SECRETSMGR_CACHE_H
#define SECRETSMGR_CACHE_H

#include "postgres.h"

#include "smclient.h"

/*
 * Look up (secret_id, version_stage, version_id).  On a fresh hit return the
 * cached value itself: the caller copies what it needs before the next cache
 * call (which may evict it) and never modifies it.  NULL on a miss.  Counts
 * hit / miss / expired.
 */
extern const SmSecretValue *sm_cache_lookup(const char *secret_id,
											const char *version_stage,
											const char *version_id);

/*
 * An expired value of the key that is still within secretsmgr.cache_max_stale
 * of its expiry, for riding out a transient failure to refresh it; NULL if
 * none.  *first_time is set when this entry had not been served stale before
 * (the caller warns once per entry).  Counts "stale".
 */
extern const SmSecretValue *sm_cache_lookup_stale(const char *secret_id,
												  const char *version_stage,
												  const char *version_id,
												  bool *first_time);

/*
 * Store a copy of v under the key; role_oids are the roles bound to this
 * secret (their password change drops the entry in every backend), and
 * role_version_id the version whose password secretsmgr last gave one of
 * them (NULL if unknown): an AWSCURRENT value of another version is kept at
 * most secretsmgr.cache_pending_ttl.  Evicts the least recently used entry
 * beyond secretsmgr.cache_max_entries.
 */
extern void sm_cache_store(const char *secret_id, const char *version_stage,
						   const char *version_id, const SmSecretValue *v,
						   const Oid *role_oids, int nroles,
						   const char *role_version_id);

/*
 * Drop every entry of secret_id (matched as given, or as the entry's name or
 * ARN); NULL drops all.  Returns how many entries were dropped.
 */
extern int	sm_cache_invalidate(const char *secret_id);

/* Number of entries now cached. */
extern int	sm_cache_size(void);

/* Register the pg_authid syscache callback (from _PG_init). */
extern void sm_cache_init(void);

#endif							/* SECRETSMGR_CACHE_H */
