/*
 * stale.h
 *		Stale clients: who still uses a managed role's old password.
 */
#ifndef SECRETSMGR_STALE_H
#define SECRETSMGR_STALE_H

#include "postgres.h"

#include "funcapi.h"

/*
 * Ask for the shared memory and install the ClientAuthentication hook.
 * Does nothing unless the library is being preloaded.  Called from
 * _PG_init.
 */
extern void sm_stale_init(void);

/* Is failed-login counting on (the library preloaded)? */
extern bool sm_stale_active(void);

/*
 * role's password changed in this transaction (a rotation's ALTER ROLE):
 * its failed-login counters start again when the transaction commits.
 */
extern void sm_stale_password_changed(const char *role);

/* Add the health rows of stale clients and the drift guard to rsinfo. */
extern void sm_stale_health(ReturnSetInfo *rsinfo);

#endif							/* SECRETSMGR_STALE_H */
