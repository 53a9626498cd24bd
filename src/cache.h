/*
 * cache.h
 *		Backend-local TTL + LRU cache of secret values.
 */
#ifndef SECRETSMGR_CACHE_H
#define SECRETSMGR_CACHE_H

#include "postgres.h"

#include "smclient.h"

/*
 * Look up (secret_id, version_stage, version_id).  On a fresh hit copy the
 * value into CurrentMemoryContext (as secret buffers) and return true.
 * Counts hit / miss / expired.
 */
extern bool sm_cache_lookup(const char *secret_id, const char *version_stage,
							const char *version_id, SmSecretValue *out);

/*
 * Store a copy of v under the key; role_oids are the roles bound to this
 * secret (their password change drops the entry in every backend).
 * Evicts the least recently used entry beyond secretsmgr.cache_max_entries.
 */
extern void sm_cache_store(const char *secret_id, const char *version_stage,
						   const char *version_id, const SmSecretValue *v,
						   const Oid *role_oids, int nroles);

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
