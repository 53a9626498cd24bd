/*
 * history.h
 *		secretsmgr_rotation_history: one row per rotation, reconcile or
 *		Lambda step, failures included.
 */
#ifndef SECRETSMGR_HISTORY_H
#define SECRETSMGR_HISTORY_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* One history row; any string may be NULL (stored as NULL). */
typedef struct SmHistoryRow
{
	const char *secret_id;
	const char *role_name;
	const char *new_version_id;
	const char *previous_version_id;
	const char *strategy;
	const char *step;			/* createSecret ... finishSecret, reconcile */
	const char *status;			/* succeeded, failed, noop */
	const char *via;			/* sql, lambda, scheduler */
	TimestampTz started_at;
	TimestampTz finished_at;
	const char *executed_by;
	const char *sqlstate;
	const char *error;			/* our own message: never a secret */
} SmHistoryRow;

/*
 * Insert row in the current transaction (it commits or rolls back with the
 * caller), as the extension owner.  Skipped, returning false, on a standby
 * or in a read-only transaction.
 */
extern bool sm_history_insert(const SmHistoryRow *row);

/*
 * Insert row in a transaction of its own, through a short-lived background
 * worker, so it stays after the caller's transaction rolls back.  Waits for
 * the worker (bounded).  Returns false, after a WARNING, when it could not
 * (no worker slot, standby).
 */
extern bool sm_history_insert_autonomous(const SmHistoryRow *row);

/*
 * The VersionId whose password secretsmgr last set for role_name from
 * secret_id (its latest succeeded setSecret, finishSecret or reconcile
 * row), or NULL when there is none.
 */
extern char *sm_history_last_version(const char *secret_id, const char *role_name);

/*
 * When secret_id last rotated successfully (its latest succeeded
 * finishSecret, setSecret or reconcile row); false when it never did.
 */
extern bool sm_history_last_rotated(const char *secret_id, TimestampTz *when);

/* Entry point of that worker. */
extern PGDLLEXPORT void sm_history_worker_main(Datum main_arg);

/*
 * In a worker whose argument is a DSM handle: take the signals, copy the
 * segment into TopMemoryContext, zero, unpin and detach the original.
 */
extern void *sm_history_take_segment(Datum main_arg, const char *what);

#endif							/* SECRETSMGR_HISTORY_H */
