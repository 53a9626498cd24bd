/*
 * stats.h
 *		Backend-local counters, reported by secretsmgr_stats().
 */
#ifndef SECRETSMGR_STATS_H
#define SECRETSMGR_STATS_H

#include "postgres.h"

#include "nodes/execnodes.h"

/* Counters, reported by secretsmgr_stats() */
typedef enum SmStatKind
{
	SM_STAT_API_CALL,			/* name = operation; total_ms = latency */
	SM_STAT_API_ERROR,			/* name = "Operation:ErrorType" */
	SM_STAT_RETRY,				/* name = operation */
	SM_STAT_CACHE,				/* name = hit, miss, expired, evicted, invalidated */
	SM_STAT_ROTATION			/* name = "step:status", e.g. rotate:failed */
} SmStatKind;

extern void sm_stats_count(SmStatKind kind, const char *name, double ms);

/* One row per counter into a materialized SRF's tuplestore. */
extern void sm_stats_put_rows(ReturnSetInfo *rsinfo);

/* Forget every counter of this backend. */
extern void sm_stats_reset(void);

#endif							/* SECRETSMGR_STATS_H */
