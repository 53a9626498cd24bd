/*
 * stats_shmem.h
 *		Cluster-wide statistics in shared memory (with shared_preload_libraries)
 *		and the secretsmgr.log_reads audit line.
 */
#ifndef SECRETSMGR_STATS_SHMEM_H
#define SECRETSMGR_STATS_SHMEM_H

#include "postgres.h"

/* What a read found in this backend's cache. */
typedef enum SmCstatCache
{
	SM_CSTAT_HIT,
	SM_CSTAT_MISS,
	SM_CSTAT_STALE
} SmCstatCache;

/* Settings; reserve shared memory when the library is being preloaded. */
extern void sm_cstats_init(void);

/* A read of secret_id answered (or not) from the cache; cheap. */
extern void sm_cstats_cache(const char *secret_id, SmCstatCache what);

/*
 * One Secrets Manager call (its retries included) about secret_id (NULL
 * for calls about several secrets): latency, retries, and the AWS error
 * type it ended with (NULL on success).
 */
extern void sm_cstats_call(const char *operation, const char *secret_id,
						   double ms, int retries, const char *error_type);

/* A rotation, Lambda step or reconcile of secret_id ended. */
extern void sm_cstats_rotation(const char *secret_id, const char *opname,
							   bool succeeded);

/*
 * secretsmgr.log_reads: one LOG line for a read of secret_id (as asked)
 * at version_stage, answered with version_id; source says from where
 * ("cache", "Secrets Manager", "stale cache").  Never the value.
 */
extern void sm_cstats_log_read(const char *secret_id, const char *version_stage,
							   const char *version_id, const char *source);

/* For secretsmgr_health(): the state of the cluster-wide statistics. */
extern void sm_cstats_health(const char **status, char **detail);

#endif							/* SECRETSMGR_STATS_SHMEM_H */
