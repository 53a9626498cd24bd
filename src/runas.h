/*
 * runas.h
 *		The one way secretsmgr runs code as another role.
 */
#ifndef SECRETSMGR_RUNAS_H
#define SECRETSMGR_RUNAS_H

#include "postgres.h"

/* Work done with the extension owner's rights. */
typedef void (*SmRunasFn) (void *arg);

/*
 * Run fn(arg) as the extension's owner, under SECURITY_RESTRICTED_OPERATION,
 * with search_path pinned to "pg_catalog, pg_temp"; the caller's user id,
 * security context and settings are back when it returns or raises.
 */
extern void sm_runas_owner(SmRunasFn fn, void *arg);

/*
 * Connect a background worker to dboid as roleid, with search_path pinned
 * to "pg_catalog, pg_temp" for the rest of the process's life, whatever
 * the database's or the role's default says.
 */
extern void sm_runas_worker_connect(Oid dboid, Oid roleid);

#endif							/* SECRETSMGR_RUNAS_H */
