/*
 * undo.h
 *		Moving AWSCURRENT back when a transaction that moved it at pre-commit
 *		does not commit.
 */
#ifndef SECRETSMGR_UNDO_H
#define SECRETSMGR_UNDO_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* One stage move a committing transaction makes, as the undo sees it. */
typedef struct SmUndoMove
{
	const char *api_id;			/* what Secrets Manager is called with */
	const char *secret_id;		/* as registered */
	const char *lock_key;		/* the rotation lock's key (ARN or id) */
	const char *role_name;
	const char *strategy;
	const char *new_version_id; /* where this transaction put AWSCURRENT */
	const char *old_version_id; /* where it was */
	const char *executed_by;
	const char *via;
	TimestampTz started_at;
} SmUndoMove;

/*
 * At pre-commit, before the first move: get everything the abort path will
 * need ready (a pinned shared memory segment holding the moves and the
 * settings Secrets Manager calls depend on, the worker's description), since
 * an abort callback must not fail.  May raise.
 */
extern void sm_undo_prepare(const SmUndoMove *moves, int nmoves);

/*
 * Move i (of those prepared) has been performed, or may have been (sent,
 * its answer not known): the worker looks before it moves anything back.
 */
extern void sm_undo_performed(int i);

/* Move i is known not to have been performed (Secrets Manager refused it). */
extern void sm_undo_not_performed(int i);

/* Why the commit failed, if nothing said so yet (never raises). */
extern void sm_undo_set_reason(int sqlerrcode, const char *message);

/*
 * Transaction end (never raises).  committed: forget everything.  Else, if
 * a move was performed, start the worker that moves those labels back and
 * records each rotation as failed; returns false, after a WARNING, when no
 * worker could be started.
 */
extern bool sm_undo_finish(bool committed);

/* Entry point of that worker. */
extern PGDLLEXPORT void sm_undo_worker_main(Datum main_arg);

#endif							/* SECRETSMGR_UNDO_H */
