/*
 * guard.h
 *		The drift guard: role changes behind the rotation's back (preloaded).
 */
#ifndef SECRETSMGR_GUARD_H
#define SECRETSMGR_GUARD_H

#include "postgres.h"

#include "nodes/plannodes.h"

/* secretsmgr.guard */
typedef enum SmGuardMode
{
	SM_GUARD_OFF,
	SM_GUARD_WARN,
	SM_GUARD_ERROR
} SmGuardMode;

extern int	sm_guc_guard;

/*
 * Define secretsmgr.guard; when the library is being preloaded, also install
 * the ProcessUtility hook.  Called from _PG_init.
 */
extern void sm_guard_init(void);

/* Is the guard's hook installed (the library preloaded)? */
extern bool sm_guard_active(void);

/* Health: the guard's state (status "OK" or "WARN", detail with a hint). */
extern void sm_guard_health(const char **status, char **detail);

/*
 * Run one of the extension's own role statements (the rotation's ALTER ROLE)
 * through ProcessUtility: the guard lets it pass, and the stale-client
 * counters of role start again when the transaction commits.
 */
extern void sm_guard_run_own(PlannedStmt *pstmt, const char *query,
							 const char *role);

#endif							/* SECRETSMGR_GUARD_H */
